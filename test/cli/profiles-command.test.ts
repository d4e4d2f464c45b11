import { describe, expect, it } from 'vitest';
import { checkProfileArg, formatProfile } from '../../src/cli/commands/profiles.ts';
import type { Profile, ProfileId } from '../../src/core/types.ts';

describe('crmhub profiles get (argument and table)', () => {
  it('accepts TYPE:VALUE and prf_ ids, and explains malformed arguments', () => {
    expect(checkProfileArg('email:ada@example.com')).toBeNull();
    expect(checkProfileArg('hubspot.contact:512')).toBeNull();
    expect(checkProfileArg('url_id:https://x.io/a:b')).toBeNull();
    expect(checkProfileArg('prf_0mx28qt4t0000291b9aa06e71')).toBeNull();
    expect(checkProfileArg('nocolon')).toMatch(/expected TYPE:VALUE/);
    expect(checkProfileArg('email:')).toMatch(/expected TYPE:VALUE/);
    expect(checkProfileArg(':value')).toMatch(/expected TYPE:VALUE/);
    expect(checkProfileArg('e mail:x')).toMatch(/not a registry type/);
  });

  it('prints identifiers and traits with provenance as aligned tables', () => {
    const profile: Profile = {
      id: 'prf_abc' as ProfileId,
      kind: 'person',
      identifiers: [
        { type: 'email', value: 'ada@example.com', source: 'event' },
        { type: 'hubspot.contact', value: '512', source: 'hubspot' },
      ],
      traits: {
        plan: { value: 'pro', source: 'hubspot', changedAt: '2026-01-02T03:04:05.000Z' },
        address: { value: { city: 'London' }, source: 'event', changedAt: '2026-01-01T00:00:00.000Z' },
      },
      mergedFrom: ['prf_old' as ProfileId],
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-02T03:04:05.000Z',
    };
    const text = formatProfile(profile);
    expect(text).toContain('Profile prf_abc (person)');
    expect(text).toContain('merged from prf_old');
    expect(text).toMatch(/TYPE {13}VALUE {12}SOURCE\nemail {12}ada@example\.com {2}event\nhubspot\.contact {2}512 {14}hubspot/);
    expect(text).toMatch(/address {2}\{"city":"London"\} {2}event {4}2026-01-01T00:00:00\.000Z\nplan {5}pro {16}hubspot {2}2026-01-02T03:04:05\.000Z/);
  });
});
