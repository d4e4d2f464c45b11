/**
 * Validates the Pipedrive sandbox's responses against Pipedrive's published OpenAPI files
 * (`/work/shared/crm-reference/specs/pipedrive/openapi-v2.yaml`, `openapi-v1.yaml`): every list,
 * get, add, update, delete, search and fields response must match its 200/201 response schema.
 *
 * OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a `null` alternative; `example` and `x-*`
 * keys are dropped. RELAXED lists the attributes the spec types as non-nullable although the real
 * API returns `null` for them when unset (a person without organization has `org_id: null`, the
 * last page has `next_cursor: null`, an open deal has `won_time: null`, …); only those may be null.
 */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import { v1, v2 } from 'pipedrive';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipedriveSandbox, type RunningPipedriveSandbox } from '../../connectors/pipedrive/sandbox/index.ts';

const SPEC_DIR = fileURLToPath(new URL('../../../shared/crm-reference/specs/pipedrive', import.meta.url));
const RELAXED = new Set([
  'org_id',
  'person_id',
  'picture_id',
  'next_cursor',
  'address',
  'organization',
  'person',
  'stage_change_time',
  'won_time',
  'lost_time',
  'archive_time',
  'expected_close_date',
  'origin',
  'description',
  'subfields',
  'remove_time',
  'http_auth_user',
  'http_auth_password',
  'remove_reason',
  'last_delivery_time',
  'last_http_status',
]);

type Schema = Record<string, unknown>;

function toJsonSchema(node: unknown, relaxedName?: string): unknown {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(n));
  if (!node || typeof node !== 'object') return node;
  const src = node as Schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(src)) {
    if (key === 'example' || key === 'nullable' || key.startsWith('x-')) continue;
    if (key === 'properties' && value && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([name, sub]) => [name, toJsonSchema(sub, name)]));
    } else out[key] = toJsonSchema(value);
  }
  if (src['nullable'] === true || (relaxedName !== undefined && RELAXED.has(relaxedName))) {
    if (typeof out['type'] === 'string') {
      out['type'] = [out['type'], 'null'];
      if (Array.isArray(out['enum'])) out['enum'] = [...(out['enum'] as unknown[]), null];
    } else return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true });
// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
const addFormats = (addFormatsModule).default ?? (addFormatsModule as unknown as FormatsPlugin);
addFormats(ajv);

function loadValidators(file: string): (method: string, path: string, status?: string) => ValidateFunction {
  const spec = parse(readFileSync(`${SPEC_DIR}/${file}`, 'utf8')) as { paths: Record<string, Record<string, Schema>> };
  const cache = new Map<string, ValidateFunction>();
  return (method, path, status = '200') => {
    const key = `${method} ${path} ${status}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const op = spec.paths[path]?.[method] as { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> } | undefined;
    const schema = op?.responses?.[status]?.content?.['application/json']?.schema;
    if (!schema) throw new TypeError(`no ${status} schema for ${key}`);
    const validate = ajv.compile(toJsonSchema(schema) as object);
    cache.set(key, validate);
    return validate;
  };
}

let sb: RunningPipedriveSandbox;
let v2Schema: ReturnType<typeof loadValidators>;
let v1Schema: ReturnType<typeof loadValidators>;
let cfg: v2.Configuration;

function expectValid(validate: ValidateFunction, body: unknown): void {
  const ok = validate(body);
  expect(ok ? [] : validate.errors?.map((e) => `${e.instancePath} ${e.message ?? ''}`)).toEqual([]);
}

beforeAll(async () => {
  v2Schema = loadValidators('openapi-v2.yaml');
  v1Schema = loadValidators('openapi-v1.yaml');
  sb = await startPipedriveSandbox({ port: 0 });
  cfg = new v2.Configuration({ apiKey: sb.credentials['apiToken']!, basePath: `${sb.baseUrl}/api/v2` });
  await fetch(`${sb.baseUrl}/_sandbox/seed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ object: 'organizations', count: 3 }) });
  await fetch(`${sb.baseUrl}/_sandbox/seed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ object: 'persons', count: 5 }) });
  await fetch(`${sb.baseUrl}/_sandbox/seed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ object: 'deals', count: 5 }) });
});

afterAll(async () => {
  await sb.close();
});

describe('Pipedrive sandbox responses match openapi-v2.yaml', () => {
  it('persons: list, add, get, update, search, delete', async () => {
    const api = new v2.PersonsApi(cfg);
    const fields = await new v2.PersonFieldsApi(cfg).getPersonFields({});
    const plan = fields.data!.find((f) => f.field_name === 'Plan')!;
    const audiences = fields.data!.find((f) => f.field_name === 'Audiences')!;
    expectValid(v2Schema('get', '/persons'), await api.getPersons({ limit: 2 }));
    expectValid(v2Schema('get', '/persons'), await api.getPersons({ limit: 500, sort_by: 'update_time' }));
    const added = await api.addPerson({
      AddPersonRequest: {
        name: 'Spec Check',
        emails: [{ value: 'spec@example.com', primary: true, label: 'work' }],
        phones: [{ value: '+15550001', primary: true, label: 'mobile' }],
        org_id: 1,
        custom_fields: { [plan.field_code]: plan.options![0]!.id, [audiences.field_code]: [audiences.options![0]!.id] },
      },
    });
    expectValid(v2Schema('post', '/persons'), added);
    const id = added.data!.id!;
    const got = await api.getPerson({ id });
    expectValid(v2Schema('get', '/persons/{id}'), got);
    // The converted schema still has teeth: a wrongly typed attribute fails.
    expect(v2Schema('get', '/persons/{id}')({ ...got, data: { ...got.data, emails: 'spec@example.com' } })).toBe(false);
    expectValid(v2Schema('patch', '/persons/{id}'), await api.updatePerson({ id, UpdatePersonRequest: { name: 'Spec Checked', org_id: null as unknown as number } }));
    expectValid(v2Schema('get', '/persons/search'), await api.searchPersons({ term: 'spec@example.com', fields: 'email', exact_match: true }));
    expectValid(v2Schema('get', '/persons/search'), await api.searchPersons({ term: 'Spec', fields: 'name' }));
    expectValid(v2Schema('delete', '/persons/{id}'), await api.deletePerson({ id }));
  });

  it('organizations: list, add, get, update, delete', async () => {
    const api = new v2.OrganizationsApi(cfg);
    expectValid(v2Schema('get', '/organizations'), await api.getOrganizations({}));
    const added = await api.addOrganization({ AddOrganizationRequest: { name: 'Spec Org', website: 'https://spec.example' } });
    expectValid(v2Schema('post', '/organizations'), added);
    const id = added.data!.id!;
    expectValid(v2Schema('get', '/organizations/{id}'), await api.getOrganization({ id }));
    const found = await api.searchOrganization({ term: 'Spec Org', fields: 'name', exact_match: true });
    expect(found.data!.items!.map((i) => i.item!.id)).toEqual([id]);
    expectValid(v2Schema('get', '/organizations/search'), found);
    expectValid(v2Schema('patch', '/organizations/{id}'), await api.updateOrganization({ id, UpdateOrganizationRequest: { employee_count: 12 } }));
    expectValid(v2Schema('delete', '/organizations/{id}'), await api.deleteOrganization({ id }));
  });

  it('deals: list, add, get, update, delete', async () => {
    const api = new v2.DealsApi(cfg);
    expectValid(v2Schema('get', '/deals'), await api.getDeals({ limit: 3 }));
    const added = await api.addDeal({ AddDealRequest: { title: 'Spec Deal', value: 100, currency: 'EUR', person_id: 1, org_id: 1, expected_close_date: '2027-01-31' } });
    expectValid(v2Schema('post', '/deals'), added);
    const id = added.data!.id!;
    expectValid(v2Schema('get', '/deals/{id}'), await api.getDeal({ id }));
    const found = await api.searchDeals({ term: 'Spec Deal', fields: 'title' });
    expect(found.data!.items!.map((i) => i.item!.id)).toEqual([id]);
    expectValid(v2Schema('get', '/deals/search'), found);
    expectValid(v2Schema('patch', '/deals/{id}'), await api.updateDeal({ id, UpdateDealRequest: { status: 'won', stage_id: 4 } }));
    expectValid(v2Schema('delete', '/deals/{id}'), await api.deleteDeal({ id }));
  });

  it('fields: person, organization and deal fields, one field', async () => {
    const persons = await new v2.PersonFieldsApi(cfg).getPersonFields({ include_fields: 'ui_visibility,important_fields,required_fields' });
    expectValid(v2Schema('get', '/personFields'), persons);
    expectValid(v2Schema('get', '/personFields'), await new v2.PersonFieldsApi(cfg).getPersonFields({ limit: 3 }));
    expectValid(v2Schema('get', '/personFields/{field_code}'), await new v2.PersonFieldsApi(cfg).getPersonField({ field_code: persons.data![3]!.field_code }));
    expectValid(v2Schema('get', '/organizationFields'), await new v2.OrganizationFieldsApi(cfg).getOrganizationFields({}));
    expectValid(v2Schema('get', '/dealFields'), await new v2.DealFieldsApi(cfg).getDealFields({}));
  });
});

describe('Pipedrive sandbox v1 responses match openapi-v1.yaml', () => {
  it('webhooks add/list/delete and users/me', async () => {
    const v1cfg = new v1.Configuration({ apiKey: sb.credentials['apiToken']!, basePath: `${sb.baseUrl}/v1` });
    const hooks = new v1.WebhooksApi(v1cfg);
    const added = await hooks.addWebhook({ AddWebhookRequest: { subscription_url: 'http://127.0.0.1:9/x', event_action: '*', event_object: '*', name: 'spec' } });
    expectValid(v1Schema('post', '/webhooks', '201'), added);
    expectValid(v1Schema('get', '/webhooks'), await hooks.getWebhooks());
    expectValid(v1Schema('delete', '/webhooks/{id}'), await hooks.deleteWebhook({ id: added.data!.id! }));
    expectValid(v1Schema('get', '/users/me'), await new v1.UsersApi(v1cfg).getCurrentUser());
  });
});
