/**
 * Pins the exact HTTP requests the Salesforce connector sends (nock intercepts jsforce's
 * node-fetch transport): collections upsert/update/create, SOQL paging and escaping, field-list
 * splitting, Lead conversion following, and jsforce's own retries being off.
 */
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { API, INSTANCE, TOKEN, apiHeaders, fixture, makeConnector } from './helpers.ts';

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => {
  nock.enableNetConnect();
});

const json = { 'Content-Type': 'application/json' };

describe('collections writes', () => {
  it('upserts by Crmhub_Id__c in one PATCH and matches per-record results back to refs', async () => {
    const { connector } = makeConnector();
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`, {
        allOrNone: false,
        records: [
          { attributes: { type: 'Contact' }, LastName: 'Lovelace', Email: 'ada@example.com', Crmhub_Id__c: 'prf_1' },
          { attributes: { type: 'Contact' }, Email: 'grace@example.com', Crmhub_Id__c: 'prf_2' },
        ],
      })
      .reply(200, fixture('composite-sobjects-upsert.response.constructed.json'), json);
    const outcomes = await connector.write('Contact', [
      { ref: 'a', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_1' }, fields: { LastName: 'Lovelace', Email: 'ada@example.com' } },
      { ref: 'b', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_2' }, fields: { Email: 'grace@example.com' } },
    ]);
    scope.done();
    expect(outcomes).toHaveLength(2);
    const a = outcomes.find((o) => o.ref === 'a');
    const b = outcomes.find((o) => o.ref === 'b');
    expect(a).toEqual({ ref: 'a', ok: true, remoteId: '003D000000QV9n2IAD', created: false });
    expect(b?.ok).toBe(false);
    if (b !== undefined && !b.ok) {
      expect(b.error.kind).toBe('payload');
      expect(b.error.code).toBe('REQUIRED_FIELD_MISSING');
      expect(b.error.context.field).toBe('LastName');
    }
  });

  it('updates known records by id, creates keyless ones, joins multi-select arrays with ";"', async () => {
    const { connector } = makeConnector();
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects`, {
        allOrNone: false,
        records: [{ attributes: { type: 'Contact' }, id: '003000000000001AAA', Audiences__c: 'trial_users;newsletter', Plan__c: null }],
      })
      .reply(200, [{ id: '003000000000001AAA', success: true, errors: [] }], json)
      .post(`${API}/composite/sobjects`, { allOrNone: false, records: [{ attributes: { type: 'Contact' }, LastName: 'Hopper' }] })
      .reply(200, [{ id: '003000000000002AAA', success: true, errors: [], created: true }], json);
    const outcomes = await connector.write('Contact', [
      { ref: 'u', remoteId: '003000000000001AAA', fields: { Audiences__c: ['trial_users', 'newsletter'], Plan__c: null } },
      { ref: 'c', fields: { LastName: 'Hopper' } },
    ]);
    scope.done();
    expect(outcomes).toContainEqual({ ref: 'u', ok: true, remoteId: '003000000000001AAA', created: false });
    expect(outcomes).toContainEqual({ ref: 'c', ok: true, remoteId: '003000000000002AAA', created: true });
  });

  it('splits 450 records into 3 collection calls of at most 200', async () => {
    const { connector } = makeConnector();
    const sizes: number[] = [];
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`)
      .times(3)
      .reply(200, (_uri, body) => {
        const records = (body as { records: { Crmhub_Id__c: string }[] }).records;
        sizes.push(records.length);
        return records.map((r) => ({ id: `003${r.Crmhub_Id__c.padStart(15, '0')}`, success: true, errors: [], created: true }));
      });
    const items = Array.from({ length: 450 }, (_, i) => ({ ref: `r${i}`, upsertKey: { field: 'Crmhub_Id__c', value: String(i) }, fields: { LastName: `N${i}` } }));
    const outcomes = await connector.write('Contact', items);
    scope.done();
    expect(sizes).toEqual([200, 200, 50]);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(450);
    const r7 = outcomes.find((o) => o.ref === 'r7');
    expect(r7?.ok && r7.remoteId).toBe('003000000000000007');
  });

  it('keeps the results of earlier calls when a later collections call fails', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`)
      .reply(200, (_uri, body) => (body as { records: unknown[] }).records.map((_, i) => ({ id: `003${String(i).padStart(15, '0')}`, success: true, errors: [] })))
      .patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`)
      .reply(503, [{ errorCode: 'SERVER_UNAVAILABLE', message: 'try later' }], json);
    const items = Array.from({ length: 250 }, (_, i) => ({ ref: `r${i}`, upsertKey: { field: 'Crmhub_Id__c', value: String(i) }, fields: { LastName: 'N' } }));
    const outcomes = await connector.write('Contact', items);
    expect(outcomes).toHaveLength(250);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(200);
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed).toHaveLength(50);
    for (const o of failed) expect(!o.ok && o.error.kind).toBe('transient');
  });

  it('rejects the whole write when its first call fails (auth)', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE).patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`).reply(401, fixture('error.401-invalid-session.json'), json);
    await expect(connector.write('Contact', [{ ref: 'a', upsertKey: { field: 'Crmhub_Id__c', value: '1' }, fields: { LastName: 'N' } }])).rejects.toMatchObject({ kind: 'auth' });
  });

  it('reports DUPLICATES_DETECTED and validation-rule failures per record as payload errors', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects/Lead/Crmhub_Id__c`)
      .reply(
        200,
        [
          { success: false, errors: [{ statusCode: 'DUPLICATES_DETECTED', message: 'Use one of these records?', fields: [] }] },
          { success: false, errors: [{ statusCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Phone must be E.164', fields: ['Phone'] }] },
          { id: '00Q000000000003AAA', success: true, errors: [], created: true },
        ],
        json,
      );
    const outcomes = await connector.write('Lead', [
      { ref: 'dup', upsertKey: { field: 'Crmhub_Id__c', value: 'p1' }, fields: { LastName: 'A', Company: 'X' } },
      { ref: 'val', upsertKey: { field: 'Crmhub_Id__c', value: 'p2' }, fields: { LastName: 'B', Company: 'X', Phone: '12' } },
      { ref: 'ok', upsertKey: { field: 'Crmhub_Id__c', value: 'p3' }, fields: { LastName: 'C', Company: 'X' } },
    ]);
    const byRef = Object.fromEntries(outcomes.map((o) => [o.ref, o]));
    expect(byRef['ok']?.ok).toBe(true);
    for (const [ref, code] of [
      ['dup', 'DUPLICATES_DETECTED'],
      ['val', 'FIELD_CUSTOM_VALIDATION_EXCEPTION'],
    ] as const) {
      const o = byRef[ref];
      expect(o?.ok).toBe(false);
      if (o !== undefined && !o.ok) {
        expect(o.error.kind).toBe('payload');
        expect(o.error.code).toBe(code);
      }
    }
  });

  it('follows a converted Lead to its Contact instead of recreating it', async () => {
    const { connector } = makeConnector();
    const leadQuery = "SELECT Id, ConvertedContactId, Crmhub_Id__c FROM Lead WHERE Id IN ('00Q000000000001AAA')";
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects`, {
        allOrNone: false,
        records: [{ attributes: { type: 'Lead' }, id: '00Q000000000001AAA', Title: 'CTO', Company: 'Acme' }],
      })
      .reply(200, [{ success: false, errors: [{ statusCode: 'CANNOT_UPDATE_CONVERTED_LEAD', message: 'cannot reference converted lead', fields: [] }] }], json)
      .get(`${API}/query`)
      .query({ q: leadQuery })
      .reply(200, { totalSize: 1, done: true, records: [{ attributes: { type: 'Lead' }, Id: '00Q000000000001AAA', ConvertedContactId: '003000000000009AAA', Crmhub_Id__c: 'p9' }] }, json)
      .patch(`${API}/composite/sobjects`, { allOrNone: false, records: [{ attributes: { type: 'Contact' }, id: '003000000000009AAA', Title: 'CTO' }] })
      .reply(200, [{ id: '003000000000009AAA', success: true, errors: [] }], json);
    const outcomes = await connector.write('Lead', [{ ref: 'l', remoteId: '00Q000000000001AAA', fields: { Title: 'CTO', Company: 'Acme' } }]);
    scope.done();
    expect(outcomes).toEqual([{ ref: 'l', ok: true, remoteId: '003000000000009AAA', created: false, movedFrom: '00Q000000000001AAA' }]);
  });
});

describe('SOQL reads', () => {
  const fields = ['Email', 'LastName', 'Crmhub_Id__c'];

  it('pages with nextRecordsUrl, then resumes by SystemModstamp with Id as tie breaker', async () => {
    const { connector } = makeConnector({ now: () => Date.parse('2024-05-02T12:00:00Z') });
    const firstSoql = 'SELECT Id, SystemModstamp, IsDeleted, Email, LastName, Crmhub_Id__c FROM Contact ORDER BY SystemModstamp, Id';
    const scope = nock(INSTANCE, { reqheaders: { ...apiHeaders, 'sforce-query-options': 'batchSize=2000' } })
      .get(`${API}/queryAll`)
      .query({ q: firstSoql })
      .reply(200, fixture('query.page-1.constructed.json'), json);
    const page1 = await connector.readChanges('Contact', null, { fields });
    scope.done();
    expect(page1.done).toBe(false);
    expect(page1.records.map((r) => r.id)).toEqual(['003D000000QV9n2IAD']);
    expect(page1.records[0]?.modifiedAt).toBe('2024-05-02T11:22:33.000Z');
    expect(page1.records[0]?.fields['attributes']).toBeUndefined();

    const scope2 = nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/query/01gD0000002HU6KIAW-2000`)
      .reply(200, fixture('query.page-last.constructed.json'), json);
    const page2 = await connector.readChanges('Contact', page1.nextCursor, { fields });
    scope2.done();
    expect(page2.done).toBe(true);
    expect(page2.records.map((r) => r.id)).toEqual(['003D000000QV9n3IAD']);
    const cursor = JSON.parse(page2.nextCursor ?? '{}') as Record<string, unknown>;
    expect(cursor).toMatchObject({ ts: '2024-05-02T11:22:34.000Z', id: '003D000000QV9n3IAD' });
    expect(cursor['next']).toBeUndefined();

    const resumeSoql =
      "SELECT Id, SystemModstamp, IsDeleted, Email, LastName, Crmhub_Id__c FROM Contact WHERE (SystemModstamp > 2024-05-02T11:22:34Z OR (SystemModstamp = 2024-05-02T11:22:34Z AND Id > '003D000000QV9n3IAD')) ORDER BY SystemModstamp, Id";
    const scope3 = nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/queryAll`)
      .query({ q: resumeSoql })
      .reply(200, { totalSize: 1, done: true, records: [{ attributes: { type: 'Contact' }, Id: '003D000000QV9n4IAD', IsDeleted: true, SystemModstamp: '2024-05-02T11:30:00.000+0000' }] }, json);
    const page3 = await connector.readChanges('Contact', page2.nextCursor, { fields });
    scope3.done();
    expect(page3.records).toHaveLength(1);
    expect(page3.records[0]?.deleted).toBe(true);
  });

  it('asks getDeleted from the last covered time for records purged from the recycle bin', async () => {
    let now = Date.parse('2024-05-02T12:00:00Z');
    const { connector } = makeConnector({ now: () => now });
    const cursor = JSON.stringify({ ts: '2024-05-02T11:00:00.000Z', id: '003D000000QV9n3IAD', del: '2024-05-02T11:00:00.000Z' });
    now = Date.parse('2024-05-02T12:05:00Z');
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/queryAll`)
      .query(true)
      .reply(200, { totalSize: 0, done: true, records: [] }, json)
      .get(`${API}/sobjects/Contact/deleted/`)
      .query({ start: '2024-05-02T11:00:00.000Z', end: '2024-05-02T12:05:00.000Z' })
      .reply(200, fixture('get-deleted.response.constructed.json'), json);
    const page = await connector.readChanges('Contact', cursor, { fields });
    scope.done();
    expect(page.records).toEqual([
      { object: 'Contact', id: '003D000000QV9n4IAD', fields: { Id: '003D000000QV9n4IAD' }, modifiedAt: '2024-05-02T12:00:00.000Z', deleted: true, origin: 'unknown' },
    ]);
    expect(JSON.parse(page.nextCursor ?? '{}')).toMatchObject({ del: '2024-05-02T12:00:00.000Z' });
  });

  it("escapes quotes and backslashes: o'brien@example.com and a name with a backslash round-trip", async () => {
    const { connector } = makeConnector();
    const email = "o'brien@example.com";
    const name = 'Back\\slash';
    const soql = "SELECT Id, SystemModstamp, IsDeleted, Email, LastName FROM Contact WHERE Email IN ('o\\'brien@example.com') OR LastName IN ('Back\\\\slash')";
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .patch(`${API}/composite/sobjects/Contact/Crmhub_Id__c`, {
        allOrNone: false,
        records: [{ attributes: { type: 'Contact' }, Email: email, LastName: name, Crmhub_Id__c: 'prf_ob' }],
      })
      .reply(200, [{ id: '003000000000077AAA', success: true, errors: [], created: true }], json)
      .get(`${API}/query`)
      .query({ q: soql })
      .reply(200, { totalSize: 1, done: true, records: [{ attributes: { type: 'Contact' }, Id: '003000000000077AAA', Email: email, LastName: name, SystemModstamp: '2024-05-02T11:22:33.000+0000', IsDeleted: false }] }, json);
    const [written] = await connector.write('Contact', [{ ref: 'ob', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_ob' }, fields: { Email: email, LastName: name } }]);
    expect(written?.ok).toBe(true);
    const found = await connector.findByFields('Contact', { Email: [email], LastName: [name] }, ['Email', 'LastName']);
    scope.done();
    expect(found.map((r) => [r.fields['Email'], r.fields['LastName']])).toEqual([[email, name]]);
  });

  it('splits a long field list into several queries merged by Id', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `Custom_Field_Number_${i}__c`);
    const { connector } = makeConnector({ maxQueryChars: 900 });
    const seen: string[] = [];
    nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/query`)
      .query(true)
      .times(10)
      .reply(200, (uri) => {
        const q = new URL(uri, INSTANCE).searchParams.get('q') ?? '';
        seen.push(q);
        expect(encodeURIComponent(q).length).toBeLessThanOrEqual(900);
        const selected = q.slice('SELECT '.length, q.indexOf(' FROM ')).split(', ');
        const record: Record<string, unknown> = { attributes: { type: 'Contact' } };
        for (const f of selected) record[f] = f === 'Id' ? '003000000000001AAA' : f === 'SystemModstamp' ? '2024-05-02T11:22:33.000+0000' : `v-${f}`;
        return { totalSize: 1, done: true, records: [record] };
      });
    const [record] = await connector.readByIds('Contact', ['003000000000001AAA'], many);
    nock.cleanAll();
    expect(seen.length).toBeGreaterThan(1);
    for (const f of many) expect(record?.fields[f]).toBe(`v-${f}`);
  });
});

describe('transport behaviour', () => {
  it('does not let jsforce retry a 503: one request, a transient error for the engine', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/sobjects/Contact/describe`)
      .reply(503, [{ errorCode: 'SERVER_UNAVAILABLE', message: 'down for maintenance' }], json);
    const error = await connector.describe('Contact').catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'CrmhubError', kind: 'transient', code: 'SERVER_UNAVAILABLE' });
  });

  it('maps INVALID_SESSION_ID to auth when there is no way to refresh', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE).get(`${API}/sobjects/Contact/describe`).reply(401, fixture('error.401-invalid-session.json'), json);
    await expect(connector.describe('Contact')).rejects.toMatchObject({ kind: 'auth', code: 'INVALID_SESSION_ID' });
  });

  it('refreshes the session with the refresh token on 401 and replays the request', async () => {
    const { connector } = makeConnector(
      {},
      { auth: { kind: 'refresh_token', clientId: 'cid', clientSecret: 'csecret', loginUrl: 'https://login.example.com', refreshToken: 'rt-1', accessToken: 'old' } },
    );
    const login = nock('https://login.example.com')
      .post('/services/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'rt-1', client_id: 'cid', client_secret: 'csecret' })
      .reply(200, { access_token: TOKEN, instance_url: INSTANCE, id: `${INSTANCE}/id/00D000000000000EAA/005000000000000AAA`, token_type: 'Bearer' }, json);
    const api = nock(INSTANCE)
      .get(`${API}/sobjects/Account/describe`)
      .matchHeader('authorization', 'Bearer old')
      .reply(401, fixture('error.401-invalid-session.json'), json)
      .get(`${API}/sobjects/Account/describe`)
      .matchHeader('authorization', `Bearer ${TOKEN}`)
      .reply(200, { name: 'Account', fields: [{ name: 'Id', label: 'Account ID', type: 'id' }] }, json);
    const schema = await connector.describe('Account');
    login.done();
    api.done();
    expect(schema.fields.map((f) => f.name)).toEqual(['Id']);
  });

  it('gets a token by client credentials before the first call', async () => {
    const { connector } = makeConnector({}, { instanceUrl: 'https://placeholder.invalid', auth: { kind: 'client_credentials', clientId: 'cid', clientSecret: 'cs', loginUrl: 'https://acme.my.salesforce.com' } });
    const scope = nock(INSTANCE)
      .post('/services/oauth2/token', { grant_type: 'client_credentials', client_id: 'cid', client_secret: 'cs' })
      .reply(200, { access_token: TOKEN, instance_url: INSTANCE, id: `${INSTANCE}/id/00D000000000000EAA/005000000000000AAA`, token_type: 'Bearer' }, json)
      .get(`${API}/sobjects/Lead/describe`)
      .matchHeader('authorization', `Bearer ${TOKEN}`)
      .reply(200, { name: 'Lead', fields: [] }, json);
    await connector.describe('Lead');
    scope.done();
  });

  it('a refused client secret is an auth error that does not leak the secret', async () => {
    const { connector } = makeConnector({}, { auth: { kind: 'client_credentials', clientId: 'cid', clientSecret: 'very-secret-value', loginUrl: INSTANCE } });
    nock(INSTANCE).post('/services/oauth2/token').reply(400, { error: 'invalid_client', error_description: 'invalid client credentials' }, json);
    const error = await connector.describe('Lead').catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'CrmhubError', kind: 'auth', code: 'invalid_client' });
    expect(JSON.stringify((error as { toJSON(): unknown }).toJSON())).not.toContain('very-secret-value');
  });

  it('reads the daily allocation from Sforce-Limit-Info and stops before the reserve', async () => {
    const { connector } = makeConnector({}, { quotaReserve: 10 });
    nock(INSTANCE, { reqheaders: apiHeaders })
      .get(`${API}/sobjects/Contact/describe`)
      .reply(200, { name: 'Contact', fields: [] }, { ...json, 'Sforce-Limit-Info': 'api-usage=90/100' });
    await connector.describe('Contact');
    expect(connector.quota()).toEqual({ dailyLimit: 100, dailyRemaining: 10 });
    // No interceptor: a request would fail with a network error, not a rate_limited one.
    await expect(connector.describe('Account')).rejects.toMatchObject({ kind: 'rate_limited', code: 'QUOTA_RESERVE_REACHED' });
    expect(connector.quota().windowRemaining).toBe(0);
  });

  it('pauses the connection after REQUEST_LIMIT_EXCEEDED without sending more calls', async () => {
    const { connector } = makeConnector();
    nock(INSTANCE).get(`${API}/sobjects/Contact/describe`).reply(403, fixture('error.403-request-limit-exceeded.json'), json);
    await expect(connector.describe('Contact')).rejects.toMatchObject({ kind: 'rate_limited', code: 'REQUEST_LIMIT_EXCEEDED' });
    const second = await connector.describe('Account').catch((e: unknown) => e);
    expect(second).toMatchObject({ kind: 'rate_limited', code: 'REQUEST_LIMIT_EXCEEDED' });
    expect((second as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
  });
});
