/* eslint-disable @typescript-eslint/no-explicit-any -- sandbox control answers are untyped JSON */
/**
 * The HubSpot connector end to end against the HubSpot sandbox: batch writes and their outcomes,
 * merged contacts followed, incremental reads past the 10,000-result search cap, deletes, link
 * fields, webhooks (own writes vs rep edits, replay and tampering), schema, quota and errors.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../../src/connector-kit/connector-module.ts';
import type { RemoteRecord, WebhookChange, WebhookRequest } from '../../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import hubspot from '../../../connectors/hubspot/index.ts';
import { HubSpotConnector } from '../../../connectors/hubspot/hubspot-connector.ts';

let sb: RunningSandbox;
let connector: HubSpotConnector;
let receiver: Server;
let receiverUrl: string;
const received: WebhookRequest[] = [];

async function control(route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sb.baseUrl}/_sandbox/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.json();
}

async function readAll(object: string, cursor: string | null, pageSize?: number): Promise<{ records: RemoteRecord[]; cursor: string | null; pages: number }> {
  const records: RemoteRecord[] = [];
  let pages = 0;
  for (;;) {
    const page = await connector.readChanges(object, cursor, pageSize ? { pageSize } : {});
    pages++;
    records.push(...page.records);
    cursor = page.nextCursor ?? cursor;
    if (page.done) return { records, cursor, pages };
  }
}

async function rejection(p: Promise<unknown>): Promise<CrmhubError> {
  const e = await p.then(
    () => null,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(CrmhubError);
  return e as CrmhubError;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? 'POST', url: receiverUrl, headers: req.headers, rawBody: Buffer.concat(chunks), now: Date.now() });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/webhooks/hubspot`;
  sb = await hubspot.startSandbox({ port: 0 });
  const built = hubspot.fromEnv(sb.env);
  if (!(built instanceof HubSpotConnector)) throw new TypeError('fromEnv did not build the HubSpot connector');
  connector = built;
});

afterAll(async () => {
  await sb.close();
  await new Promise((resolve) => receiver.close(resolve));
});

beforeEach(async () => {
  await control('reset', {});
  await control('config', { rateLimit: { search: 1000 } });
  received.length = 0;
});

describe('HubSpot connector: module', () => {
  it('is built from HUBSPOT_* settings and is off without a token', () => {
    expect(hubspot.fromEnv({})).toBeNull();
    expect(connector.declaration.limits.requestsPerWindow).toBe(190);
    expect(connector.declaration.limits.search).toEqual({ requestsPerWindow: 5, windowMs: 1000, usedBy: ['readChanges'] });
    expect(connector.declaration.objects.map((o) => [o.name, o.profileKind, o.identifierType])).toEqual([
      ['contacts', 'person', 'hubspot.contact'],
      ['companies', 'account', 'hubspot.company'],
      ['deals', null, 'hubspot.deal'],
    ]);
    expect(() => hubspot.fromEnv({ HUBSPOT_ACCESS_TOKEN: 't', HUBSPOT_BASE_URL: 'not a url' })).toThrow(CrmhubError);
  });
});

describe('HubSpot connector: writes', () => {
  it('upserts 100 records in one call and matches a 207 back to each input', async () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ ref: `r${i}`, upsertKey: { field: 'email', value: `u${i}@example.com` }, fields: { firstname: `U${i}`, crmhub_audiences: ['trial_users', 'newsletter'] } }));
    items[37] = { ref: 'r37', upsertKey: { field: 'email', value: 'u37@example.com' }, fields: { firstname: 'Bad', crmhub_audiences: ['vip'] } };
    const before = (await control('stats')).totalCalls;
    const outcomes = await connector.write('contacts', items);
    const after = await control('stats');
    expect(after.totalCalls - before).toBe(1);
    expect(after.calls['POST /crm/v3/objects/:objectType/batch/upsert']).toBe(1);
    expect(outcomes).toHaveLength(100);
    const bad = outcomes.find((o) => o.ref === 'r37');
    expect(bad?.ok).toBe(false);
    if (bad && !bad.ok) {
      expect(bad.error.kind).toBe('payload');
      expect(bad.error.context.field).toBe('crmhub_audiences');
    }
    const good = outcomes.filter((o) => o.ok);
    expect(good).toHaveLength(99);
    expect(new Set(good.map((o) => (o.ok ? o.remoteId : ''))).size).toBe(99);
    expect(good.every((o) => o.ok && o.created)).toBe(true);
    // Again: same ids, nothing created.
    const again = await connector.write('contacts', items.slice(0, 3).map((i) => ({ ...i, fields: { lastname: 'X' } })));
    expect(again.every((o) => o.ok && !o.created)).toBe(true);
  });

  it('updates by id, creates without a key, turns a create conflict into an update, and archives', async () => {
    const [created] = await connector.write('contacts', [{ ref: 'c', fields: { email: 'c@example.com', firstname: 'C' } }]);
    expect(created?.ok && created.created).toBe(true);
    const id = created?.ok ? created.remoteId : '';
    const [dup] = await connector.write('contacts', [{ ref: 'd', fields: { email: 'C@example.com', lastname: 'Dup' } }]);
    expect(dup).toMatchObject({ ok: true, remoteId: id, created: false });
    const [upd] = await connector.write('contacts', [{ ref: 'u', remoteId: id, fields: { jobtitle: 'CTO' } }]);
    expect(upd).toMatchObject({ ok: true, remoteId: id, created: false });
    const [del] = await connector.write('contacts', [{ ref: 'x', remoteId: id, fields: {}, delete: true }]);
    expect(del?.ok).toBe(true);
    expect((await control('stats')).records.contacts).toBe(0);
  });

  it('follows a contact HubSpot merged (id moved) instead of creating a duplicate', async () => {
    const outcomes = await connector.write('contacts', [
      { ref: 'a', upsertKey: { field: 'email', value: 'a@example.com' }, fields: { firstname: 'A' } },
      { ref: 'b', upsertKey: { field: 'email', value: 'b@example.com' }, fields: { firstname: 'B' } },
    ]);
    const [a, b] = outcomes.map((o) => (o.ok ? o.remoteId : ''));
    const merged = await fetch(`${sb.baseUrl}/crm/v3/objects/contacts/merge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sb.credentials.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ primaryObjectId: a, objectIdToMerge: b }),
    }).then(async (r) => (await r.json()) as { id: string });
    const [follow] = await connector.write('contacts', [{ ref: 'f', remoteId: b!, fields: { lastname: 'Merged' } }]);
    expect(follow).toMatchObject({ ok: true, remoteId: merged.id, movedFrom: b, created: false });
    const [byKey] = await connector.write('contacts', [{ ref: 'k', upsertKey: { field: 'email', value: 'b@example.com' }, fields: { jobtitle: 'Analyst' } }]);
    expect(byKey).toMatchObject({ ok: true, remoteId: merged.id, created: false });
    expect((await control('stats')).records.contacts).toBe(1);
    // Reading the old id announces the merge.
    const read = await connector.readByIds('contacts', [b!]);
    expect(read.find((r) => r.id === b)?.mergedIntoId).toBe(merged.id);
    expect(read.find((r) => r.id === merged.id)?.fields.lastname).toBe('Merged');
  });

  it('links deals to both a contact and a company through association link fields', async () => {
    const [contact] = await connector.write('contacts', [{ ref: 'c', upsertKey: { field: 'email', value: 'deal@example.com' }, fields: {} }]);
    const [company] = await connector.write('companies', [{ ref: 'co', upsertKey: { field: 'crmhub_id', value: 'acct-1' }, fields: { name: 'Acme' } }]);
    const contactId = contact?.ok ? contact.remoteId : '';
    const companyId = company?.ok ? company.remoteId : '';
    const [deal] = await connector.write('deals', [
      { ref: 'd', upsertKey: { field: 'crmhub_id', value: 'deal-1' }, fields: { dealname: 'Big', amount: 1200, 'associations.contacts': contactId, 'associations.companies': companyId } },
    ]);
    expect(deal?.ok).toBe(true);
    const [read] = await connector.readByIds('deals', [deal?.ok ? deal.remoteId : ''], ['dealname', 'amount', 'associations.contacts', 'associations.companies']);
    expect(read?.fields).toMatchObject({ dealname: 'Big', amount: '1200', 'associations.contacts': contactId, 'associations.companies': companyId });
    expect(read?.fieldChangedAt?.dealname).toBeDefined();
    expect(read?.origin).toBe('self');
  });
});

describe('HubSpot connector: reads', () => {
  it('reads every record past the 10,000-result search cap by re-anchoring, then only new changes', async () => {
    await control('seed', { object: 'contacts', count: 10_120 });
    const first = await readAll('contacts', null, 200);
    const ids = new Set(first.records.filter((r) => !r.deleted).map((r) => r.id));
    expect(ids.size).toBe(10_120);
    const stats = await control('stats');
    // No search ever asked for a page past 10,000 (that would have been a 400 and thrown).
    expect(stats.calls['POST /crm/v3/objects/:objectType/search']).toBeGreaterThanOrEqual(51);
    const again = await readAll('contacts', first.cursor, 200);
    expect(again.records).toEqual([]);
    const someId = [...ids][42]!;
    await control('edit', { object: 'contacts', id: someId, fields: { jobtitle: 'Changed' } });
    await control('delete', { object: 'contacts', id: [...ids][7]! });
    const changed = await readAll('contacts', again.cursor, 200);
    expect(changed.records.find((r) => r.id === someId)?.fields.jobtitle).toBe('Changed');
    expect(changed.records.find((r) => r.id === [...ids][7])?.deleted).toBe(true);
    const quiet = await readAll('contacts', changed.cursor, 200);
    expect(quiet.records).toEqual([]);
  });

  it('reads companies and deals by hs_lastmodifieddate with link fields', async () => {
    await control('seed', { object: 'companies', count: 3 });
    await control('seed', { object: 'contacts', count: 3 });
    await control('seed', { object: 'deals', count: 3 });
    const deals = await readAll('deals', null);
    expect(deals.records).toHaveLength(3);
    for (const d of deals.records) {
      expect(typeof d.fields['associations.companies']).toBe('string');
      expect(typeof d.fields['associations.contacts']).toBe('string');
    }
    const companies = await readAll('companies', null);
    expect(companies.records.map((r) => r.fields.name).every((n) => typeof n === 'string')).toBe(true);
  });
});

describe('HubSpot connector: webhooks', () => {
  it('parses signed sandbox webhooks, tells own writes from rep edits, and rejects replays and tampering', async () => {
    await control('config', { webhookUrl: receiverUrl });
    const [mine] = await connector.write('contacts', [{ ref: 'm', upsertKey: { field: 'email', value: 'w@example.com' }, fields: { firstname: 'Mine' } }]);
    const id = mine?.ok ? mine.remoteId : '';
    await control('edit', { object: 'contacts', id, fields: { lastname: 'Rep' } });
    await control('drain', {});
    const changes: WebhookChange[] = [];
    for (const r of received) changes.push(...(await connector.handleWebhook(r)).changes);
    const own = changes.filter((c) => c.changedFields?.includes('firstname'));
    expect(own.every((c) => c.origin === 'self')).toBe(true);
    const rep = changes.find((c) => c.changedFields?.includes('lastname'));
    expect(rep).toMatchObject({ object: 'contacts', id, kind: 'upsert', origin: 'other', fields: { lastname: 'Rep' } });
    expect(new Set(changes.map((c) => c.deliveryId)).size).toBe(changes.length);

    const request = received[0]!;
    const replay = await rejection(connector.handleWebhook({ ...request, now: request.now + 6 * 60_000 }));
    expect(replay.kind).toBe('auth');
    const body = Buffer.from(request.rawBody);
    body[5] = body[5]! ^ 1;
    expect((await rejection(connector.handleWebhook({ ...request, rawBody: body }))).kind).toBe('auth');
    expect((await rejection(connector.handleWebhook({ ...request, url: `${receiverUrl}?x=1` }))).kind).toBe('auth');
  });

  it('turns merge, deletion and association events into changes', async () => {
    await control('config', { webhookUrl: receiverUrl });
    const out = await connector.write('contacts', [
      { ref: 'a', upsertKey: { field: 'email', value: 'a@example.com' }, fields: {} },
      { ref: 'b', upsertKey: { field: 'email', value: 'b@example.com' }, fields: {} },
    ]);
    const [a, b] = out.map((o) => (o.ok ? o.remoteId : ''));
    const [co] = await connector.write('companies', [{ ref: 'c', upsertKey: { field: 'crmhub_id', value: 'co' }, fields: { name: 'Co' } }]);
    const companyId = co?.ok ? co.remoteId : '';
    await connector.write('contacts', [{ ref: 'l', remoteId: a!, fields: { 'associations.companies': companyId } }]);
    await fetch(`${sb.baseUrl}/crm/v3/objects/contacts/merge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sb.credentials.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ primaryObjectId: a, objectIdToMerge: b }),
    });
    await control('delete', { object: 'companies', id: companyId });
    await control('drain', {});
    const changes: WebhookChange[] = [];
    for (const r of received) changes.push(...(await connector.handleWebhook(r)).changes);
    const merges = changes.filter((c) => c.kind === 'merge');
    expect(merges.map((m) => m.id).sort()).toEqual([a, b].sort());
    expect(new Set(merges.map((m) => m.mergedIntoId)).size).toBe(1);
    expect(changes.find((c) => c.kind === 'delete')).toMatchObject({ object: 'companies', id: companyId, origin: 'other' });
    expect(changes.find((c) => c.kind === 'association' && c.object === 'contacts')).toMatchObject({ id: a, changedFields: ['associations.companies'] });
  });
});

describe('HubSpot connector: schema, quota and errors', () => {
  it('describes properties and creates missing crmhub properties on request', async () => {
    const schema = await connector.describe('contacts');
    const byName = new Map(schema.fields.map((f) => [f.name, f]));
    expect(byName.get('email')).toMatchObject({ type: 'string', unique: true, readOnly: false, custom: false });
    expect(byName.get('lastmodifieddate')).toMatchObject({ type: 'datetime', readOnly: true });
    expect(byName.get('crmhub_audiences')).toMatchObject({ type: 'set', custom: true });
    expect(byName.get('crmhub_plan')?.options?.map((o) => o.value)).toEqual(['free', 'starter', 'pro', 'enterprise']);
    expect(await connector.ensureCustomProperties('companies')).toEqual([]);
    const archived = await fetch(`${sb.baseUrl}/crm/v3/properties/companies/crmhub_seats`, { method: 'DELETE', headers: { authorization: `Bearer ${sb.credentials.accessToken}` } });
    expect(archived.status).toBe(204);
    expect((await connector.describe('companies')).fields.map((f) => f.name)).not.toContain('crmhub_seats');
    expect(await connector.ensureCustomProperties('companies')).toEqual(['crmhub_seats']);
    const seats = (await connector.describe('companies')).fields.find((f) => f.name === 'crmhub_seats');
    expect(seats).toMatchObject({ type: 'number', custom: true, readOnly: false });
  });

  it('reads X-HubSpot-RateLimit-* into quota()', async () => {
    await connector.readByIds('contacts', ['1']);
    const q = connector.quota();
    expect(q.dailyLimit).toBe(625_000);
    expect(q.windowResetMs).toBe(10_000);
    expect(typeof q.windowRemaining).toBe('number');
    expect(typeof q.dailyRemaining).toBe('number');
  });

  it('classifies 429s, 401s and unknown objects', async () => {
    await control('config', { rateLimit: { tenSecondly: 1 } });
    await connector.readByIds('contacts', ['1']);
    const ten = await rejection(connector.readByIds('contacts', ['1']));
    expect(ten).toMatchObject({ kind: 'rate_limited', code: 'HUBSPOT_TEN_SECONDLY_LIMIT', retryAfterMs: 10_000 });
    await control('config', { rateLimit: { tenSecondly: 100 }, dailyQuota: 0 });
    const daily = await rejection(connector.readByIds('contacts', ['1']));
    expect(daily.code).toBe('HUBSPOT_DAILY_LIMIT');
    expect(daily.retryAfterMs).toBeGreaterThan(0);
    expect(daily.retryAfterMs).toBeLessThanOrEqual(86_400_000);
    await control('reset', {});
    const bad = new HubSpotConnector({ accessToken: 'wrong', baseUrl: sb.baseUrl });
    expect((await rejection(bad.readByIds('contacts', ['1']))).kind).toBe('auth');
    expect((await rejection(connector.readByIds('tickets', ['1']))).kind).toBe('config');
  });
});
