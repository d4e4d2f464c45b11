/**
 * Bad input (issue 9): property-based fuzzing of the event API and the three webhook endpoints with
 * malformed JSON, wrong types, huge and deeply nested bodies, bad and replayed signatures, unknown
 * fields, wrong content types and empty bodies. Never a 5xx, never a crash (the app keeps answering
 * /healthz), every rejection a 4xx with a reason.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, healthy, hubspotHeaders, HOST, judge } from './support/http-checks.ts';
import { startHub, WRITE_AUTH, type Hub } from './support/hub.ts';
import { stats } from './support/sandbox-control.ts';

const ROUTES = ['identify', 'track', 'page', 'screen', 'group', 'alias', 'batch'] as const;
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'text/xml',
  'application/xml',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  '',
];
const RUNS = Number(process.env['CRMHUB_FUZZ_RUNS'] ?? 150);

let hub: Hub;
beforeAll(async () => {
  hub = await startHub();
});
afterAll(async () => {
  await hub?.close();
});

const validEvent = (route: string): Record<string, unknown> => {
  const base = { userId: 'u-1', messageId: `m-${Math.random()}`, timestamp: new Date().toISOString() };
  switch (route) {
    case 'identify':
      return { ...base, traits: { email: 'fuzz@example.com', plan: 'pro' } };
    case 'track':
      return { ...base, event: 'Signed Up', properties: { plan: 'pro' } };
    case 'group':
      return { ...base, groupId: 'g-1', traits: { name: 'Acme' } };
    case 'alias':
      return { ...base, previousId: 'anon-1' };
    case 'batch':
      return { batch: [{ type: 'identify', ...base, traits: { email: 'b@example.com' } }] };
    default:
      return { ...base, name: 'Home' };
  }
};

/** Raw bodies: valid JSON of any shape, truncated JSON, random text, random bytes, empty. */
const rawBody = fc.oneof(
  fc.json().map((s) => Buffer.from(s)),
  fc.json().map((s) => Buffer.from(s.slice(0, Math.max(0, s.length - 1)))),
  fc.string({ unit: 'binary', maxLength: 400 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.alloc(0)),
  fc.constantFrom('{', '[', '{"a":', 'null', 'true', '0', '""', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"y":1}}}').map((s) => Buffer.from(s)),
);

/** A valid event with one field replaced by anything, or unknown fields added. */
const mutatedEvent = (route: string) =>
  fc
    .record({
      key: fc.constantFrom('userId', 'anonymousId', 'messageId', 'timestamp', 'traits', 'properties', 'event', 'context', 'groupId', 'previousId', 'batch', 'type', 'sentAt', 'integrations'),
      value: fc.jsonValue({ maxDepth: 4 }),
      extra: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    })
    .map(({ key, value, extra }) => ({ ...extra, ...validEvent(route), [key]: value }));

async function expectStillHealthy(): Promise<void> {
  expect(await healthy(hub.app)).toBe(true);
}

/** Unauthenticated requests: refused (401, or 400/413/415 when the body is refused before auth). */
const rejected = (status: number): boolean => status >= 400 && status < 500;

function check(res: Parameters<typeof judge>[0], what: string): void {
  const verdict = judge(res);
  if (!verdict.ok) throw new Error(`${what}: ${verdict.why}`);
}

describe('event API under bad input', () => {
  it('any raw body, content type and auth: never 5xx, rejections carry a reason', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        rawBody,
        fc.constantFrom(...CONTENT_TYPES),
        fc.constantFrom(WRITE_AUTH, '', 'Basic !!!', basicAuth('wrong-key', ''), 'Bearer x', basicAuth('', '')),
        async (route, body, type, auth) => {
          const headers: Record<string, string> = { host: HOST };
          if (type) headers['content-type'] = type;
          if (auth) headers['authorization'] = auth;
          const res = await hub.app.inject({ method: 'POST', url: `/v1/${route}`, headers, payload: body });
          check(res, `POST /v1/${route} (${type}) ${body.toString('utf8').slice(0, 80)}`);
          if (auth !== WRITE_AUTH) expect(rejected(res.statusCode)).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
    await expectStillHealthy();
  });

  it('wrong types and unknown fields in otherwise valid events: 200 or a 4xx with a reason', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES).chain((r) => fc.tuple(fc.constant(r), mutatedEvent(r))),
        async ([route, event]) => {
          const res = await hub.app.inject({ method: 'POST', url: `/v1/${route}`, headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload: JSON.stringify(event) });
          check(res, `POST /v1/${route} ${JSON.stringify(event).slice(0, 200)}`);
          if (res.statusCode === 200) accepted++;
        },
      ),
      { numRuns: RUNS * 2 },
    );
    // Sanity: the generator is not so hostile that nothing valid gets through.
    expect(accepted).toBeGreaterThan(0);
    await expectStillHealthy();
  });

  it('huge and deeply nested bodies are refused with a reason, not a crash', async () => {
    const post = (route: string, payload: string) =>
      hub.app.inject({ method: 'POST', url: `/v1/${route}`, headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload });
    const bigTrait = JSON.stringify({ ...validEvent('identify'), traits: { blob: 'x'.repeat(40 * 1024) } });
    const bigBatch = JSON.stringify({ batch: Array.from({ length: 70 }, () => ({ type: 'track', event: 'E', userId: 'u', properties: { blob: 'y'.repeat(8 * 1024) } })) });
    const hugeBody = JSON.stringify({ batch: [], pad: 'z'.repeat(3 * 1024 * 1024) });
    const nestedArrays = '['.repeat(100_000) + ']'.repeat(100_000);
    const nestedInProps = JSON.stringify({ ...validEvent('track'), properties: JSON.parse('{"a":'.repeat(2_000) + '1' + '}'.repeat(2_000)) as unknown });
    const manyKeys = JSON.stringify({ ...validEvent('identify'), traits: Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`k${i}`, i])) });
    const cases: [string, string, number | null][] = [
      ['identify', bigTrait, 400],
      ['batch', bigBatch, 400],
      ['batch', hugeBody, 413],
      ['track', nestedArrays, null],
      ['track', nestedInProps, null],
      ['identify', manyKeys, null],
    ];
    for (const [route, payload, expected] of cases) {
      const res = await post(route, payload);
      check(res, `${route} ${payload.length} bytes`);
      if (expected !== null) expect([expected, 413, 400]).toContain(res.statusCode);
      if (expected !== null) expect(res.statusCode).toBeGreaterThanOrEqual(400);
    }
    await expectStillHealthy();
  });
});

describe('webhooks under bad input', () => {
  const hubspotPath = '/webhooks/hubspot';
  const secret = (): string => hub.env['HUBSPOT_CLIENT_SECRET']!;

  it('HubSpot: validly signed fuzzed bodies never 5xx; bad, stale and replayed signatures are 401 with a reason', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          rawBody,
          fc.array(fc.record({ eventId: fc.oneof(fc.integer(), fc.string()), subscriptionType: fc.string(), objectId: fc.oneof(fc.integer(), fc.string()), occurredAt: fc.oneof(fc.integer(), fc.string()), propertyName: fc.string(), propertyValue: fc.jsonValue() }, { requiredKeys: [] }), { maxLength: 5 }).map((a) => Buffer.from(JSON.stringify(a))),
        ),
        fc.constantFrom('valid', 'tampered', 'stale', 'future', 'missing', 'garbage'),
        fc.constantFrom('application/json', 'text/plain', ''),
        async (body, mode, type) => {
          const now = Date.now();
          const ts = mode === 'stale' ? now - 10 * 60_000 : mode === 'future' ? now + 10 * 60_000 : now;
          const signed = hubspotHeaders(secret(), hubspotPath, body, ts);
          const headers: Record<string, string> = { host: HOST, ...signed };
          if (type) headers['content-type'] = type;
          if (mode === 'tampered') headers['x-hubspot-signature-v3'] = hubspotHeaders(secret(), hubspotPath, Buffer.concat([body, Buffer.from(' ')]), ts)['x-hubspot-signature-v3']!;
          if (mode === 'missing') delete headers['x-hubspot-signature-v3'];
          if (mode === 'garbage') headers['x-hubspot-signature-v3'] = '%%%not-base64';
          const res = await hub.app.inject({ method: 'POST', url: hubspotPath, headers, payload: body });
          check(res, `hubspot ${mode} ${body.toString('utf8').slice(0, 120)}`);
          if (mode !== 'valid') expect(rejected(res.statusCode)).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
    await hub.engine.settled();
    await expectStillHealthy();
  });

  it('HubSpot: a replayed delivery is answered but processed once', async () => {
    const body = Buffer.from(JSON.stringify([{ eventId: 991_001, subscriptionId: 1, portalId: 1, appId: 1, occurredAt: Date.now(), subscriptionType: 'contact.propertyChange', attemptNumber: 0, objectId: 123_456_789, propertyName: 'firstname', propertyValue: 'Replay', changeSource: 'CRM_UI' }]));
    const send = () => hub.app.inject({ method: 'POST', url: hubspotPath, headers: { host: HOST, 'content-type': 'application/json', ...hubspotHeaders(secret(), hubspotPath, body, Date.now()) }, payload: body });
    const sandbox = hub.sandboxes.get('hubspot')!;
    await hub.engine.settled();
    const before = (await stats(sandbox)).totalCalls;
    const first = await send();
    check(first, 'first delivery');
    expect(first.statusCode).toBe(200);
    await hub.engine.settled();
    const afterFirst = (await stats(sandbox)).totalCalls;
    // The thin payload is read back from HubSpot once...
    expect(afterFirst).toBeGreaterThan(before);
    const second = await send();
    check(second, 'replayed delivery');
    expect(second.statusCode).toBe(200);
    await hub.engine.settled();
    // ...and the replay (same eventId) is acknowledged without any further work.
    expect((await stats(sandbox)).totalCalls).toBe(afterFirst);
    await expectStillHealthy();
  });

  it('Pipedrive: fuzzed bodies with and without valid Basic auth never 5xx', async () => {
    const good = basicAuth(hub.env['PIPEDRIVE_WEBHOOK_USER']!, hub.env['PIPEDRIVE_WEBHOOK_PASSWORD']!);
    const v2 = fc
      .record({
        meta: fc.record({ action: fc.oneof(fc.constantFrom('create', 'change', 'delete', 'added', 'updated', 'deleted'), fc.string()), entity: fc.oneof(fc.constantFrom('person', 'organization', 'deal'), fc.string()), entity_id: fc.oneof(fc.string(), fc.integer()), id: fc.string(), timestamp: fc.oneof(fc.string(), fc.integer()), version: fc.constantFrom('2.0', '1.0', 'x') }, { requiredKeys: [] }),
        data: fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }))),
        previous: fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
      }, { requiredKeys: [] })
      .map((o) => Buffer.from(JSON.stringify(o)));
    await fc.assert(
      fc.asyncProperty(fc.oneof(rawBody, v2), fc.constantFrom(good, '', basicAuth('nope', 'nope'), 'Basic ###'), fc.constantFrom('application/json', 'text/plain', ''), async (body, auth, type) => {
        const headers: Record<string, string> = { host: HOST };
        if (type) headers['content-type'] = type;
        if (auth) headers['authorization'] = auth;
        const res = await hub.app.inject({ method: 'POST', url: '/webhooks/pipedrive', headers, payload: body });
        check(res, `pipedrive ${auth === good ? 'authed' : 'unauthed'} ${body.toString('utf8').slice(0, 120)}`);
        if (auth !== good) expect(rejected(res.statusCode)).toBe(true);
      }),
      { numRuns: RUNS },
    );
    await hub.engine.settled();
    await expectStillHealthy();
  });

  it('Salesforce: fuzzed SOAP and JSON with right and wrong tokens never 5xx', async () => {
    const token = hub.env['SALESFORCE_WEBHOOK_TOKEN']!;
    const orgId = hub.env['SALESFORCE_ORG_ID']!;
    const soap = fc
      .record({ org: fc.oneof(fc.constant(orgId), fc.string({ maxLength: 20 })), id: fc.string({ maxLength: 20 }), field: fc.string({ maxLength: 30 }), type: fc.constantFrom('sf:Contact', 'sf:Lead', 'sf:Nope', '') })
      .map(
        ({ org, id, field, type }) =>
          Buffer.from(
            `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>${org}</OrganizationId><Notification><Id>n1</Id><sObject xsi:type="${type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>${id}</sf:Id><sf:Email>${field}</sf:Email></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>`,
          ),
      );
    const cdc = fc
      .record({ ChangeEventHeader: fc.record({ entityName: fc.oneof(fc.constantFrom('Contact', 'Lead', 'Account'), fc.string()), changeType: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE'), fc.string()), recordIds: fc.oneof(fc.array(fc.string()), fc.jsonValue()), commitTimestamp: fc.oneof(fc.integer(), fc.string()), transactionKey: fc.string(), changeOrigin: fc.string() }, { requiredKeys: [] }) }, { requiredKeys: [] })
      .map((o) => Buffer.from(JSON.stringify(fc.sample(fc.boolean(), 1)[0] ? [o] : o)));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(rawBody, soap, cdc),
        fc.constantFrom(token, '', 'wrong', `${token}x`, '%00'),
        fc.constantFrom('text/xml; charset=utf-8', 'application/json', 'text/plain', ''),
        async (body, t, type) => {
          const headers: Record<string, string> = { host: HOST };
          if (type) headers['content-type'] = type;
          const res = await hub.app.inject({ method: 'POST', url: `/webhooks/salesforce?token=${encodeURIComponent(t)}`, headers, payload: body });
          check(res, `salesforce token=${t === token ? 'right' : 'wrong'} ${type} ${body.toString('utf8').slice(0, 120)}`);
          if (t !== token) expect(rejected(res.statusCode)).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
    await hub.engine.settled();
    await expectStillHealthy();
  });

  it('unknown connector slugs and methods are 4xx with a reason', async () => {
    for (const url of ['/webhooks/zoho', '/webhooks/..%2f..%2fetc', '/webhooks/' + 'a'.repeat(300), '/webhooks/HUBSPOT']) {
      const res = await hub.app.inject({ method: 'POST', url, headers: { host: HOST, 'content-type': 'application/json' }, payload: '{}' });
      check(res, url);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
    }
    const get = await hub.app.inject({ method: 'GET', url: '/webhooks/hubspot', headers: { host: HOST } });
    check(get, 'GET /webhooks/hubspot');
    expect(get.statusCode).toBe(404);
    await expectStillHealthy();
  });

  it('after the fuzzing, background webhook work logged no internal errors', async () => {
    await hub.engine.settled();
    const internal = hub.logs.filter((l) => l.includes('"kind":"internal"'));
    expect(internal.slice(0, 3)).toEqual([]);
  });
});
