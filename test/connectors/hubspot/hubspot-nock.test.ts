/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- request bodies and fixtures are untyped JSON */
/**
 * Pins the exact HTTP requests the HubSpot connector sends (nock, no sandbox): batch upsert bodies,
 * search paging and re-anchoring before the 10,000-result cap, 207 handling, plus error
 * classification and webhook signature checks against HubSpot's published vectors.
 */
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import { HubSpotConnector } from '../../../connectors/hubspot/hubspot-connector.ts';
import { classifyHubSpotResponse, msUntilMidnight, toHubSpotError } from '../../../connectors/hubspot/errors.ts';
import { normaliseSignedUri, verifyHubSpotSignature } from '../../../connectors/hubspot/webhooks.ts';
import { decodeCursor } from '../../../connectors/hubspot/objects.ts';

const BASE = 'https://api.hubapi.com';
const FIXTURES = fileURLToPath(new URL('../../../../shared/crm-reference/fixtures/hubspot', import.meta.url));
const fixture = (name: string): any => JSON.parse(readFileSync(`${FIXTURES}/${name}`, 'utf8'));
const RATE_HEADERS = { 'x-hubspot-ratelimit-max': '100', 'x-hubspot-ratelimit-remaining': '97', 'x-hubspot-ratelimit-interval-milliseconds': '10000', 'x-hubspot-ratelimit-daily': '250000', 'x-hubspot-ratelimit-daily-remaining': '249990' };

function contact(id: string, modified: string, extra: Record<string, string> = {}): object {
  return { id, properties: { hs_object_id: id, lastmodifieddate: modified, ...extra }, createdAt: modified, updatedAt: modified, archived: false };
}

const connector = (): HubSpotConnector => new HubSpotConnector({ accessToken: 'pat-test', clientSecret: 'secret', lookbackMs: 0 });

beforeAll(() => {
  nock.disableNetConnect();
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});

describe('HubSpot connector over HTTP: batch upsert', () => {
  it('sends one upsert per idProperty with only the changed properties, and matches a 207 back by objectWriteTraceId', async () => {
    const seen: unknown[] = [];
    nock(BASE, { reqheaders: { authorization: 'Bearer pat-test' } })
      .post('/crm/v3/objects/contacts/batch/upsert', (body: unknown) => {
        seen.push(body);
        return true;
      })
      .reply(207, {
        status: 'COMPLETE',
        results: [{ ...contact('512', '2024-05-02T11:22:33.444Z', { email: 'ada@example.com' }), new: false, objectWriteTraceId: 'ref-ada' }],
        numErrors: 1,
        errors: [
          {
            status: 'error',
            category: 'VALIDATION_ERROR',
            message: 'Property values were not valid: [{"isValid":false,"message":"Email address grace@ is invalid","error":"INVALID_EMAIL","name":"email"}]',
            context: { objectWriteTraceId: ['ref-grace'], propertyName: ['email'] },
            errors: [{ message: 'Email address grace@ is invalid', code: 'INVALID_EMAIL', context: { propertyName: ['email'] } }],
            links: {},
          },
        ],
        startedAt: '2024-05-02T11:22:33.120Z',
        completedAt: '2024-05-02T11:22:33.500Z',
      }, RATE_HEADERS)
      .post('/crm/v3/objects/contacts/batch/upsert', (body: unknown) => {
        seen.push(body);
        return true;
      })
      .reply(200, { status: 'COMPLETE', results: [{ ...contact('600', '2024-05-02T11:22:34.000Z', { crmhub_id: 'prf_1' }), new: true, objectWriteTraceId: 'ref-id' }], startedAt: '2024-05-02T11:22:33.120Z', completedAt: '2024-05-02T11:22:33.500Z' });

    const c = connector();
    const outcomes = await c.write('contacts', [
      { ref: 'ref-ada', upsertKey: { field: 'email', value: 'ada@example.com' }, fields: { firstname: 'Ada', crmhub_audiences: ['trial_users', 'newsletter'], crmhub_product_usage_score: 42.5, phone: null } },
      { ref: 'ref-grace', upsertKey: { field: 'email', value: 'grace@' }, fields: { firstname: 'Grace' } },
      { ref: 'ref-id', upsertKey: { field: 'crmhub_id', value: 'prf_1' }, fields: { lastname: 'Hopper' } },
    ]);
    expect(seen).toEqual([
      {
        inputs: [
          { id: 'ada@example.com', idProperty: 'email', objectWriteTraceId: 'ref-ada', properties: { firstname: 'Ada', crmhub_audiences: 'trial_users;newsletter', crmhub_product_usage_score: '42.5', phone: '' } },
          { id: 'grace@', idProperty: 'email', objectWriteTraceId: 'ref-grace', properties: { firstname: 'Grace' } },
        ],
      },
      { inputs: [{ id: 'prf_1', idProperty: 'crmhub_id', objectWriteTraceId: 'ref-id', properties: { lastname: 'Hopper' } }] },
    ]);
    expect(outcomes[0]).toEqual({ ref: 'ref-ada', ok: true, remoteId: '512', created: false, modifiedAt: '2024-05-02T11:22:33.444Z' });
    expect(outcomes[1]?.ok).toBe(false);
    if (outcomes[1] && !outcomes[1].ok) {
      expect(outcomes[1].error).toMatchObject({ kind: 'payload', code: 'HUBSPOT_VALIDATION_ERROR' });
      expect(outcomes[1].error.context).toMatchObject({ field: 'email', record: 'ref-grace', object: 'contacts' });
    }
    expect(outcomes[2]).toMatchObject({ ref: 'ref-id', ok: true, remoteId: '600', created: true });
    expect(c.quota()).toEqual({ windowRemaining: 97, windowResetMs: 10_000, dailyLimit: 250_000, dailyRemaining: 249_990 });
  });

  it('matches 207 errors by ids when HubSpot gives no trace id, and bisects a whole-batch 400', async () => {
    const bodies: any[] = [];
    const capture = (body: unknown): boolean => {
      bodies.push(body);
      return true;
    };
    nock(BASE)
      .post('/crm/v3/objects/contacts/batch/update', capture)
      .reply(207, {
        status: 'COMPLETE',
        results: [contact('1', '2024-05-02T11:22:33.444Z')],
        errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.', context: { ids: ['2'] }, errors: [], links: {} }],
      })
      // The follow-up read of the missing id finds nothing (deleted, not merged).
      .post('/crm/v3/objects/contacts/batch/read', capture)
      .query({ archived: 'false' })
      .reply(207, { status: 'COMPLETE', results: [], errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'x', context: { ids: ['2'] } }] })
      .post('/crm/v3/objects/contacts/batch/create', capture)
      .reply(400, { status: 'error', message: 'Property values were not valid', correlationId: 'c1', category: 'VALIDATION_ERROR' })
      .post('/crm/v3/objects/contacts/batch/create', capture)
      .reply(201, { status: 'COMPLETE', results: [{ ...contact('3', '2024-05-02T11:22:33.444Z'), objectWriteTraceId: 'c-ok' }] })
      .post('/crm/v3/objects/contacts/batch/create', capture)
      .reply(400, { status: 'error', message: 'Property values were not valid', correlationId: 'c2', category: 'VALIDATION_ERROR' });
    const outcomes = await connector().write('contacts', [
      { ref: 'u1', remoteId: '1', fields: { firstname: 'A' } },
      { ref: 'u2', remoteId: '2', fields: { firstname: 'B' } },
      { ref: 'c-ok', fields: { email: 'ok@example.com' } },
      { ref: 'c-bad', fields: { email: 'bad' } },
    ]);
    expect(bodies[0]).toEqual({ inputs: [{ id: '1', objectWriteTraceId: 'u1', properties: { firstname: 'A' } }, { id: '2', objectWriteTraceId: 'u2', properties: { firstname: 'B' } }] });
    expect(bodies[1]).toEqual({ inputs: [{ id: '2' }], properties: ['hs_merged_object_ids'], propertiesWithHistory: [] });
    expect(bodies.slice(2).map((b) => b.inputs.map((i: any) => i.objectWriteTraceId))).toEqual([['c-ok', 'c-bad'], ['c-ok'], ['c-bad']]);
    const byRef = new Map(outcomes.map((o) => [o.ref, o]));
    expect(byRef.get('u1')).toMatchObject({ ok: true, remoteId: '1' });
    expect(byRef.get('u2')).toMatchObject({ ok: false, error: { kind: 'payload', code: 'HUBSPOT_OBJECT_NOT_FOUND' } });
    expect(byRef.get('c-ok')).toMatchObject({ ok: true, remoteId: '3', created: true });
    expect(byRef.get('c-bad')).toMatchObject({ ok: false, error: { kind: 'payload', code: 'HUBSPOT_VALIDATION_ERROR' } });
  });

  it('rejects the whole write on a 429 with the wait HubSpot implies', async () => {
    nock(BASE).post('/crm/v3/objects/contacts/batch/upsert').reply(429, fixture('error.429-ten-secondly.json'), { 'x-hubspot-ratelimit-interval-milliseconds': '10000' });
    const error = await connector()
      .write('contacts', [{ ref: 'r', upsertKey: { field: 'email', value: 'a@example.com' }, fields: {} }])
      .then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(CrmhubError);
    expect(error).toMatchObject({ kind: 'rate_limited', code: 'HUBSPOT_TEN_SECONDLY_LIMIT', retryAfterMs: 10_000 });
  });
});

describe('HubSpot connector over HTTP: search paging', () => {
  it('pages by lastmodifieddate ascending and re-anchors on the last timestamp before the 10,000-result cap', async () => {
    const bodies: any[] = [];
    const capture = (body: unknown): boolean => {
      bodies.push(body);
      return true;
    };
    const t1 = '2024-05-02T11:00:00.000Z';
    const t2 = '2024-05-02T12:00:00.000Z';
    const t3 = '2024-05-02T13:00:00.000Z';
    nock(BASE)
      .post('/crm/v3/objects/contacts/search', capture)
      .reply(200, { total: 10_400, results: [contact('1', t1), contact('2', t2)], paging: { next: { after: '9800' } } }, RATE_HEADERS)
      .post('/crm/v3/objects/contacts/search', capture)
      .reply(200, { total: 10_400, results: [contact('3', t2), contact('4', t3)], paging: { next: { after: '10000' } } })
      // Re-anchored query: GTE t3 from offset 0; id 4 (already returned at t3) comes back and is skipped.
      .post('/crm/v3/objects/contacts/search', capture)
      .reply(200, { total: 2, results: [contact('4', t3), contact('5', t3)] })
      .get('/crm/v3/objects/contacts')
      .query({ limit: '100', properties: 'lastmodifieddate', archived: 'true' })
      .reply(200, { results: [{ ...contact('9', t1), archived: true, archivedAt: t2 }] });

    const c = connector();
    const fields = ['email', 'firstname'];
    const p1 = await c.readChanges('contacts', null, { pageSize: 200, fields });
    const p2 = await c.readChanges('contacts', p1.nextCursor, { pageSize: 200, fields });
    const p3 = await c.readChanges('contacts', p2.nextCursor, { pageSize: 200, fields });
    const p4 = p3.done ? p3 : await c.readChanges('contacts', p3.nextCursor, { pageSize: 200, fields });
    const filter = (gte: string) => [{ filters: [{ propertyName: 'lastmodifieddate', operator: 'GTE', value: gte }] }];
    const common = { sorts: [{ propertyName: 'lastmodifieddate', direction: 'ASCENDING' }], properties: ['email', 'firstname', 'lastmodifieddate', 'hs_merged_object_ids'], limit: 200 };
    expect(bodies).toEqual([
      { filterGroups: filter('0'), ...common, after: '0' },
      { filterGroups: filter('0'), ...common, after: '9800' },
      { filterGroups: filter(String(Date.parse(t3))), ...common, after: '0' },
    ]);
    expect([...p1.records, ...p2.records, ...p3.records].map((r) => r.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(p4.records).toEqual([expect.objectContaining({ id: '9', deleted: true, modifiedAt: t2 })]);
    expect(p4.done).toBe(true);
    const cursor = decodeCursor(p4.nextCursor ?? '');
    expect(cursor).toMatchObject({ anchor: Date.parse(t3), phase: 'live', archivedSince: Date.parse(t2) });
    expect(Object.keys(cursor.seen).sort()).toEqual(['4', '5']);
  });
});

describe('HubSpot errors.ts', () => {
  it('classifies every status and category', () => {
    expect(classifyHubSpotResponse(401, { category: 'INVALID_AUTHENTICATION', message: 'x' }, {})).toMatchObject({ kind: 'auth', code: 'HUBSPOT_INVALID_AUTHENTICATION' });
    expect(classifyHubSpotResponse(403, { category: 'MISSING_SCOPES', message: 'This app hasn\'t been granted all required scopes' }, {})).toMatchObject({ kind: 'config', code: 'HUBSPOT_MISSING_SCOPES' });
    expect(classifyHubSpotResponse(429, fixture('error.429-search-secondly.json'), {})).toMatchObject({ kind: 'rate_limited', code: 'HUBSPOT_SEARCH_SECONDLY_LIMIT', retryAfterMs: 1000 });
    const now = Date.UTC(2024, 4, 2, 23, 0, 0);
    expect(classifyHubSpotResponse(429, fixture('error.429-daily.json'), {}, {}, now)).toMatchObject({ kind: 'rate_limited', code: 'HUBSPOT_DAILY_LIMIT', retryAfterMs: 3_600_000 });
    expect(classifyHubSpotResponse(429, fixture('error.429-ten-secondly.json'), { 'retry-after': '3' })).toMatchObject({ retryAfterMs: 3000 });
    expect(classifyHubSpotResponse(400, { category: 'VALIDATION_ERROR', message: 'bad', errors: [{ message: 'm', context: { propertyName: ['email'] } }] }, {})).toMatchObject({ kind: 'payload', code: 'HUBSPOT_VALIDATION_ERROR', context: { field: 'email' } });
    expect(classifyHubSpotResponse(404, { category: 'OBJECT_NOT_FOUND', message: 'resource not found' }, {})).toMatchObject({ kind: 'payload', code: 'HUBSPOT_OBJECT_NOT_FOUND' });
    expect(classifyHubSpotResponse(409, { category: 'CONFLICT', message: 'Contact already exists. Existing ID: 512' }, {})).toMatchObject({ kind: 'payload', code: 'HUBSPOT_CONFLICT' });
    for (const status of [500, 502, 503, 504]) expect(classifyHubSpotResponse(status, '<html>bad gateway</html>', {}).kind).toBe('transient');
    expect(classifyHubSpotResponse(415, {}, {}).kind).toBe('internal');
    expect(msUntilMidnight(Date.UTC(2024, 0, 1, 0, 0, 1))).toBe(86_399_000);
  });

  it('maps thrown values: ApiException shapes, network errors, unknowns', () => {
    expect(toHubSpotError({ code: 503, body: { message: 'x' }, headers: {} }).kind).toBe('transient');
    expect(toHubSpotError(Object.assign(new TypeError('socket hang up'), { code: 'ECONNRESET' })).kind).toBe('transient');
    expect(toHubSpotError(Object.assign(new TypeError('request failed'), { name: 'FetchError', type: 'system' })).kind).toBe('transient');
    expect(toHubSpotError(new TypeError('boom')).kind).toBe('internal');
    // Secrets never leak into messages: the token is not part of any error.
    expect(JSON.stringify(toHubSpotError({ code: 401, body: { message: 'expired' } }).toJSON())).not.toContain('pat-test');
  });
});

describe('HubSpot webhooks.ts', () => {
  const vectors = fixture('webhook.signature-vectors.json');

  it('accepts the published v3 vector within 5 minutes and rejects it after', () => {
    const v3 = vectors.v3;
    const request = {
      method: v3.method,
      url: v3.url,
      headers: { 'X-HubSpot-Signature-v3': v3.expected, 'X-HubSpot-Request-Timestamp': String(v3.timestamp) },
      rawBody: Buffer.from(v3.requestBody),
      now: v3.timestamp + 60_000,
    };
    expect(() => verifyHubSpotSignature(request, vectors.clientSecret)).not.toThrow();
    expect(() => verifyHubSpotSignature({ ...request, now: v3.timestamp + 300_001 }, vectors.clientSecret)).toThrow(CrmhubError);
    expect(() => verifyHubSpotSignature(request, 'other-secret')).toThrow(/signature/);
    expect(() => verifyHubSpotSignature({ ...request, headers: {} }, vectors.clientSecret)).toThrow(CrmhubError);
  });

  it('decodes the URI characters HubSpot decodes before signing', () => {
    expect(normaliseSignedUri('https://x.example/hook%3Fa%3Db%2Cc?q=%40me%20x')).toBe('https://x.example/hook?a%3Db,c?q=@me%20x');
    const url = 'https://x.example/webhooks/hubspot?tag=a%3Ab';
    const body = '[]';
    const ts = '1700000000000';
    const signature = createHmac('sha256', 's').update(`POST${'https://x.example/webhooks/hubspot?tag=a:b'}${body}${ts}`).digest('base64');
    expect(() => verifyHubSpotSignature({ method: 'POST', url, headers: { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': ts }, rawBody: Buffer.from(body), now: Number(ts) }, 's')).not.toThrow();
  });

  it('parses the documented batch payload into changes with stable delivery ids', async () => {
    const body = JSON.stringify(fixture('webhook.v3-batch.contact-events.json'));
    const url = 'https://crmhub.example/webhooks/hubspot';
    const now = Date.now();
    const signature = createHmac('sha256', 'secret').update(`POST${url}${body}${now}`).digest('base64');
    const result = await connector().handleWebhook({ method: 'POST', url, headers: { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': String(now) }, rawBody: Buffer.from(body), now });
    expect(result.changes).toEqual([
      { object: 'contacts', id: '1246965', kind: 'upsert', deliveryId: '25:3816279340:1462216307945:1246965', changedAt: new Date(1462216307945).toISOString(), origin: 'other', changedFields: ['lifecyclestage'], fields: { lifecyclestage: 'subscriber' } },
      { object: 'contacts', id: '1246978', kind: 'upsert', deliveryId: '22:3816279480:1462216307945:1246978', changedAt: new Date(1462216307945).toISOString(), origin: 'other' },
    ]);
  });
});
