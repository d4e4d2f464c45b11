import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mappingJsonSchemaText } from '../../src/mapping/json-schema.ts';
import { loadMappingDir } from '../../src/mapping/load-mappings.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const mappingsDir = path.join(root, 'mappings');

const SHIPPED = [
  'hubspot/companies',
  'hubspot/contacts',
  'hubspot/deals',
  'pipedrive/deals',
  'pipedrive/organizations',
  'pipedrive/persons',
  'salesforce/Account',
  'salesforce/Contact',
  'salesforce/Lead',
  'salesforce/Opportunity',
];

describe('shipped default mappings', () => {
  it('every shipped mapping file validates offline with no issue at all', async () => {
    const result = await loadMappingDir(mappingsDir);
    expect(result.issues).toEqual([]);
    expect(result.files.map((f) => `${f.compiled?.connector}/${f.compiled?.object}`).sort()).toEqual(SHIPPED);
  });

  it('every file references the generated schema for editor help', async () => {
    const result = await loadMappingDir(mappingsDir);
    for (const f of result.files) {
      expect(readFileSync(f.file, 'utf8').split('\n')[0]).toBe(
        '# yaml-language-server: $schema=../mapping.schema.json',
      );
    }
  });

  it('carries the CDP → CRM flows to the crmhub custom fields and the deal facts back', async () => {
    const { files } = await loadMappingDir(mappingsDir);
    const byKey = new Map(files.map((f) => [`${f.compiled?.connector}/${f.compiled?.object}`, f.compiled!]));
    for (const key of ['hubspot/contacts', 'salesforce/Contact', 'salesforce/Lead', 'pipedrive/persons']) {
      const outbound = byKey
        .get(key)!
        .fields.filter((f) => f.direction === 'to_remote')
        .map((f) => f.profile);
      expect(outbound).toEqual(
        expect.arrayContaining([
          'plan',
          'product_usage_score',
          'engagement_score',
          'churn_risk',
          'audiences',
        ]),
      );
    }
    for (const key of ['hubspot/deals', 'salesforce/Opportunity', 'pipedrive/deals']) {
      const inbound = byKey
        .get(key)!
        .fields.filter((f) => f.direction === 'to_profile')
        .map((f) => f.profile);
      expect(inbound).toEqual(
        expect.arrayContaining(['deal_stage', 'deal_amount', 'deal_owner', 'deal_close_date']),
      );
    }
    const phone = byKey.get('hubspot/contacts')!.fields.find((f) => f.profile === 'phone')!;
    expect(phone).toMatchObject({ direction: 'both', conflict: 'prefer_remote_unless_empty' });
    expect(byKey.get('hubspot/contacts')!.identity.match[0]).toEqual({
      remote: 'email',
      identifier: 'email',
    });
  });

  it('mappings/mapping.schema.json is the generated schema, byte for byte', () => {
    expect(readFileSync(path.join(mappingsDir, 'mapping.schema.json'), 'utf8')).toBe(mappingJsonSchemaText());
    expect(mappingJsonSchemaText()).toBe(mappingJsonSchemaText());
    expect(mappingJsonSchemaText().endsWith('}\n')).toBe(true);
  });

  it('documents every property in the JSON Schema', () => {
    const missing: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}[${i}]`));
      if (node === null || typeof node !== 'object') return;
      const obj = node as Record<string, unknown>;
      const props = obj.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [name, prop] of Object.entries(props ?? {})) {
        if (typeof prop.description !== 'string' || prop.description.length === 0)
          missing.push(`${at}.${name}`);
      }
      for (const [k, v] of Object.entries(obj)) walk(v, `${at}.${k}`);
    };
    walk(JSON.parse(mappingJsonSchemaText()), '$');
    expect(missing).toEqual([]);
  });

  it('the JSON Schema editors use accepts every shipped file and rejects what zod rejects', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(mappingJsonSchemaText()));
    const { files } = await loadMappingDir(mappingsDir);
    for (const f of files) {
      const ok = validate(parse(readFileSync(f.file, 'utf8')));
      expect(validate.errors ?? [], f.file).toEqual([]);
      expect(ok).toBe(true);
    }
    const bad = parse(
      readFileSync(path.join(root, 'test/mappings/fixtures/invalid/unknown-key.yaml'), 'utf8'),
    );
    expect(validate(bad)).toBe(false);
  });
});
