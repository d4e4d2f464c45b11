/**
 * Exact requests of the Pipedrive connector, pinned with nock: custom-field key resolution,
 * search-then-create for records never seen, one PATCH for linked ones, cursors, reads by id,
 * users/me for the echo marker, and how 429s and failed searches come back.
 */
import nock from 'nock';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { PipedriveConnector } from '../../../connectors/pipedrive/pipedrive-connector.ts';
import type { WriteOutcome } from '../../../src/connector-kit/connector.ts';

const BASE = 'https://acme.pipedrive.test';
const TOKEN = 'c0ffee'.repeat(6) + 'abcd';
const PLAN_KEY = 'a'.repeat(40);
const CRMHUB_KEY = 'b'.repeat(40);
const AUD_KEY = 'c'.repeat(40);

const personFields = {
  success: true,
  data: [
    { field_name: 'Name', field_code: 'name', field_type: 'varchar', options: null, is_custom_field: false, is_optional_response_field: false },
    { field_name: 'crmhub id', field_code: CRMHUB_KEY, field_type: 'varchar', options: null, is_custom_field: true, is_optional_response_field: false },
    {
      field_name: 'Plan',
      field_code: PLAN_KEY,
      field_type: 'enum',
      options: [
        { id: 11, label: 'free' },
        { id: 12, label: 'pro' },
      ],
      is_custom_field: true,
      is_optional_response_field: false,
    },
    {
      field_name: 'Audiences',
      field_code: AUD_KEY,
      field_type: 'set',
      options: [
        { id: 21, label: 'trial_users' },
        { id: 22, label: 'at_risk' },
      ],
      is_custom_field: true,
      is_optional_response_field: false,
    },
  ],
  additional_data: { next_cursor: null },
};

function person(id: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    name: 'Ada Lovelace',
    first_name: 'Ada',
    last_name: 'Lovelace',
    owner_id: 1,
    org_id: null,
    add_time: '2026-01-01T10:00:00Z',
    update_time: '2026-01-02T10:00:00Z',
    emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
    phones: [],
    is_deleted: false,
    visible_to: 3,
    custom_fields: { [PLAN_KEY]: 12, [CRMHUB_KEY]: 'prf_1', [AUD_KEY]: [21, 22] },
    ...extra,
  };
}

const headers = { 'x-ratelimit-limit': '80', 'x-ratelimit-remaining': '79', 'x-ratelimit-reset': '2', 'x-daily-ratelimit-token-limit': '300000', 'x-daily-ratelimit-token-remaining': '299000' };

function connector(): PipedriveConnector {
  return new PipedriveConnector({ baseUrl: BASE, apiToken: TOKEN, webhookUser: 'u', webhookPassword: 'p', burst: 80 });
}

function api() {
  return nock(BASE, { reqheaders: { 'x-api-token': TOKEN } });
}

function ok(outcome: WriteOutcome | undefined): Extract<WriteOutcome, { ok: true }> {
  if (!outcome?.ok) throw new TypeError(`write failed: ${outcome ? JSON.stringify(outcome.error.toJSON()) : 'none'}`);
  return outcome;
}

beforeAll(() => {
  nock.disableNetConnect();
});
afterAll(() => {
  nock.enableNetConnect();
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});

describe('custom field keys', () => {
  it('resolves names to 40-character keys once, then PATCHes option ids by key', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api()
      .patch('/api/v2/persons/42', { custom_fields: { [PLAN_KEY]: 11, [AUD_KEY]: [22, 21] } })
      .reply(200, { success: true, data: person(42) }, headers);
    api()
      .patch('/api/v2/persons/43', { custom_fields: { [PLAN_KEY]: 12, [AUD_KEY]: null } })
      .reply(200, { success: true, data: person(43) }, headers);
    const c = connector();
    ok((await c.write('persons', [{ ref: 'a', remoteId: '42', fields: { Plan: 'free', Audiences: 'at_risk,trial_users' } }]))[0]);
    ok((await c.write('persons', [{ ref: 'b', remoteId: '43', fields: { Plan: 'pro', Audiences: '' } }]))[0]);
    expect(c.quota()).toMatchObject({ windowRemaining: 79, dailyRemaining: 299000, dailyLimit: 300000 });
  });

  it('a name missing from the fields API is a config error naming the field, before any write', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).times(1).reply(200, personFields, headers);
    const [outcome] = await connector().write('persons', [{ ref: 'a', remoteId: '42', fields: { 'Lead score': 3 } }]);
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'config', code: 'PIPEDRIVE_UNKNOWN_FIELD' } });
    expect(outcome!.ok ? '' : outcome!.error.message).toMatch(/"Lead score" does not exist/);
  });
});

describe('search then create', () => {
  it('searches by exact email, finds nothing, and creates with name, emails and the crmhub id', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api()
      .get('/api/v2/persons/search')
      .query({ term: 'ada@example.com', fields: 'email', exact_match: 'true', limit: 100 })
      .reply(200, { success: true, data: { items: [] }, additional_data: { next_cursor: null } }, headers);
    api()
      .post('/api/v2/persons', {
        name: 'Ada Lovelace',
        emails: [{ value: 'ada@example.com', primary: true, label: 'work' }],
        custom_fields: { [PLAN_KEY]: 12, [CRMHUB_KEY]: 'prf_1' },
      })
      .reply(200, { success: true, data: person(7) }, headers);
    const [outcome] = await connector().write('persons', [
      { ref: 'n', upsertKey: { field: 'crmhub id', value: 'prf_1' }, fields: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', Plan: 'pro' } },
    ]);
    expect(ok(outcome)).toMatchObject({ remoteId: '7', created: true, modifiedAt: '2026-01-02T10:00:00.000Z' });
  });

  it('updates the one person found instead of creating', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api()
      .get('/api/v2/persons/search')
      .query({ term: 'ada@example.com', fields: 'email', exact_match: 'true', limit: 100 })
      .reply(200, { success: true, data: { items: [{ result_score: 1, item: { id: 9, type: 'person' } }] }, additional_data: { next_cursor: null } }, headers);
    api().patch('/api/v2/persons/9', { custom_fields: { [PLAN_KEY]: 11 } }).reply(200, { success: true, data: person(9) }, headers);
    const [outcome] = await connector().write('persons', [{ ref: 'n', upsertKey: { field: 'email', value: 'ada@example.com' }, fields: { Plan: 'free' } }]);
    expect(ok(outcome)).toMatchObject({ remoteId: '9', created: false });
  });

  it('a failed search fails the record (transient) and never creates', async () => {
    api()
      .get('/api/v2/persons/search')
      .query(true)
      .reply(502, '<html>bad gateway</html>', { 'content-type': 'text/html' });
    const [outcome] = await connector().write('persons', [{ ref: 'n', fields: { email: 'ada@example.com', name: 'Ada' } }]);
    expect(outcome).toMatchObject({ ok: false, error: { kind: 'transient', code: 'PIPEDRIVE_SERVER_ERROR' } });
  });

  it('a linked record costs one PATCH: no fields call when no custom field is written, no search', async () => {
    api().patch('/api/v2/persons/5', { owner_id: 3 }).reply(200, { success: true, data: person(5) }, headers);
    ok((await connector().write('persons', [{ ref: 'l', remoteId: '5', fields: { owner_id: '3' } }]))[0]);
  });
});

describe('reads', () => {
  it('pulls with updated_since, sort_by=update_time asc and Pipedrive cursors; the next pull starts at the last second', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api()
      .get('/api/v2/persons')
      .query({ sort_by: 'update_time', sort_direction: 'asc', limit: 2 })
      .reply(200, { success: true, data: [person(1, { update_time: '2026-01-02T10:00:00Z' }), person(2, { update_time: '2026-01-02T10:00:05Z' })], additional_data: { next_cursor: 'pc1' } }, headers);
    api()
      .get('/api/v2/persons')
      .query({ sort_by: 'update_time', sort_direction: 'asc', limit: 2, cursor: 'pc1' })
      .reply(200, { success: true, data: [person(3, { update_time: '2026-01-02T10:00:05Z' })], additional_data: { next_cursor: null } }, headers);
    api()
      .get('/api/v2/persons')
      .query({ sort_by: 'update_time', sort_direction: 'asc', limit: 2, updated_since: '2026-01-02T10:00:05Z' })
      .reply(200, { success: true, data: [person(2, { update_time: '2026-01-02T10:00:05Z' }), person(3, { update_time: '2026-01-02T10:00:05Z', name: 'Changed' })], additional_data: { next_cursor: null } }, headers);
    const c = connector();
    const p1 = await c.readChanges('persons', null, { pageSize: 2 });
    expect(p1.records.map((r) => r.id)).toEqual(['1', '2']);
    expect(p1.records[0]!.fields).toMatchObject({ email: 'ada@example.com', Plan: 'pro', Audiences: 'trial_users,at_risk', 'crmhub id': 'prf_1' });
    expect(p1.done).toBe(false);
    const p2 = await c.readChanges('persons', p1.nextCursor, { pageSize: 2 });
    expect(p2.done).toBe(true);
    const p3 = await c.readChanges('persons', p2.nextCursor, { pageSize: 2 });
    // Person 2 is unchanged at the anchor second and skipped; person 3 changed within it.
    expect(p3.records.map((r) => [r.id, r.fields['name']])).toEqual([['3', 'Changed']]);
  });

  it('reads by id with one ids= call of up to 100', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api().get('/api/v2/persons').query({ ids: '1,2,3', limit: 100 }).reply(200, { success: true, data: [person(1), person(3)], additional_data: { next_cursor: null } }, headers);
    const records = await connector().readByIds('persons', ['1', '2', '3', 'x']);
    expect(records.map((r) => r.id)).toEqual(['1', '3']);
  });
});

describe('limits and errors through the SDK', () => {
  it('a 429 becomes rate_limited with the window reset; a spent budget waits until midnight', async () => {
    api()
      .get('/api/v2/personFields')
      .query(true)
      .reply(429, { success: false, error: 'Request over limit', errorCode: 429 }, { ...headers, 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' });
    await expect(connector().describe('persons')).rejects.toMatchObject({ kind: 'rate_limited', code: 'PIPEDRIVE_RATE_LIMITED', retryAfterMs: 2000 });
    api()
      .get('/api/v2/personFields')
      .query(true)
      .reply(429, { success: false, error: 'Request over limit', errorCode: 429 }, { ...headers, 'x-daily-ratelimit-token-remaining': '0' });
    const error = await connector()
      .describe('persons')
      .then(() => null, (e: unknown) => e as { kind: string; code: string; retryAfterMs: number });
    expect(error).toMatchObject({ kind: 'rate_limited', code: 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED' });
    expect(error!.retryAfterMs).toBeGreaterThan(0);
    expect(error!.retryAfterMs).toBeLessThanOrEqual(86_400_000);
  });

  it('a 401 is auth, a v2 400 is payload for that record only', async () => {
    api().get('/api/v2/personFields').query(true).reply(401, { success: false, error: 'unauthorized access', errorCode: 401 });
    await expect(connector().describe('persons')).rejects.toMatchObject({ kind: 'auth', code: 'PIPEDRIVE_UNAUTHORIZED' });
    api().patch('/api/v2/persons/1').reply(400, { success: false, error: 'Validation failed: owner_id', error_info: 'x', data: null, additional_data: null });
    api().patch('/api/v2/persons/2').reply(200, { success: true, data: person(2) }, headers);
    const outcomes = await connector().write('persons', [
      { ref: 'bad', remoteId: '1', fields: { owner_id: 999 } },
      { ref: 'good', remoteId: '2', fields: { owner_id: 2 } },
    ]);
    expect(outcomes.find((o) => o.ref === 'bad')).toMatchObject({ ok: false, error: { kind: 'payload', code: 'PIPEDRIVE_VALIDATION_ERROR' } });
    expect(outcomes.find((o) => o.ref === 'good')).toMatchObject({ ok: true });
  });

  it('asks users/me once to recognise its own API writes in webhooks', async () => {
    nock(BASE, { reqheaders: { 'x-api-token': TOKEN } }).get('/v1/users/me').reply(200, { success: true, data: { id: 77, name: 'Api' } });
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    const c = connector();
    const hook = (userId: string, source: string) => ({
      method: 'POST',
      url: 'http://x/webhooks/pipedrive',
      headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` },
      rawBody: Buffer.from(
        JSON.stringify({
          meta: { action: 'change', entity: 'person', entity_id: '5', id: `evt-${userId}-${source}`, timestamp: '2026-01-01T00:00:00.000Z', change_source: source, user_id: userId, version: '2.0' },
          data: person(5),
          previous: { custom_fields: { [PLAN_KEY]: { type: 'enum', value: 11 } } },
        }),
      ),
      now: Date.now(),
    });
    const own = await c.handleWebhook(hook('77', 'api'));
    expect(own.changes[0]).toMatchObject({ origin: 'self', changedFields: ['Plan'], deliveryId: 'evt-77-api' });
    expect((await c.handleWebhook(hook('78', 'api'))).changes[0]!.origin).toBe('other');
    expect((await c.handleWebhook(hook('77', 'app'))).changes[0]!.origin).toBe('other');
  });
});

describe('custom fields by key', () => {
  it('accepts 40-character keys too (mappings resolved against describe) and reads them back by key when asked', async () => {
    api().get('/api/v2/personFields').query({ limit: 500 }).reply(200, personFields, headers);
    api().patch('/api/v2/persons/42', { custom_fields: { [PLAN_KEY]: 11 } }).reply(200, { success: true, data: person(42) }, headers);
    api().get('/api/v2/persons').query({ ids: '42', limit: 100 }).reply(200, { success: true, data: [person(42)], additional_data: { next_cursor: null } }, headers);
    const c = connector();
    ok((await c.write('persons', [{ ref: 'k', remoteId: '42', fields: { [PLAN_KEY]: 'free' } }]))[0]);
    const [read] = await c.readByIds('persons', ['42'], [PLAN_KEY, 'email']);
    expect(read!.fields).toEqual({ [PLAN_KEY]: 'pro', email: 'ada@example.com' });
  });
});
