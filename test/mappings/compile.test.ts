import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileMapping, mappingHash, resolverFromSchema } from '../../src/mapping/compile-mapping.ts';
import { loadMappingText } from '../../src/mapping/load-mappings.ts';
import { remoteFieldKeys, toProfile, toRemote } from '../../src/mapping/mapping-values.ts';
import { validateMappingSource } from '../../src/mapping/validate-mapping.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const text = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');

describe('compiled mappings', () => {
  it('applies file defaults to fields and hashes the file bytes', () => {
    const source = text('test/mappings/fixtures/valid/every-transform.yaml');
    const loaded = loadMappingText('x.yaml', 'x.yaml', source);
    const compiled = loaded.compiled!;
    expect(compiled.hash).toBe(mappingHash(source));
    expect(compiled.hash).toMatch(/^[0-9a-f]{64}$/);
    const first = compiled.fields.find((f) => f.profile === 'first_name')!;
    expect(first).toMatchObject({
      direction: 'both',
      conflict: 'fill_if_empty',
      onEmpty: 'clear',
      tieBreaker: 'remote',
      required: false,
    });
    expect(compiled.identity).toEqual({
      match: [
        { remote: 'email', identifier: 'email' },
        { remote: 'crmhub_id', identifier: 'profile_id' },
      ],
      onNoMatch: 'create',
      onMultiple: 'first',
    });
  });

  it('toRemote applies to_remote transforms and only to_remote/both fields', () => {
    const compiled = loadMappingText(
      'c.yaml',
      'hubspot/contacts.yaml',
      text('mappings/hubspot/contacts.yaml'),
    ).compiled!;
    const out = toRemote(compiled, {
      email: ' Ada@Example.com',
      first_name: ' Ada ',
      plan: 'pro',
      product_usage_score: '42.5',
      churn_risk: 'unknown-level',
      audiences: ['power_users', 'newsletter'],
      deal_stage: 'won',
    });
    expect(out).toEqual({
      email: 'ada@example.com',
      firstname: 'Ada',
      crmhub_plan: 'pro',
      crmhub_product_usage_score: 42.5,
      crmhub_audiences: 'power_users;newsletter',
    });
  });

  it('toProfile applies to_profile transforms and only to_profile/both fields', () => {
    const compiled = loadMappingText(
      'd.yaml',
      'hubspot/deals.yaml',
      text('mappings/hubspot/deals.yaml'),
    ).compiled!;
    const traits = toProfile(compiled, {
      dealstage: 'closedwon',
      amount: '1200.50',
      hubspot_owner_id: ' 77 ',
      closedate: String(Date.UTC(2026, 11, 24)),
      dealname: 'Big one',
    });
    expect(traits).toEqual({
      deal_name: 'Big one',
      deal_stage: 'closedwon',
      deal_amount: 1200.5,
      deal_owner: '77',
      deal_close_date: '2026-12-24',
    });
  });

  it('keeps Pipedrive custom field names and resolves them to hash keys at run time', () => {
    const compiled = loadMappingText(
      'p.yaml',
      'pipedrive/persons.yaml',
      text('mappings/pipedrive/persons.yaml'),
    ).compiled!;
    expect(compiled.fields.some((f) => f.remote === 'Plan')).toBe(true);
    const hash = 'a'.repeat(40);
    const resolve = resolverFromSchema({
      object: 'persons',
      fields: [
        {
          name: hash,
          label: 'Plan',
          type: 'enum',
          readOnly: false,
          unique: false,
          required: false,
          custom: true,
        },
      ],
    });
    expect(toRemote(compiled, { plan: 'starter', first_name: 'Ada' }, resolve)).toEqual({
      [hash]: 'starter',
      first_name: 'Ada',
    });
    expect(toProfile(compiled, { email: 'ADA@X.IO' }, resolve)).toEqual({ email: 'ada@x.io' });
    expect(remoteFieldKeys(compiled, resolve)).toContain(hash);
  });

  it('compiles from a parsed document without a file', () => {
    const { doc } = validateMappingSource(text('mappings/salesforce/Lead.yaml'), { file: 'Lead.yaml' });
    const compiled = compileMapping(doc!);
    expect(compiled.hash).toMatch(/^[0-9a-f]{64}$/);
    const source = compiled.fields.find((f) => f.remote === 'LeadSource')!;
    expect(source.profile).toBeUndefined();
    expect(toRemote(compiled, {})).toEqual({ LeadSource: 'Web' });
  });
});
