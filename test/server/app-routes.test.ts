/**
 * Malformed, oversized, wrongly typed and unauthenticated requests each get a 4xx with a reason
 * (never a 5xx); profile-route auth; health/readiness/metrics; route plugins with raw bodies; the
 * onProfilesChanged hook; secrets never in error bodies or logs.
 */
import fc from 'fast-check';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import type { StoreTx } from '../../src/store/port.ts';
import { ADMIN_TOKEN, BASIC, BEARER, WRITE_KEY, harness, post, type Harness } from './app-harness.ts';

const changedCalls: { ids: ProfileId[]; visible: boolean }[] = [];

const webhookProbe: FastifyPluginAsync = (app) => {
  app.post('/webhooks/probe', (request, reply) => reply.send({
    raw: request.rawBody?.toString('base64') ?? null,
    bodyType: Buffer.isBuffer(request.body) ? 'buffer' : typeof request.body,
    body: Buffer.isBuffer(request.body) ? null : request.body,
  }));
  app.get('/admin/probe', { preHandler: app.crmhub.requireAdmin }, (_request, reply) => reply.send({ admin: true }));
  return Promise.resolve();
};

describe('app routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness('sqlite', {
      plugins: [webhookProbe],
      onProfilesChanged: async (tx: StoreTx, ids: ProfileId[]) => {
        // Inside the ingest transaction: the new profiles are visible to this tx.
        const rows = await Promise.all(ids.map((id) => tx.getProfile(id)));
        changedCalls.push({ ids, visible: rows.every((r) => r !== null) });
      },
      env: { HUBSPOT_ACCESS_TOKEN: 'pat-secret-hubspot-123', SALESFORCE_WEBHOOK_TOKEN: 'sf-webhook-secret-456' },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  describe('4xx with a reason, never 5xx', () => {
    const cases: [string, () => Promise<{ statusCode: number; body: string }>, number, RegExp][] = [
      ['malformed JSON', () => post(h.app, 'track', '{"userId": "u", "event": '), 400, /not valid JSON/],
      ['empty body', () => post(h.app, 'identify', ''), 400, /empty/],
      ['JSON array', () => post(h.app, 'track', '[1,2]'), 400, /JSON object/],
      ['JSON null', () => post(h.app, 'track', 'null'), 400, /JSON object/],
      ['wrong type of field', () => post(h.app, 'track', { userId: 'u', event: 42 }), 400, /event/],
      ['wrong type of traits', () => post(h.app, 'identify', { userId: 'u', traits: [1] }), 400, /traits/],
      ['no user', () => post(h.app, 'page', { name: 'x' }), 400, /userId or anonymousId/],
      ['bad timestamp', () => post(h.app, 'track', { userId: 'u', event: 'e', timestamp: 'soon' }), 400, /timestamp/],
      ['batch not an array', () => post(h.app, 'batch', { batch: 'x' }), 400, /batch/],
      ['batch all bad', () => post(h.app, 'batch', { batch: [{ type: 'nope' }] }), 400, /type/],
      ['xml on the event API', () => post(h.app, 'track', '<a/>', { 'content-type': 'application/xml' }), 400, /JSON object/],
      ['oversized event (>32 KB)', () => post(h.app, 'track', { userId: 'u', event: 'e', properties: { x: 'y'.repeat(33 * 1024) } }), 413, /32 KB/],
      ['oversized batch (>500 KB)', () => post(h.app, 'batch', { batch: Array.from({ length: 20 }, () => ({ type: 'track', userId: 'u', event: 'e', properties: { x: 'y'.repeat(30 * 1024) } })) }), 413, /500 KB/],
      ['no credentials', () => h.app.inject({ method: 'POST', url: '/v1/track', headers: { 'content-type': 'application/json' }, payload: '{"userId":"u","event":"e"}' }), 401, /write key/],
      ['unknown write key', () => post(h.app, 'track', { userId: 'u', event: 'e' }, { authorization: `Basic ${Buffer.from('wrong:').toString('base64')}` }), 401, /unknown write key/],
      ['Bearer instead of Basic', () => post(h.app, 'track', { userId: 'u', event: 'e' }, { authorization: 'Bearer abcdef' }), 401, /Basic/],
      ['unknown route', () => post(h.app, 'launch', { userId: 'u' }), 404, /no route/],
    ];
    for (const [name, send, status, reason] of cases) {
      it(name, async () => {
        const res = await send();
        expect(res.statusCode, res.body).toBe(status);
        const body = JSON.parse(res.body);
        expect(body.success).toBe(false);
        expect(body.reason).toMatch(reason);
      });
    }

    it('accepts the write key in the body (Segment HTTP API) and text/plain JSON (sendBeacon)', async () => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/track',
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ writeKey: WRITE_KEY, anonymousId: 'beacon', event: 'Beacon' }),
      });
      expect(res.statusCode, res.body).toBe(200);
    });

    it('answers any random body on any event route with 200 or a 4xx (property)', async () => {
      const routes = ['identify', 'track', 'page', 'screen', 'group', 'alias', 'batch'];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(fc.json(), fc.string(), fc.jsonValue().map((v) => JSON.stringify({ batch: [v] }))), async (route, payload) => {
          const res = await post(h.app, route, payload);
          expect(res.statusCode === 200 || (res.statusCode >= 400 && res.statusCode < 500), `${res.statusCode} ${res.body}`).toBe(true);
        }),
        { numRuns: 150 },
      );
    });
  });

  describe('profile routes', () => {
    it('need the admin token', async () => {
      const none = await h.app.inject({ method: 'GET', url: '/v1/profiles?identifier=user_id:x' });
      expect(none.statusCode).toBe(401);
      expect(none.json().reason).toMatch(/Bearer/);
      const wrong = await h.app.inject({ method: 'GET', url: '/v1/profiles/prf_x', headers: { authorization: 'Bearer nope' } });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().reason).toBe('invalid admin token');
      const basic = await h.app.inject({ method: 'GET', url: '/v1/profiles/prf_x', headers: { authorization: BASIC } });
      expect(basic.statusCode).toBe(401);
    });

    it('answer 404 with a reason for unknown profiles and 400 for malformed identifiers', async () => {
      const missing = await h.app.inject({ method: 'GET', url: '/v1/profiles?identifier=email:nobody@example.com', headers: { authorization: BEARER } });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().reason).toMatch(/no profile holds email:nobody@example.com/);
      const byId = await h.app.inject({ method: 'GET', url: '/v1/profiles/prf_doesnotexist', headers: { authorization: BEARER } });
      expect(byId.statusCode).toBe(404);
      const malformed = await h.app.inject({ method: 'GET', url: '/v1/profiles?identifier=justtext', headers: { authorization: BEARER } });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().reason).toMatch(/TYPE:VALUE/);
      const absent = await h.app.inject({ method: 'GET', url: '/v1/profiles', headers: { authorization: BEARER } });
      expect(absent.statusCode).toBe(400);
      expect(absent.json().reason).toMatch(/identifier/);
    });
  });

  describe('health, readiness, metrics', () => {
    it('/healthz answers ok', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok' });
    });

    it('/readyz checks the store and registered checks', async () => {
      const ok = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().checks).toContainEqual({ name: 'store', ok: true, detail: 'sqlite' });
      h.readiness.register('mappings', () => ({ ok: false, detail: '2 invalid mapping files' }));
      const bad = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(bad.statusCode).toBe(503);
      expect(bad.json().checks).toContainEqual({ name: 'mappings', ok: false, detail: '2 invalid mapping files' });
      h.readiness.unregister('mappings');
    });

    it('/metrics exposes request and ingest counters', async () => {
      await post(h.app, 'track', { anonymousId: 'metrics', event: 'M' });
      const res = await h.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/plain/);
      expect(res.body).toMatch(/crmhub_http_requests_total\{method="POST",route="\/v1\/track",status="200"\} \d+/);
      expect(res.body).toMatch(/crmhub_ingest_events_total\{type="track",outcome="stored"\} \d+/);
      expect(res.body).toMatch(/crmhub_http_request_duration_seconds_bucket/);
    });
  });

  describe('route plugins and raw bodies', () => {
    const probe = (contentType: string, payload: string) =>
      h.app.inject({ method: 'POST', url: '/webhooks/probe', headers: { 'content-type': contentType }, payload });

    it('keeps the exact bytes of JSON, XML and form bodies in request.rawBody', async () => {
      const json = '{ "b": 1,  "a": [2] }';
      const j = (await probe('application/json', json)).json();
      expect(Buffer.from(j.raw, 'base64').toString()).toBe(json);
      expect(j.body).toEqual({ b: 1, a: [2] });
      const xml = '<?xml version="1.0"?><soapenv:Envelope/>';
      const x = (await probe('text/xml; charset=utf-8', xml)).json();
      expect(Buffer.from(x.raw, 'base64').toString()).toBe(xml);
      expect(x.body).toBe(xml);
      const form = 'a=1&b=two+words';
      const f = (await probe('application/x-www-form-urlencoded', form)).json();
      expect(Buffer.from(f.raw, 'base64').toString()).toBe(form);
      expect(f.body).toEqual({ a: '1', b: 'two words' });
      const bin = (await probe('application/octet-stream', 'xyz')).json();
      expect(bin.bodyType).toBe('buffer');
    });

    it('answers malformed JSON to plugins with 400, not 500', async () => {
      const res = await probe('application/json', '{nope');
      expect(res.statusCode).toBe(400);
    });

    it('drops __proto__ keys while parsing', async () => {
      const res = (await probe('application/json', '{"__proto__": {"polluted": true}, "a": 1}')).json();
      expect(res.body).toEqual({ a: 1 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('lets plugins guard routes with app.crmhub.requireAdmin', async () => {
      expect((await h.app.inject({ method: 'GET', url: '/admin/probe' })).statusCode).toBe(401);
      expect((await h.app.inject({ method: 'GET', url: '/admin/probe', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()).toEqual({ admin: true });
    });
  });

  it('calls onProfilesChanged inside the ingest transaction with created and changed profiles', async () => {
    changedCalls.length = 0;
    expect((await post(h.app, 'identify', { userId: 'hooked', traits: { name: 'Hook' } })).statusCode).toBe(200);
    expect(changedCalls).toHaveLength(1);
    expect(changedCalls[0]?.visible).toBe(true);
    const profile = await h.app.inject({ method: 'GET', url: '/v1/profiles?identifier=user_id:hooked', headers: { authorization: BEARER } });
    expect(changedCalls[0]?.ids).toEqual([profile.json().id]);
    // A track on a known profile changes nothing on it: no call.
    expect((await post(h.app, 'track', { userId: 'hooked', event: 'Noop' })).statusCode).toBe(200);
    expect(changedCalls).toHaveLength(1);
  });

  it('never puts a secret into an error body or a log line', async () => {
    const secrets = [WRITE_KEY, ADMIN_TOKEN, 'pat-secret-hubspot-123', 'sf-webhook-secret-456'];
    const bodies: string[] = [];
    bodies.push((await post(h.app, 'track', { userId: 'u', event: 'e' }, { authorization: `Basic ${Buffer.from(`${ADMIN_TOKEN}:`).toString('base64')}` })).body);
    bodies.push((await h.app.inject({ method: 'GET', url: '/v1/profiles/prf_x', headers: { authorization: `Bearer ${WRITE_KEY}` } })).body);
    bodies.push((await h.app.inject({ method: 'POST', url: '/webhooks/nothing?token=sf-webhook-secret-456', payload: 'x' })).body);
    bodies.push((await post(h.app, 'track', `{"userId":"pat-secret-hubspot-123",`)).body);
    bodies.push((await post(h.app, 'track', { userId: 'u', event: 'e', writeKey: WRITE_KEY, timestamp: ADMIN_TOKEN })).body);
    h.app.log.info({ config: { hubspot: { accessToken: 'pat-secret-hubspot-123' } } }, `token is ${ADMIN_TOKEN}`);
    h.app.log.error({ err: new TypeError(`failed with ${WRITE_KEY}`), url: '/webhooks/salesforce?token=sf-webhook-secret-456' }, 'boom');
    const text = [...bodies, ...h.logs].join('\n');
    expect(h.logs.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });
});
