import { describe, expect, it } from 'vitest';
import { IdentifierRegistry, normaliseEmail, normalisePhone } from '../../src/identity/identifier-registry.ts';
import { toSalesforceId18 } from '../../src/identity/salesforce-id.ts';

const reg = new IdentifierRegistry();
const norm = (type: string, value: string) => reg.normalise({ type, value, source: 'event' });

describe('normalisers', () => {
  it('email: trim + lower-case; plus-addressing kept; junk rejected', () => {
    expect(normaliseEmail('  Ada.Lovelace@Example.COM ')).toEqual({ ok: true, value: 'ada.lovelace@example.com' });
    expect(normaliseEmail('ada+news@example.com')).toEqual({ ok: true, value: 'ada+news@example.com' });
    expect(normaliseEmail('not-an-email').ok).toBe(false);
    expect(normaliseEmail('a b@example.com').ok).toBe(false);
  });

  it('phone: E.164, national numbers read in the default region, invalid → not ok', () => {
    expect(normalisePhone('+44 20 7946 0018', 'US')).toEqual({ ok: true, value: '+442079460018' });
    expect(normalisePhone('(415) 555-2671', 'US')).toEqual({ ok: true, value: '+14155552671' });
    expect(normalisePhone('030 901820', 'DE')).toEqual({ ok: true, value: '+4930901820' });
    expect(normalisePhone('12', 'US').ok).toBe(false);
    expect(normalisePhone('call me maybe', 'US').ok).toBe(false);
  });

  it('the registry default region is configurable', () => {
    const de = new IdentifierRegistry({ defaultRegion: 'DE' });
    const res = de.normalise({ type: 'phone', value: '030 901820', source: 'event' });
    expect(res.ok && res.value.identifier.value).toBe('+4930901820');
  });

  it('Salesforce ids: 15 and 18 characters normalise to one 18-char id; lost case is restored', () => {
    expect(toSalesforceId18('003D000000QOIW3')).toBe('003D000000QOIW3IAP');
    expect(toSalesforceId18('003D000000QOIW3IAP')).toBe('003D000000QOIW3IAP');
    expect(toSalesforceId18('003d000000qoiw3iap')).toBe('003D000000QOIW3IAP');
    expect(toSalesforceId18('short')).toBeNull();
    const res = norm('salesforce.contact', '003D000000QOIW3');
    expect(res.ok && res.value.identifier.value).toBe('003D000000QOIW3IAP');
  });
});

describe('IdentifierRegistry', () => {
  it('has the built-in types with their limits, priorities and flags', () => {
    const byType = Object.fromEntries(reg.types().map((t) => [t.type, t]));
    expect(byType['user_id']).toMatchObject({ limit: 1, login: true, unique: true, onLimit: 'reject' });
    expect(byType['anonymous_id']).toMatchObject({ limit: 100, onLimit: 'evict_oldest' });
    expect(byType['email']).toMatchObject({ limit: 5, onLimit: 'reject' });
    expect(byType['phone']).toMatchObject({ unique: false });
    expect(byType['group_id']?.kinds).toEqual(['account']);
    expect(byType['user_id']!.priority).toBeGreaterThan(byType['email']!.priority);
    expect(byType['email']!.priority).toBeGreaterThan(byType['anonymous_id']!.priority);
  });

  it('registers <slug>.<object> CRM id types on first use, limit 1, kind by object', () => {
    expect(reg.get('hubspot.contact')).toMatchObject({ limit: 1, kinds: ['person'], unique: true });
    expect(reg.get('pipedrive.organization')?.kinds).toEqual(['account']);
    expect(reg.get('salesforce.opportunity')?.kinds).toEqual(['person', 'account']);
    expect(reg.get('Not A Type')).toBeUndefined();
    expect(reg.get('nodot')).toBeUndefined();
  });

  it.each(['null', 'undefined', 'anonymous', '0', '-1', '', '   ', 'unknown', 'NULL', 'Undefined', 'test@test.com', ' TEST@test.com '])(
    'blocks placeholder value %j with an issue',
    (value) => {
      const res = norm(value.includes('@') ? 'email' : 'user_id', value);
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.issue.code).toBe('blocked_value');
    },
  );

  it('reports unknown types, invalid values and over-long values as issues, never throws', () => {
    const unknown = norm('favourite_colour', 'blue');
    expect(!unknown.ok && unknown.issue.code).toBe('unknown_type');
    const bad = norm('phone', 'not a phone');
    expect(!bad.ok && bad.issue.code).toBe('invalid_value');
    const long = norm('user_id', 'x'.repeat(10_000));
    expect(!long.ok && long.issue.code).toBe('invalid_value');
    expect(!long.ok && (long.issue.value?.length ?? 0) <= 200).toBe(true);
  });

  it('accepts extra blocked values and custom types', () => {
    const custom = new IdentifierRegistry({ extraBlocked: ['Guest-User'] });
    const res = custom.normalise({ type: 'user_id', value: 'guest-user', source: 'event' });
    expect(!res.ok && res.issue.code).toBe('blocked_value');
    custom.register({ type: 'stripe_customer', limit: 2, onLimit: 'reject', priority: 85, unique: true, login: false, kinds: ['person'], blocked: new Set(), normalise: (v) => ({ ok: true, value: v.trim() }) });
    const ok = custom.normalise({ type: 'stripe_customer', value: ' cus_1 ', source: 'stripe' });
    expect(ok.ok && ok.value.identifier).toEqual({ type: 'stripe_customer', value: 'cus_1', source: 'stripe' });
  });
});
