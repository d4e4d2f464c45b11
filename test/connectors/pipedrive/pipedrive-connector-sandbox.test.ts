/**
 * The Pipedrive connector against the sandbox: call counts per operation (from /_sandbox/stats),
 * custom fields by name, renames and deletions, cursors with same-second ties, webhooks with
 * origin, deletes, rate limits and the daily budget.
 */
import { v2 } from 'pipedrive';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import type { RemoteRecord, WriteOutcome } from '../../../src/connector-kit/connector.ts';
import pipedriveModule from '../../../connectors/pipedrive/index.ts';
import { PipedriveConnector } from '../../../connectors/pipedrive/pipedrive-connector.ts';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts';
import { startPipedriveRig, type PipedriveTestRig } from './sandbox-harness.ts';

let rig: PipedriveTestRig;
let receiver: WebhookReceiver;

function ok(outcome: WriteOutcome | undefined): Extract<WriteOutcome, { ok: true }> {
  if (!outcome?.ok) throw new TypeError(`write failed: ${outcome ? JSON.stringify(outcome.error.toJSON()) : 'no outcome'}`);
  return outcome;
}

function failed(outcome: WriteOutcome | undefined): CrmhubError {
  if (!outcome || outcome.ok) throw new TypeError('expected a failed outcome');
  return outcome.error;
}

async function callDelta<T>(run: () => Promise<T>): Promise<{ result: T; calls: Record<string, number> }> {
  const before = (await rig.stats()).calls;
  const result = await run();
  const after = (await rig.stats()).calls;
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) calls[k] = v - (before[k] ?? 0);
  return { result, calls };
}

async function readAll(connector: PipedriveConnector, object: string, cursor: string | null, pageSize: number, full = false): Promise<{ records: RemoteRecord[]; cursor: string | null }> {
  const records: RemoteRecord[] = [];
  for (;;) {
    const page = await connector.readChanges(object, cursor, { pageSize, ...(full ? { full: true } : {}) });
    records.push(...page.records);
    cursor = page.nextCursor ?? cursor;
    if (page.done) return { records, cursor };
  }
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  rig = await startPipedriveRig({ webhookTarget: receiver.url });
});

afterAll(async () => {
  await rig.close();
  await receiver.close();
});

beforeEach(async () => {
  await rig.control('reset', {});
  await rig.sb.state.drainWebhooks(1000);
  receiver.received.length = 0;
});

describe('outbound writes', () => {
  it('updates a linked person with exactly one PATCH and no search; custom fields by name and label', async () => {
    const [id] = (await rig.control('seed', { object: 'persons', count: 1 }))['ids'] as string[];
    await rig.connector.describe('persons'); // warm the field cache (one fields call, not per write)
    const { result, calls } = await callDelta(() =>
      rig.connector.write('persons', [{ ref: 'r1', remoteId: id!, fields: { Plan: 'enterprise', 'Product usage score': 87.5, Audiences: 'trial_users,at_risk' } }]),
    );
    expect(ok(result[0]).remoteId).toBe(id);
    expect(calls).toEqual({ 'PATCH /api/v2/persons/:id': 1 });
    const [read] = await rig.connector.readByIds('persons', [id!]);
    expect(read!.fields).toMatchObject({ Plan: 'enterprise', 'Product usage score': 87.5, Audiences: 'trial_users,at_risk' });
  });

  it('searches once then creates a person never seen, and updates it (no duplicate) on the next write', async () => {
    await rig.connector.describe('persons');
    const item = { ref: 'n1', upsertKey: { field: 'crmhub id', value: 'prf_new1' }, fields: { email: 'new.person@example.com', first_name: 'New', last_name: 'Person', Plan: 'free' } };
    const first = await callDelta(() => rig.connector.write('persons', [item]));
    expect(first.calls).toEqual({ 'GET /api/v2/persons/search': 1, 'POST /api/v2/persons': 1 });
    const created = ok(first.result[0]);
    expect(created.created).toBe(true);
    const second = await callDelta(() => rig.connector.write('persons', [{ ...item, fields: { ...item.fields, Plan: 'starter' } }]));
    expect(second.calls).toEqual({ 'GET /api/v2/persons/search': 1, 'PATCH /api/v2/persons/:id': 1 });
    expect(ok(second.result[0])).toMatchObject({ remoteId: created.remoteId, created: false });
    const [read] = await rig.connector.readByIds('persons', [created.remoteId]);
    expect(read!.fields).toMatchObject({ name: 'New Person', email: 'new.person@example.com', Plan: 'starter', 'crmhub id': 'prf_new1' });
    expect((await rig.stats()).calls['POST /api/v2/persons']).toBe(1);
  });

  it('never takes a failed search for "not found": the record fails and nothing is created', async () => {
    await rig.control('config', { rateLimit: { searchBurst: 1 } });
    const cfg = new v2.Configuration({ apiKey: rig.sb.credentials['apiToken']!, basePath: `${rig.sb.baseUrl}/api/v2` });
    await new v2.PersonsApi(cfg).searchPersons({ term: 'x@y.z', fields: 'email', exact_match: true }); // uses up the search burst
    const outcomes = await rig.connector.write('persons', [
      { ref: 's1', fields: { email: 'search.fails@example.com', first_name: 'S' } },
      { ref: 's2', remoteId: '999999', fields: { Plan: 'pro' } },
    ]);
    expect(failed(outcomes.find((o) => o.ref === 's1')).kind).toBe('rate_limited');
    expect((await rig.stats()).calls['POST /api/v2/persons']).toBeUndefined();
    expect(failed(outcomes.find((o) => o.ref === 's2')).code).toBe('PIPEDRIVE_NOT_FOUND');
    await rig.control('config', { rateLimit: { searchBurst: 10 } });
  });

  it('parks two persons with the same email as a conflict', async () => {
    await rig.repCreatePerson({ first_name: 'Twin', last_name: 'One', email: 'twin@example.com' });
    await rig.repCreatePerson({ first_name: 'Twin', last_name: 'Two', email: 'twin@example.com' });
    const [outcome] = await rig.connector.write('persons', [{ ref: 't', fields: { email: 'twin@example.com', Plan: 'pro' } }]);
    expect(failed(outcome).kind).toBe('conflict');
  });

  it('keeps secondary emails when the primary changes, and composes the name from first and last', async () => {
    const id = await rig.repCreatePerson({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@old.example' });
    await rig.control('edit', { object: 'persons', id, fields: { emails: [{ value: 'ada@old.example', primary: true }, { value: 'ada@home.example', primary: false }] } });
    await rig.connector.readByIds('persons', [id]); // the engine reads linked records before writing
    const { calls } = await callDelta(() => rig.connector.write('persons', [{ ref: 'e', remoteId: id, fields: { email: 'ada@new.example', last_name: 'King' } }]));
    expect(calls).toEqual({ 'PATCH /api/v2/persons/:id': 1 });
    const [read] = await rig.connector.readByIds('persons', [id]);
    expect(read!.fields).toMatchObject({ name: 'Ada King', first_name: 'Ada', last_name: 'King', email: 'ada@new.example', emails: ['ada@new.example', 'ada@home.example'] });
  });

  it('writes deals linked to a person and an organization and reads the links back', async () => {
    const org = ok((await rig.connector.write('organizations', [{ ref: 'o', upsertKey: { field: 'crmhub id', value: 'prf_acc1' }, fields: { name: 'Linked Org', Seats: 12, Plan: 'pro' } }]))[0]);
    const person = ok((await rig.connector.write('persons', [{ ref: 'p', fields: { first_name: 'Deal', last_name: 'Owner', email: 'deal.owner@example.com', org_id: Number(org.remoteId) } }]))[0]);
    const deal = ok(
      (await rig.connector.write('deals', [{ ref: 'd', fields: { title: 'Big deal', value: '1200.50', currency: 'EUR', stage_id: 2, person_id: person.remoteId, org_id: org.remoteId, expected_close_date: '2027-03-01T00:00:00Z', 'crmhub id': 'deal-1' } }]))[0],
    );
    const [read] = await rig.connector.readByIds('deals', [deal.remoteId]);
    expect(read!.fields).toMatchObject({ title: 'Big deal', value: 1200.5, stage_id: 2, person_id: Number(person.remoteId), org_id: Number(org.remoteId), expected_close_date: '2027-03-01', 'crmhub id': 'deal-1' });
    const [orgRead] = await rig.connector.readByIds('organizations', [org.remoteId]);
    expect(orgRead!.fields).toMatchObject({ name: 'Linked Org', Seats: 12, Plan: 'pro' });
    // Found again by its crmhub id (custom field search), not created twice.
    const again = ok((await rig.connector.write('organizations', [{ ref: 'o2', upsertKey: { field: 'crmhub id', value: 'prf_acc1' }, fields: { Seats: 13 } }]))[0]);
    expect(again).toMatchObject({ remoteId: org.remoteId, created: false });
  });

  it('deletes (idempotently) and rejects a whole batch only when every item failed alike', async () => {
    const id = await rig.repCreatePerson({ first_name: 'Gone', last_name: 'Soon' });
    expect(ok((await rig.connector.write('persons', [{ ref: 'x', remoteId: id, fields: {}, delete: true }]))[0]).remoteId).toBe(id);
    expect(ok((await rig.connector.write('persons', [{ ref: 'y', remoteId: id, fields: {}, delete: true }]))[0]).remoteId).toBe(id);
    const bad = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: 'wrong' });
    const error = await bad.write('persons', [{ ref: 'a', remoteId: '1', fields: { name: 'x' } }]).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(CrmhubError);
    expect((error as CrmhubError).kind).toBe('auth');
  });
});

describe('custom fields by name', () => {
  it('notices a renamed field and a deleted one, naming the field in a config error', async () => {
    const id = await rig.repCreatePerson({ first_name: 'Field', last_name: 'Test' });
    expect(ok((await rig.connector.write('persons', [{ ref: 'a', remoteId: id, fields: { 'Churn risk': 'high' } }]))[0]).ok).toBe(true);
    const details = (await rig.control('pipedrive')) as unknown as { fields: { person: { key: string; name: string }[] } };
    const churn = details.fields.person.find((f) => f.name === 'Churn risk')!;
    await rig.control('rename-field', { object: 'persons', key: churn.key, name: 'Churn (model)' });
    const fresh = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: rig.sb.credentials['apiToken']!, fieldsTtlMs: 0 });
    await fresh.write('persons', [{ ref: 'warm', remoteId: id, fields: { Plan: 'pro' } }]);
    // A connector that cached the key keeps writing the same field within its TTL (harmless);
    // one whose cache has expired knows at once.
    expect(ok((await rig.connector.write('persons', [{ ref: 'b', remoteId: id, fields: { 'Churn risk': 'low' } }]))[0]).ok).toBe(true);
    const renamedFresh = failed((await fresh.write('persons', [{ ref: 'c', remoteId: id, fields: { 'Churn risk': 'low' } }]))[0]);
    expect(renamedFresh).toMatchObject({ kind: 'config', code: 'PIPEDRIVE_UNKNOWN_FIELD' });
    expect(renamedFresh.message).toMatch(/"Churn risk"/);
    const score = details.fields.person.find((f) => f.name === 'Engagement score')!;
    expect(ok((await fresh.write('persons', [{ ref: 'd', remoteId: id, fields: { 'Engagement score': 5 } }]))[0]).ok).toBe(true);
    await rig.control('delete-field', { object: 'persons', key: score.key });
    const deleted = failed((await fresh.write('persons', [{ ref: 'e', remoteId: id, fields: { 'Engagement score': 6 } }]))[0]);
    expect(deleted).toMatchObject({ kind: 'config', code: 'PIPEDRIVE_UNKNOWN_FIELD' });
    expect(deleted.message).toMatch(/"Engagement score" was deleted/);
  });

  it('describes objects: standard fields by name, custom fields by 40-character key with their name as label', async () => {
    const schema = await rig.connector.describe('persons');
    const plan = schema.fields.find((f) => f.label === 'Plan')!;
    expect(plan.name).toMatch(/^[0-9a-f]{40}$/);
    expect(plan).toMatchObject({ type: 'enum', custom: true });
    expect(plan.options!.map((o) => o.value)).toEqual(['free', 'starter', 'pro', 'enterprise']);
    expect(schema.fields.find((f) => f.name === 'email')).toMatchObject({ custom: false, type: 'string' });
  });
});

describe('incremental pulls', () => {
  it('pages hundreds of same-second records, then skips them from the cursor but sees a same-second edit', async () => {
    await rig.control('seed', { object: 'persons', count: 250 });
    const first = await readAll(rig.connector, 'persons', null, 100);
    expect(new Set(first.records.map((r) => r.id)).size).toBe(250);
    const again = await readAll(rig.connector, 'persons', first.cursor, 100);
    expect(again.records).toEqual([]);
    await rig.control('edit', { object: 'persons', id: '17', fields: { name: 'Edited Seventeen' } });
    const after = await readAll(rig.connector, 'persons', again.cursor, 100);
    expect(after.records.map((r) => r.id)).toEqual(['17']);
    expect(after.records[0]!.fields['name']).toBe('Edited Seventeen');
  });

  it('a full pass reads everything by id and hands back an incremental cursor', async () => {
    await rig.control('seed', { object: 'organizations', count: 7 });
    await rig.control('delete', { object: 'organizations', id: '3' });
    const full = await readAll(rig.connector, 'organizations', null, 3, true);
    expect(full.records.map((r) => r.id)).toEqual(['1', '2', '4', '5', '6', '7']);
    const next = await rig.connector.readChanges('organizations', full.cursor, { pageSize: 100 });
    expect(next.done).toBe(true);
  });

  it('reads up to 100 records by id in one call and leaves unknown ids out', async () => {
    await rig.control('seed', { object: 'persons', count: 120 });
    const ids = Array.from({ length: 120 }, (_, i) => String(i + 1)).concat(['9999']);
    const { result, calls } = await callDelta(() => rig.connector.readByIds('persons', ids));
    expect(result).toHaveLength(120);
    expect(calls).toEqual({ 'GET /api/v2/persons': 2 });
  });
});

describe('webhooks', () => {
  it('turns sandbox webhooks into changes: own API writes are origin self, rep edits other, previous gives changed fields, deletes are deletes', async () => {
    const created = ok((await rig.connector.write('persons', [{ ref: 'w', fields: { first_name: 'Hook', last_name: 'Person', email: 'hook@example.com' } }]))[0]);
    await rig.control('edit', { object: 'persons', id: created.remoteId, fields: { Plan: 'pro', name: 'Hook Persona' } });
    await rig.control('delete', { object: 'persons', id: created.remoteId });
    const hooks = await receiver.waitFor(3);
    const results = [];
    for (const h of hooks) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(h.headers)) if (typeof v === 'string') headers[k] = v;
      results.push(await rig.connector.handleWebhook({ method: 'POST', url: `${receiver.url}${h.path}`, headers, rawBody: h.rawBody, now: Date.now() }));
    }
    const [create, change, del] = results.map((r) => r.changes[0]!);
    expect(create).toMatchObject({ object: 'persons', id: created.remoteId, kind: 'upsert', origin: 'self' });
    expect(create!.fields).toMatchObject({ email: 'hook@example.com', name: 'Hook Person' });
    expect(change).toMatchObject({ kind: 'upsert', origin: 'other' });
    expect(new Set(change!.changedFields)).toEqual(new Set(['name', 'last_name', 'Plan']));
    expect(change!.fields).toMatchObject({ Plan: 'pro' });
    expect(del).toMatchObject({ kind: 'delete', origin: 'other', id: created.remoteId });
    expect(new Set(results.map((r) => r.changes[0]!.deliveryId)).size).toBe(3);
  });

  it('rejects wrong or missing Basic credentials with kind auth, and malformed bodies with kind payload', async () => {
    const id = await rig.repCreatePerson({ first_name: 'A', last_name: 'B' });
    const good = await rig.personWebhook(id);
    const wrong = { ...good, headers: { authorization: `Basic ${Buffer.from('crmhub:nope').toString('base64')}` } };
    await expect(rig.connector.handleWebhook(wrong)).rejects.toMatchObject({ kind: 'auth' });
    await expect(rig.connector.handleWebhook({ ...good, headers: {} })).rejects.toMatchObject({ kind: 'auth' });
    await expect(rig.connector.handleWebhook({ ...good, rawBody: Buffer.from('{"meta":') })).rejects.toMatchObject({ kind: 'payload' });
    const unconfigured = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: 'x' });
    await expect(unconfigured.handleWebhook(good)).rejects.toMatchObject({ kind: 'auth' });
  });

  it('accepts v1 payloads', async () => {
    const id = await rig.repCreatePerson({ first_name: 'V', last_name: 'One', email: 'v1@example.com' });
    const good = await rig.personWebhook(id);
    const v1 = {
      v: 1,
      meta: { v: 1, action: 'updated', object: 'person', id: Number(id), timestamp: 1_704_067_200, timestamp_micro: 1_704_067_200_000_000, change_source: 'app', webhook_id: '9', user_id: 2 },
      current: { id: Number(id), name: 'V One', email: [{ value: 'v1@example.com', primary: true }] },
      previous: { id: Number(id), name: 'V Zero', email: [{ value: 'v1@example.com', primary: true }] },
      event: 'updated.person',
      retry: 0,
    };
    const result = await rig.connector.handleWebhook({ ...good, rawBody: Buffer.from(JSON.stringify(v1)) });
    expect(result.changes[0]).toMatchObject({ object: 'persons', id, kind: 'upsert', changedAt: '2024-01-01T00:00:00.000Z', changedFields: ['name'], origin: 'other' });
    expect(result.changes[0]!.fields).toMatchObject({ email: 'v1@example.com', name: 'V One' });
  });
});

describe('limits', () => {
  it('reads the rate-limit headers into quota() and paces to the announced burst', async () => {
    await rig.control('config', { rateLimit: { burst: 5, windowMs: 300 } });
    await rig.control('seed', { object: 'persons', count: 30 });
    const c = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: rig.sb.credentials['apiToken']!, burst: 5, windowMs: 300 });
    await c.describe('persons');
    const items = Array.from({ length: 30 }, (_, i) => ({ ref: `q${i}`, remoteId: String(i + 1), fields: { 'Engagement score': i } }));
    const outcomes = await c.write('persons', items);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect((await rig.stats()).rateLimited).toBe(0);
    const q = c.quota();
    expect(q.dailyLimit).toBe(300_000);
    expect(q.dailyRemaining).toBeLessThan(300_000);
    expect(q.windowRemaining).toBeGreaterThanOrEqual(0);
    await rig.control('config', { rateLimit: { burst: 80, windowMs: 2000 } });
  });

  it('turns a 429 into rate_limited with a retry time, and a spent daily budget into a pause until midnight', async () => {
    await rig.control('config', { rateLimit: { burst: 1, windowMs: 60_000 } });
    await fetch(`${rig.sb.baseUrl}/api/v2/persons`, { headers: { 'x-api-token': rig.sb.credentials['apiToken']! } }); // takes the only slot: 10 tokens
    const c = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: rig.sb.credentials['apiToken']!, burst: 100 });
    const limited = await c.readByIds('persons', ['1']).then(() => null, (e: unknown) => e);
    expect(limited).toMatchObject({ kind: 'rate_limited', code: 'PIPEDRIVE_RATE_LIMITED' });
    expect((limited as CrmhubError).retryAfterMs).toBeGreaterThan(1000);
    expect((await rig.stats()).rateLimited).toBe(1);
    // 25 tokens: 10 spent above; the fields read (10) and one list (10, overdrawing to 0) go through.
    await rig.control('config', { rateLimit: { burst: 80, windowMs: 2000 }, dailyQuota: 25 });
    const d = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: rig.sb.credentials['apiToken']!, burst: 100 });
    await d.readChanges('persons', null);
    expect(d.quota()).toMatchObject({ dailyRemaining: 0, dailyLimit: 25 });
    // Nothing more is sent while paused: the next calls fail at once without a request.
    const before = (await rig.stats()).totalCalls;
    const spent = await d.readChanges('persons', null).then(() => null, (e: unknown) => e);
    expect(spent).toMatchObject({ kind: 'rate_limited', code: 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED' });
    expect((spent as CrmhubError).retryAfterMs).toBeGreaterThan(0);
    expect((spent as CrmhubError).retryAfterMs).toBeLessThanOrEqual(86_400_000);
    await expect(d.readByIds('persons', ['1'])).rejects.toMatchObject({ kind: 'rate_limited' });
    expect((await rig.stats()).totalCalls).toBe(before);
    // A connection that knew nothing is refused by the server with the daily code.
    const e = new PipedriveConnector({ baseUrl: rig.sb.baseUrl, apiToken: rig.sb.credentials['apiToken']! });
    await expect(e.describe('persons')).rejects.toMatchObject({ kind: 'rate_limited', code: 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED' });
    await rig.control('config', { dailyQuota: 300_000 });
  });
});

describe('module', () => {
  it('builds from the environment only when a token is set', () => {
    expect(pipedriveModule.fromEnv({})).toBeNull();
    const c = pipedriveModule.fromEnv({ PIPEDRIVE_API_TOKEN: 't', PIPEDRIVE_BASE_URL: rig.sb.baseUrl, PIPEDRIVE_WEBHOOK_USER: 'u', PIPEDRIVE_WEBHOOK_PASSWORD: 'p' });
    expect(c?.declaration.slug).toBe('pipedrive');
    expect(() => pipedriveModule.fromEnv({ PIPEDRIVE_API_TOKEN: 't', PIPEDRIVE_BASE_URL: 'not a url' })).toThrow(/PIPEDRIVE_BASE_URL/);
  });
});
