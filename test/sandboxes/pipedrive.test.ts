/**
 * The Pipedrive sandbox driven by the official `pipedrive` SDK (v2 PersonsApi, OrganizationsApi,
 * DealsApi, PersonFieldsApi…, v1 WebhooksApi, RecentsApi, UsersApi). The SDK returns bodies only
 * and rejects with the error body, so statuses and headers are checked with plain fetch where the
 * SDK hides them.
 *
 * Typing note: webhook bodies, parsed SOAP/XML and some SDK results are read here as `any`
 * because they are vendor payloads asserted field by field; the shapes under test are the point,
 * and the zod schemas they must satisfy live in the connectors (this file checks the sandbox).
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- SDK error bodies and webhook JSON are inspected loosely here */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { v1, v2 } from 'pipedrive';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPipedriveSandbox, type RunningPipedriveSandbox } from '../../connectors/pipedrive/sandbox/index.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../connectors/pipedrive/webhook-receiver.ts';

let sb: RunningPipedriveSandbox;
let receiver: WebhookReceiver;
let persons: v2.PersonsApi;
let orgs: v2.OrganizationsApi;
let deals: v2.DealsApi;
let personFields: v2.PersonFieldsApi;
let webhooks: v1.WebhooksApi;
let token: string;

async function control(route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sb.baseUrl}/_sandbox/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, ...((await res.json()) as object) };
}

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new TypeError('expected a rejection');
}

async function customKey(name: string, api: 'person' | 'organization' | 'deal' = 'person'): Promise<{ key: string; options: { id: number; label: string }[] }> {
  const cfg = new v2.Configuration({ apiKey: token, basePath: `${sb.baseUrl}/api/v2` });
  const list =
    api === 'person'
      ? await new v2.PersonFieldsApi(cfg).getPersonFields({})
      : api === 'organization'
        ? await new v2.OrganizationFieldsApi(cfg).getOrganizationFields({})
        : await new v2.DealFieldsApi(cfg).getDealFields({});
  const field = (list.data ?? []).find((f: any) => f.field_name === name) as any;
  return { key: field.field_code, options: field.options ?? [] };
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  sb = await startPipedriveSandbox({ port: 0, webhookTarget: receiver.url, webhookRetryDelayMs: () => 20 });
  token = sb.credentials['apiToken']!;
  const cfg = new v2.Configuration({ apiKey: token, basePath: `${sb.baseUrl}/api/v2` });
  persons = new v2.PersonsApi(cfg);
  orgs = new v2.OrganizationsApi(cfg);
  deals = new v2.DealsApi(cfg);
  personFields = new v2.PersonFieldsApi(cfg);
  webhooks = new v1.WebhooksApi(new v1.Configuration({ apiKey: token, basePath: `${sb.baseUrl}/v1` }));
});

afterAll(async () => {
  await sb.close();
  await receiver.close();
});

beforeEach(async () => {
  await control('reset', {});
  receiver.received.length = 0;
  receiver.respond = () => 200;
});

afterEach(async () => {
  await sb.state.drainWebhooks(2000);
});

describe('credentials and auth', () => {
  it('prints credentials and env in the design.md §6 shape', () => {
    expect(Object.keys(sb.credentials).sort()).toEqual(['apiToken', 'baseUrl', 'webhookPassword', 'webhookUser']);
    expect(sb.credentials['apiToken']).toMatch(/^[0-9a-f]{40}$/);
    expect(sb.env['PIPEDRIVE_BASE_URL']).toBe(sb.baseUrl);
    expect(sb.env['PIPEDRIVE_API_TOKEN']).toBe(token);
  });

  it('refuses a wrong token with the v1 401 body', async () => {
    const bad = new v2.PersonsApi(new v2.Configuration({ apiKey: 'nope', basePath: `${sb.baseUrl}/api/v2` }));
    const error = await rejection(bad.getPersons({}));
    expect(error).toEqual({ success: false, error: 'unauthorized access', errorCode: 401, error_info: 'Please check developers.pipedrive.com' });
  });

  it('accepts the api_token query parameter', async () => {
    const res = await fetch(`${sb.baseUrl}/api/v2/persons?api_token=${token}`);
    expect(res.status).toBe(200);
  });

  it('tells who the token belongs to (v1 users/me)', async () => {
    const users = new v1.UsersApi(new v1.Configuration({ apiKey: token, basePath: `${sb.baseUrl}/v1` }));
    const me = await users.getCurrentUser();
    expect(me.data?.id).toBe(1);
  });
});

describe('persons, organizations, deals (v2 CRUD)', () => {
  it('creates, reads, updates and deletes a person with several emails and phones', async () => {
    const created = await persons.addPerson({
      AddPersonRequest: {
        name: 'Ada Lovelace',
        emails: [
          { value: 'ada@example.com', primary: true, label: 'work' },
          { value: 'ada@home.example', primary: false, label: 'home' },
        ],
        phones: [{ value: '+441234567', primary: true, label: 'work' }],
      },
    });
    const id = created.data!.id!;
    expect(created.data).toMatchObject({ name: 'Ada Lovelace', first_name: 'Ada', last_name: 'Lovelace', is_deleted: false });
    expect(created.data!.update_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const got = await persons.getPerson({ id });
    expect(got.data!.emails).toHaveLength(2);
    const updated = await persons.updatePerson({ id, UpdatePersonRequest: { name: 'Ada King' } });
    expect(updated.data).toMatchObject({ first_name: 'Ada', last_name: 'King' });
    const deleted = await persons.deletePerson({ id });
    expect(deleted.data).toEqual({ id });
    const missing = await rejection(persons.getPerson({ id }));
    expect(missing).toMatchObject({ success: false, error: 'Entity was not found', data: null, additional_data: null });
  });

  it('links deals to a person and an organization, and refuses unknown links', async () => {
    const org = await orgs.addOrganization({ AddOrganizationRequest: { name: 'Analytical Engines Ltd' } });
    const person = await persons.addPerson({ AddPersonRequest: { name: 'Charles Babbage', org_id: org.data!.id! } });
    const deal = await deals.addDeal({ AddDealRequest: { title: 'Difference engine', value: 5000, currency: 'GBP', person_id: person.data!.id!, org_id: org.data!.id!, stage_id: 3 } });
    expect(deal.data).toMatchObject({ person_id: person.data!.id, org_id: org.data!.id, stage_id: 3, pipeline_id: 1, status: 'open', value: 5000 });
    const won = await deals.updateDeal({ id: deal.data!.id!, UpdateDealRequest: { status: 'won' } });
    expect(won.data!.won_time).toBeTruthy();
    const bad = await rejection(deals.addDeal({ AddDealRequest: { title: 'x', org_id: 999 } }));
    expect(bad).toMatchObject({ success: false, data: null });
    const list = await deals.getDeals({ person_id: person.data!.id! });
    expect(list.data!.map((d) => d.id)).toEqual([deal.data!.id]);
  });

  it('validates strictly like API v2: wrong types, unknown attributes, missing name', async () => {
    const wrongType = await rejection(persons.addPerson({ AddPersonRequest: { name: 'X', owner_id: '1' as unknown as number } }));
    expect(wrongType.error).toMatch(/owner_id/);
    const unknown = await rejection(persons.addPerson({ AddPersonRequest: { name: 'X', first_name: 'Y' } as never }));
    expect(unknown.error).toMatch(/first_name/);
    const noName = await rejection(persons.addPerson({ AddPersonRequest: { emails: [{ value: 'a@b.c' }] } }));
    expect(noName.error).toMatch(/name/);
    const badCustom = await rejection(persons.addPerson({ AddPersonRequest: { name: 'X', custom_fields: { ['f'.repeat(40)]: 'x' } } }));
    expect(badCustom.error).toMatch(/Unknown custom field/);
    const plan = await customKey('Plan');
    const badOption = await rejection(persons.addPerson({ AddPersonRequest: { name: 'X', custom_fields: { [plan.key]: 'pro' } } }));
    expect(badOption.error).toMatch(/option ids/);
  });
});

describe('listing: cursor paging, filters, sorting', () => {
  it('pages with cursors, caps limit at 500 and filters by ids', async () => {
    await control('seed', { object: 'persons', count: 230 });
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await persons.getPersons({ limit: 100, ...(cursor ? { cursor } : {}) });
      seen.push(...page.data!.map((p) => p.id!));
      cursor = page.additional_data?.next_cursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(230);
    expect(new Set(seen).size).toBe(230);
    const tooMany = await rejection(persons.getPersons({ limit: 501 }));
    expect(tooMany).toMatchObject({ success: false });
    const some = await persons.getPersons({ ids: '3,5,7' });
    expect(some.data!.map((p) => p.id)).toEqual([3, 5, 7]);
    const desc = await persons.getPersons({ sort_by: 'id', sort_direction: 'desc', limit: 2 });
    expect(desc.data!.map((p) => p.id)).toEqual([230, 229]);
  });

  it('filters by updated_since (inclusive) and updated_until (exclusive), sorted by update_time', async () => {
    await control('seed', { object: 'persons', count: 3 });
    const all = await persons.getPersons({ sort_by: 'update_time' });
    const t = all.data![0]!.update_time!;
    await new Promise((r) => setTimeout(r, 1100));
    await control('edit', { object: 'persons', id: '2', fields: { name: 'Later Edit' } });
    const since = await persons.getPersons({ updated_since: t, sort_by: 'update_time', sort_direction: 'asc' });
    expect(since.data!.map((p) => p.id)).toEqual([1, 3, 2]);
    const after = new Date(Date.parse(t) + 1000).toISOString().replace('.000Z', 'Z');
    const changed = await persons.getPersons({ updated_since: after });
    expect(changed.data!.map((p) => p.id)).toEqual([2]);
    const until = await persons.getPersons({ updated_until: after });
    expect(until.data!.map((p) => p.id)).toEqual([1, 3]);
    const badTime = await rejection(persons.getPersons({ updated_since: '2025-01-01 10:00:00' }));
    expect(badTime.error).toMatch(/updated_since/);
  });

  it('limits custom_fields to the requested keys (at most 15)', async () => {
    const plan = await customKey('Plan');
    const id = (await persons.addPerson({ AddPersonRequest: { name: 'C F', custom_fields: { [plan.key]: plan.options[2]!.id } } })).data!.id!;
    const page = await persons.getPersons({ custom_fields: plan.key });
    expect(page.data!.find((p) => p.id === id)!.custom_fields).toEqual({ [plan.key]: plan.options[2]!.id });
    const tooMany = await rejection(persons.getPersons({ custom_fields: Array.from({ length: 16 }, (_, i) => String(i)).join(',') }));
    expect(tooMany.error).toMatch(/15/);
  });

  it('lists organizations and deals', async () => {
    await control('seed', { object: 'organizations', count: 4 });
    await control('seed', { object: 'persons', count: 4 });
    await control('seed', { object: 'deals', count: 6 });
    expect((await orgs.getOrganizations({})).data).toHaveLength(4);
    const dealList = await deals.getDeals({ limit: 500 });
    expect(dealList.data).toHaveLength(6);
    expect(dealList.data!.every((d) => typeof d.person_id === 'number' && typeof d.org_id === 'number')).toBe(true);
  });
});

describe('search by email', () => {
  it('finds persons by exact email, case-insensitively, and nothing for an unknown email', async () => {
    await persons.addPerson({ AddPersonRequest: { name: 'Grace Hopper', emails: [{ value: 'Grace@Navy.example', primary: true }] } });
    const hit = await persons.searchPersons({ term: 'grace@navy.example', fields: 'email', exact_match: true });
    expect(hit.data!.items!.map((i) => i.item!.name)).toEqual(['Grace Hopper']);
    const miss = await persons.searchPersons({ term: 'nobody@navy.example', fields: 'email', exact_match: true });
    expect(miss.data!.items).toEqual([]);
  });

  it('has its own tighter burst limit', async () => {
    await control('config', { rateLimit: { searchBurst: 2 } });
    await persons.searchPersons({ term: 'a@b.c', fields: 'email', exact_match: true });
    await persons.searchPersons({ term: 'a@b.c', fields: 'email', exact_match: true });
    const third = await rejection(persons.searchPersons({ term: 'a@b.c', fields: 'email', exact_match: true }));
    expect(third).toMatchObject({ success: false, error: 'Request over limit', errorCode: 429 });
    expect((await persons.getPersons({})).success).toBe(true);
    await control('config', { rateLimit: { searchBurst: 10 } });
  });

  it('lags behind writes when a search index lag is configured', async () => {
    await control('config', { searchLagMs: 60_000 });
    await persons.addPerson({ AddPersonRequest: { name: 'Lag Gard', emails: [{ value: 'lag@example.com' }] } });
    const miss = await persons.searchPersons({ term: 'lag@example.com', fields: 'email', exact_match: true });
    expect(miss.data!.items).toEqual([]);
    await control('config', { searchLagMs: 0 });
  });
});

describe('fields with 40-character keys', () => {
  it('lists standard and crmhub custom fields; custom keys are 40-hex hashes', async () => {
    const list = await personFields.getPersonFields({});
    const custom = list.data!.filter((f) => f.is_custom_field);
    expect(custom.map((f) => f.field_name)).toEqual(['crmhub id', 'Plan', 'Product usage score', 'Engagement score', 'Churn risk', 'Audiences']);
    expect(custom.every((f) => /^[0-9a-f]{40}$/.test(f.field_code))).toBe(true);
    const audiences = custom.find((f) => f.field_name === 'Audiences')!;
    expect(audiences.field_type).toBe('set');
    expect(audiences.options!.map((o) => o.label)).toEqual(['trial_users', 'power_users', 'at_risk', 'newsletter']);
    const one = await personFields.getPersonField({ field_code: audiences.field_code });
    expect(one.data!.field_name).toBe('Audiences');
    const orgFields = await customKey('Seats', 'organization');
    expect(orgFields.key).toMatch(/^[0-9a-f]{40}$/);
    expect((await customKey('crmhub id', 'deal')).key).toMatch(/^[0-9a-f]{40}$/);
  });

  it('pages the fields list with cursors', async () => {
    const first = await personFields.getPersonFields({ limit: 5 });
    expect(first.data).toHaveLength(5);
    const second = await personFields.getPersonFields({ limit: 500, cursor: first.additional_data!.next_cursor! });
    expect(second.additional_data!.next_cursor).toBeNull();
    expect(first.data!.length + second.data!.length).toBe(17);
  });

  it('renames and deletes custom fields through the control API; values of a deleted field vanish', async () => {
    const score = await customKey('Engagement score');
    const id = (await persons.addPerson({ AddPersonRequest: { name: 'S C', custom_fields: { [score.key]: 42.5 } } })).data!.id!;
    expect((await control('rename-field', { object: 'persons', key: score.key, name: 'Engagement (0-100)' })).ok).toBe(true);
    expect((await customKey('Engagement (0-100)')).key).toBe(score.key);
    expect((await control('delete-field', { object: 'persons', key: score.key })).ok).toBe(true);
    const after = await persons.getPerson({ id });
    expect(Object.keys(after.data!.custom_fields!)).not.toContain(score.key);
    const write = await rejection(persons.updatePerson({ id, UpdatePersonRequest: { custom_fields: { [score.key]: 1 } } }));
    expect(write.error).toMatch(/Unknown custom field/);
    expect((await control('delete-field', { object: 'persons', key: score.key })).status).toBe(400);
    await control('reset', {});
    expect((await customKey('Engagement score')).key).toBe(score.key);
  });
});

describe('rate limits', () => {
  it('answers over the burst with 429, Pipedrive body and rate-limit headers', async () => {
    await control('config', { rateLimit: { burst: 3, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++) await persons.getPersons({});
    const error = await rejection(persons.getPersons({}));
    expect(error).toEqual({ success: false, error: 'Request over limit', errorCode: 429, error_info: 'Please check developers.pipedrive.com' });
    const res = await fetch(`${sb.baseUrl}/api/v2/persons`, { headers: { 'x-api-token': token } });
    expect(res.status).toBe(429);
    expect(res.headers.get('x-ratelimit-limit')).toBe('3');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    expect(res.headers.get('x-daily-ratelimit-token-limit')).toBe('300000');
    const stats = await control('stats');
    expect(stats.rateLimited).toBe(2);
    await control('config', { rateLimit: { burst: 80, windowMs: 2000 } });
  });

  it('charges each endpoint its token cost and refuses calls once the daily budget is spent', async () => {
    await control('config', { dailyQuota: 25 });
    const r1 = await fetch(`${sb.baseUrl}/api/v2/persons`, { headers: { 'x-api-token': token } }); // list: 10 tokens
    expect(r1.headers.get('x-daily-ratelimit-token-remaining')).toBe('15');
    await persons.addPerson({ AddPersonRequest: { name: 'Budget' } }); // add: 5 tokens
    await persons.getPersons({}); // 10 → 0 left
    const error = await rejection(persons.getPerson({ id: 1 }));
    expect(error).toMatchObject({ errorCode: 429, error: 'Request over limit' });
    await control('config', { dailyQuota: 300_000 });
  });
});

describe('webhooks', () => {
  it('sends v2 webhooks with Basic auth: api writes say change_source api, rep edits say app, previous holds changed fields only', async () => {
    const plan = await customKey('Plan');
    const created = await persons.addPerson({ AddPersonRequest: { name: 'Web Hook', emails: [{ value: 'wh@example.com' }] } });
    const id = created.data!.id!;
    await control('edit', { object: 'persons', id: String(id), fields: { name: 'Web Hooked', Plan: 'pro' } });
    await control('delete', { object: 'persons', id: String(id) });
    const hooks = await receiver.waitFor(3, (h) => h.path === '/webhooks/pipedrive');
    const expected = `Basic ${Buffer.from(`${sb.credentials['webhookUser']}:${sb.credentials['webhookPassword']}`).toString('base64')}`;
    expect(hooks.every((h) => h.headers.authorization === expected)).toBe(true);
    const [create, change, del] = hooks.map((h) => h.body as any);
    expect(create.meta).toMatchObject({ action: 'create', entity: 'person', entity_id: String(id), change_source: 'api', version: '2.0', attempt: 1, user_id: '1' });
    expect(create.meta.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isNaN(Date.parse(create.meta.timestamp))).toBe(false);
    expect(create.previous).toBeNull();
    expect(change.meta).toMatchObject({ action: 'change', change_source: 'app' });
    expect(change.meta.user_id).not.toBe('1');
    expect(change.data.name).toBe('Web Hooked');
    expect(change.data.custom_fields[plan.key]).toEqual({ type: 'enum', value: plan.options.find((o) => o.label === 'pro')!.id });
    expect(change.previous).toEqual({ name: 'Web Hook', last_name: 'Hook', custom_fields: { [plan.key]: null } });
    expect(del.meta).toMatchObject({ action: 'delete', change_source: 'app' });
    expect(del.data).toBeNull();
    expect(del.previous.id).toBe(id);
  });

  it('retries a failed delivery with a growing attempt number', async () => {
    receiver.respond = (_h, i) => (i < 2 ? 500 : 200);
    await persons.addPerson({ AddPersonRequest: { name: 'Retry Me' } });
    const hooks = await receiver.waitFor(3);
    expect(hooks.map((h) => (h.body as any).meta.attempt)).toEqual([1, 2, 3]);
    expect(new Set(hooks.map((h) => (h.body as any).meta.id)).size).toBe(1);
  });

  it('registers webhooks through v1 (add/list/delete); v1 subscriptions get v1 payloads at their own URL', async () => {
    const added = await webhooks.addWebhook({
      AddWebhookRequest: { subscription_url: `${receiver.url}/mine`, event_action: 'change', event_object: 'deal', name: 'deals v1', version: '1.0', http_auth_user: 'u', http_auth_password: 'p' },
    });
    expect(added.data).toMatchObject({ event_action: 'change', event_object: 'deal', version: '1.0' });
    const list = await webhooks.getWebhooks();
    expect(list.data!.map((w) => w.name)).toContain('deals v1');
    const deal = await deals.addDeal({ AddDealRequest: { title: 'Old title', value: 10 } });
    await deals.updateDeal({ id: deal.data!.id!, UpdateDealRequest: { title: 'New title' } });
    const [hook] = await receiver.waitFor(1, (h) => h.path === '/mine');
    const body = hook!.body as any;
    expect(body).toMatchObject({ v: 1, event: 'updated.deal', meta: { action: 'updated', object: 'deal', change_source: 'api' }, current: { title: 'New title' }, previous: { title: 'Old title' } });
    expect(hook!.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    await webhooks.deleteWebhook({ id: added.data!.id! });
    expect((await webhooks.getWebhooks()).data!.map((w) => w.name)).not.toContain('deals v1');
    const invalid = await rejection(webhooks.addWebhook({ AddWebhookRequest: { subscription_url: 'x', event_action: 'create', event_object: 'deal', name: 'n' } }));
    expect(invalid).toMatchObject({ success: false, errorCode: 400 });
  });

  it('sends to a webhook URL set at run time', async () => {
    await control('config', { webhookUrl: `${receiver.url}/elsewhere` });
    await persons.addPerson({ AddPersonRequest: { name: 'Else Where' } });
    await receiver.waitFor(1, (h) => h.path === '/elsewhere');
    await control('config', { webhookUrl: `${receiver.url}/webhooks/pipedrive` });
  });
});

describe('recents (v1) and control API', () => {
  it('lists recent changes since a timestamp, deletions included', async () => {
    const recents = new v1.RecentsApi(new v1.Configuration({ apiKey: token, basePath: `${sb.baseUrl}/v1` }));
    await control('seed', { object: 'persons', count: 2 });
    await control('delete', { object: 'persons', id: '1' });
    const page = await recents.getRecents({ since_timestamp: '2000-01-01 00:00:00', items: 'person' });
    expect(page.data!.map((r: any) => [r.id, r.data.active_flag])).toEqual(expect.arrayContaining([[1, false], [2, true]]));
  });

  it('counts calls per route and records per object in stats, and seeds realistic records', async () => {
    const seeded = await control('seed', { object: 'persons', count: 5 });
    expect(seeded.ids).toHaveLength(5);
    const p = await persons.getPerson({ id: Number(seeded.ids[0]) });
    expect(p.data!.emails![0]!.value).toMatch(/@/);
    expect(p.data!.name).toMatch(/\w+ \w+/);
    await persons.getPerson({ id: 2 });
    const stats = await control('stats');
    expect(stats.calls['GET /api/v2/persons/:id']).toBe(2);
    expect(stats.records).toEqual({ persons: 5, organizations: 0, deals: 0 });
    const details = await control('pipedrive');
    expect(details.written).toEqual({ person: 0, organization: 0, deal: 0 });
  });

  it('injects faults (5xx share)', async () => {
    await control('config', { faults: { errorRate: 1 } });
    const res = await fetch(`${sb.baseUrl}/api/v2/persons`, { headers: { 'x-api-token': token } });
    expect(res.status).toBe(503);
    await control('config', { faults: {} });
  });

  it('refuses unknown objects in control calls', async () => {
    expect((await control('seed', { object: 'leads', count: 1 })).status).toBe(400);
    expect((await control('edit', { object: 'persons', id: '999', fields: { name: 'x' } })).status).toBe(404);
  });
});

describe('persistence', () => {
  it('saves state to a file at close and loads it at start, custom field keys included', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pd-sandbox-'));
    const stateFile = path.join(dir, 'state.json');
    try {
      const first = await startPipedriveSandbox({ port: 0, stateFile, apiToken: 'a'.repeat(40) });
      const cfg = new v2.Configuration({ apiKey: 'a'.repeat(40), basePath: `${first.baseUrl}/api/v2` });
      const keys = (await new v2.PersonFieldsApi(cfg).getPersonFields({})).data!.filter((f) => f.is_custom_field).map((f) => f.field_code);
      await new v2.PersonsApi(cfg).addPerson({ AddPersonRequest: { name: 'Per Sist' } });
      await first.close();
      const second = await startPipedriveSandbox({ port: 0, stateFile, apiToken: 'a'.repeat(40) });
      const cfg2 = new v2.Configuration({ apiKey: 'a'.repeat(40), basePath: `${second.baseUrl}/api/v2` });
      expect((await new v2.PersonsApi(cfg2).getPerson({ id: 1 })).data!.name).toBe('Per Sist');
      const keys2 = (await new v2.PersonFieldsApi(cfg2).getPersonFields({})).data!.filter((f) => f.is_custom_field).map((f) => f.field_code);
      expect(keys2).toEqual(keys);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
