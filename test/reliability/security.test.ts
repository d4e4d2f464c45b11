/**
 * Security (issue 9): admin routes refuse missing and wrong tokens; no secret appears in logs or in
 * error bodies during a run full of failures (bad auth, connector errors, injected 5xx); values that
 * reach SOQL are escaped so hostile strings compare as literals.
 */
import { parseQuery, type Condition, type WhereClause } from '@jetstreamapp/soql-parser-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import salesforceModule from '../../connectors/salesforce/index.ts';
import { SalesforceClient } from '../../connectors/salesforce/client.ts';
import { SalesforceConnector } from '../../connectors/salesforce/salesforce-connector.ts';
import type { FastifyInstance } from 'fastify';
import { basicAuth, HOST, hubspotHeaders, judge } from './support/http-checks.ts';
import { ADMIN_TOKEN, startHub, WRITE_AUTH, WRITE_KEY, type Hub } from './support/hub.ts';
import { configure, seed } from './support/sandbox-control.ts';

let hub: Hub;
beforeAll(async () => {
  hub = await startHub({ engine: { retry: { baseMs: 5, maxMs: 20, maxAttempts: 2 } } });
});
afterAll(async () => {
  await hub?.close();
});

const ADMIN_ROUTES: { method: 'GET' | 'POST'; url: string; body?: unknown }[] = [
  { method: 'GET', url: '/v1/profiles/some-id' },
  { method: 'GET', url: '/v1/profiles?identifier=email:a@example.com' },
  { method: 'GET', url: '/admin/sync-runs' },
  { method: 'GET', url: '/admin/conflicts' },
  { method: 'GET', url: '/admin/dlq' },
  { method: 'GET', url: '/admin/connections' },
  { method: 'POST', url: '/admin/dlq/some-id/replay', body: {} },
  { method: 'POST', url: '/admin/sync', body: { direction: 'pull', dryRun: true } },
];

const WRONG_AUTH: (string | null)[] = [
  null,
  '',
  'Bearer',
  'Bearer ',
  'Bearer wrong-token',
  `Bearer ${ADMIN_TOKEN}x`,
  `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
  `Bearer ${ADMIN_TOKEN.toUpperCase()}`,
  `Basic ${Buffer.from(`${ADMIN_TOKEN}:`).toString('base64')}`,
  `Token ${ADMIN_TOKEN}`,
  WRITE_AUTH,
  `Bearer ${WRITE_KEY}`,
];

function admin(app: FastifyInstance, route: (typeof ADMIN_ROUTES)[number], authorization: string | null) {
  const headers: Record<string, string> = { host: HOST };
  if (authorization !== null) headers['authorization'] = authorization;
  if (route.body !== undefined) headers['content-type'] = 'application/json';
  return app.inject({ method: route.method, url: route.url, headers, ...(route.body === undefined ? {} : { payload: JSON.stringify(route.body) }) });
}

describe('admin routes', () => {
  it('refuse requests without the token or with a wrong one (401 with a reason)', async () => {
    for (const route of ADMIN_ROUTES) {
      for (const auth of WRONG_AUTH) {
        const res = await admin(hub.app, route, auth);
        expect({ route: `${route.method} ${route.url}`, auth, status: res.statusCode }).toEqual({ route: `${route.method} ${route.url}`, auth, status: 401 });
        expect(judge(res)).toEqual({ ok: true, why: '' });
      }
    }
  });

  it('answer with the right token (so the refusals above are not a broken route)', async () => {
    for (const route of ADMIN_ROUTES) {
      const res = await admin(hub.app, route, `Bearer ${ADMIN_TOKEN}`);
      expect(res.statusCode, `${route.method} ${route.url}: ${res.body.slice(0, 200)}`).not.toBe(401);
      expect(res.statusCode).toBeLessThan(500);
    }
  });
});

describe('secrets', () => {
  it('appear in no log line and no response body during a run full of failures', async () => {
    const bodies: string[] = [];
    const keep = async (p: Promise<{ body: string; statusCode: number }>) => {
      const res = await p;
      bodies.push(res.body);
      return res;
    };
    const { app, env } = hub;
    // Data on both sides so pulls and pushes have work.
    for (const [slug, object] of [['hubspot', 'contacts'], ['salesforce', 'Contact'], ['pipedrive', 'persons']] as const) {
      await seed(hub.sandboxes.get(slug)!, object, 5);
    }
    for (let i = 0; i < 5; i++) {
      await keep(app.inject({ method: 'POST', url: '/v1/identify', headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload: JSON.stringify({ userId: `sec-${i}`, traits: { email: `sec${i}@example.com`, first_name: `S${i}`, plan: 'pro' } }) }));
    }
    // Bad auth everywhere: event API, admin, the three webhooks (with near-miss credentials).
    await keep(app.inject({ method: 'POST', url: '/v1/track', headers: { host: HOST, authorization: basicAuth(`${WRITE_KEY}0`, ''), 'content-type': 'application/json' }, payload: '{"userId":"x","event":"E"}' }));
    await keep(app.inject({ method: 'GET', url: '/admin/dlq', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}0` } }));
    const hsBody = Buffer.from('[{"eventId":1,"subscriptionType":"contact.propertyChange","objectId":1,"occurredAt":1}]');
    await keep(app.inject({ method: 'POST', url: '/webhooks/hubspot', headers: { host: HOST, 'content-type': 'application/json', ...hubspotHeaders(`${env['HUBSPOT_CLIENT_SECRET']!}0`, '/webhooks/hubspot', hsBody, Date.now()) }, payload: hsBody }));
    await keep(app.inject({ method: 'POST', url: '/webhooks/pipedrive', headers: { host: HOST, 'content-type': 'application/json', authorization: basicAuth(env['PIPEDRIVE_WEBHOOK_USER']!, `${env['PIPEDRIVE_WEBHOOK_PASSWORD']!}0`) }, payload: '{}' }));
    await keep(app.inject({ method: 'POST', url: `/webhooks/salesforce?token=${env['SALESFORCE_WEBHOOK_TOKEN']!}0`, headers: { host: HOST, 'content-type': 'application/json' }, payload: '{}' }));
    // The right Salesforce token in the URL, with a body that fails: the URL must not be logged raw.
    await keep(app.inject({ method: 'POST', url: `/webhooks/salesforce?token=${env['SALESFORCE_WEBHOOK_TOKEN']!}`, headers: { host: HOST, 'content-type': 'application/json' }, payload: '{"not":"a change event"' }));
    await keep(app.inject({ method: 'POST', url: `/webhooks/salesforce?token=${env['SALESFORCE_WEBHOOK_TOKEN']!}`, headers: { host: HOST, 'content-type': 'text/xml' }, payload: '<soapenv:Envelope><broken' }));

    // Connector errors: every call to every CRM fails with a 5xx, then a sync runs.
    for (const s of hub.sandboxes.values()) await configure(s, { faults: { errorRate: 1, dropRate: 0, latencyMs: 0 } });
    try {
      await keep(app.inject({ method: 'POST', url: '/admin/sync', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, payload: '{}' }));
    } finally {
      for (const s of hub.sandboxes.values()) await configure(s, { faults: { errorRate: 0, dropRate: 0, latencyMs: 0 } });
    }

    // Revoked credentials: a second hub on the same sandboxes with wrong (but secret) tokens.
    const revoked = await startHub({
      sandboxes: [...hub.sandboxes.values()],
      env: {
        HUBSPOT_ACCESS_TOKEN: 'pat-revoked-1f0e9d8c7b6a5f4e',
        PIPEDRIVE_API_TOKEN: 'revokedpipedrivetoken0123456789abcdef01',
        SALESFORCE_ACCESS_TOKEN: '00Drevoked!AQ4AQFakeSessionToken0123456789',
        SALESFORCE_CLIENT_SECRET: 'revoked-client-secret-77aa',
      },
      engine: { retry: { baseMs: 5, maxMs: 20, maxAttempts: 2 } },
    });
    let revokedSync: { body: string; statusCode: number };
    try {
      revokedSync = await keep(revoked.app.inject({ method: 'POST', url: '/admin/sync', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, payload: '{}' }));
      await keep(revoked.app.inject({ method: 'GET', url: '/admin/connections', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}` } }));
      await keep(revoked.app.inject({ method: 'GET', url: '/admin/sync-runs', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}` } }));
    } finally {
      await revoked.close();
    }
    await hub.engine.settled();
    await keep(app.inject({ method: 'GET', url: '/admin/sync-runs', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}` } }));
    await keep(app.inject({ method: 'GET', url: '/admin/dlq', headers: { host: HOST, authorization: `Bearer ${ADMIN_TOKEN}` } }));

    // The run did exercise failures (otherwise this test proves nothing).
    const failedObjects = (JSON.parse(revokedSync.body) as { objects?: { status: string }[] }).objects ?? [];
    expect(failedObjects.some((o) => o.status !== 'succeeded')).toBe(true);
    expect(hub.logs.length + revoked.logs.length).toBeGreaterThan(0);

    const secrets = [...new Set([...hub.secrets, ...revoked.secrets])];
    // Write key, admin token, HubSpot token + secret, Salesforce token + secret + webhook token, Pipedrive token + password, and the revoked ones.
    expect(secrets.length).toBeGreaterThanOrEqual(12);
    // Encoded forms a careless log line could carry (Basic headers, URL-encoded query values).
    const forms = secrets.flatMap((s) => [s, encodeURIComponent(s)]);
    forms.push(Buffer.from(`${env['PIPEDRIVE_WEBHOOK_USER']!}:${env['PIPEDRIVE_WEBHOOK_PASSWORD']!}`).toString('base64'));
    forms.push(Buffer.from(`${WRITE_KEY}:`).toString('base64'));
    const leaks: string[] = [];
    for (const [where, texts] of [['logs', [...hub.logs, ...revoked.logs]], ['bodies', bodies]] as const) {
      for (const text of texts) {
        for (const secret of forms) if (text.includes(secret)) leaks.push(`${where}: ${secret.slice(0, 4)}… in ${text.slice(0, 300)}`);
      }
    }
    expect(leaks).toEqual([]);
  });
});

/** Undoes SOQL string escaping of a quoted literal (`'…'`). */
function unquote(literal: string): string {
  expect(literal.startsWith("'") && literal.endsWith("'")).toBe(true);
  const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' };
  return literal.slice(1, -1).replace(/\\(.)/g, (_m, ch: string) => map[ch] ?? ch);
}

function conditions(where: WhereClause | undefined): Condition[] {
  if (!where) return [];
  const right = 'right' in where ? (where.right as WhereClause | undefined) : undefined;
  return [where.left as Condition, ...conditions(right)];
}

describe('SOQL escaping', () => {
  const HOSTILE = ["x' OR LastName != '", "\\' OR Id != null OR Name = '", "back\\slash", '100%_off', '%', '_', "O'Brien", "tab\tnew\nline", "' OR ''='", "\\\\'"];

  it('compares hostile values as literals: the query WHERE holds exactly the given values, and nothing else matches', async () => {
    const built = salesforceModule.fromEnv(hub.env);
    if (!(built instanceof SalesforceConnector)) throw new TypeError('the Salesforce module did not build a SalesforceConnector');
    const connector = built;
    const sandbox = hub.sandboxes.get('salesforce')!;
    await seed(sandbox, 'Contact', 20);
    // One record whose last name really is hostile: it must be found, and only it.
    const literalName = "O'Brien \\ 100%_x";
    const [written] = await connector.write('Contact', [{ ref: 'r1', upsertKey: { field: 'Crmhub_Id__c', value: 'rel-soql-1' }, fields: { LastName: literalName, Email: 'obrien@example.com' } }]);
    expect(written?.ok, JSON.stringify(written)).toBe(true);

    const queries: string[] = [];
    // Capture every SOQL string on its way to the wire (the prototype method, restored below).
    const proto = SalesforceClient.prototype;
    const original = Object.getOwnPropertyDescriptor(proto, 'query')!;
    const send = original.value as SalesforceClient['query'];
    Object.defineProperty(proto, 'query', {
      ...original,
      value: function (this: SalesforceClient, soql: string, options?: Parameters<SalesforceClient['query']>[1]) {
        queries.push(soql);
        return send.call(this, soql, options);
      },
    });
    try {
      const found = await connector.findByFields('Contact', { LastName: [literalName] });
      expect(found.map((r) => r.fields['LastName'])).toEqual([literalName]);

      for (const value of HOSTILE) {
        queries.length = 0;
        const rows = await connector.findByFields('Contact', { LastName: [value], Email: [value] });
        expect(rows, `value ${JSON.stringify(value)} matched ${rows.length} records`).toEqual([]);
        expect(queries.length).toBeGreaterThan(0);
        for (const soql of queries) {
          const parsed = parseQuery(soql);
          const conds = conditions(parsed.where);
          // Exactly the two IN conditions we asked for: no injected OR/AND survives parsing.
          expect(conds.map((c) => `${'field' in c ? String(c.field) : '?'} ${'operator' in c ? String(c.operator) : '?'}`).sort()).toEqual(['Email IN', 'LastName IN']);
          for (const c of conds) {
            const values = 'value' in c ? c.value : undefined;
            expect(Array.isArray(values) ? values.map(String).map(unquote) : null).toEqual([value]);
          }
        }
      }

      // Ids are refused or escaped, never spliced: a hostile id matches nothing.
      let rows: unknown[] = [];
      try {
        rows = await connector.readByIds('Contact', ["003' OR Id != '", '%', "x') OR (Id != '"]);
      } catch (error) {
        expect((error as { kind?: string }).kind).toMatch(/payload|config/);
      }
      expect(rows).toEqual([]);
    } finally {
      Object.defineProperty(proto, 'query', original);
      await connector.close();
    }
  });
});
