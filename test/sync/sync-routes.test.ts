import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerBodyParser } from '../../src/server/body-parser.ts';
import { toErrorReply } from '../../src/server/error-reply.ts';
import type { ServerContext } from '../../src/server/server-context.ts';
import { syncAdminRoutes } from '../../src/server/routes/sync-admin.ts';
import { webhookRoutes } from '../../src/server/routes/webhooks.ts';
import { engineFixture, type EngineFixture } from './sync-fixtures.ts';

const TOKEN = 'admin-token-for-tests';
let fx: EngineFixture | null = null;
let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  await fx?.close();
  app = null;
  fx = null;
});

/** A bare Fastify app with crmhub's raw-body parser and admin guard, plus the sync plugins. */
async function buildTestApp(f: EngineFixture): Promise<FastifyInstance> {
  const a = Fastify();
  const context = {
    store: f.store,
    requireAdmin: async (request, reply) => {
      if (request.headers.authorization !== `Bearer ${TOKEN}`) await reply.code(401).send({ success: false, code: 'UNAUTHORIZED', reason: 'admin token required' });
    },
  } as Partial<ServerContext> as ServerContext;
  a.decorate('crmhub', context);
  registerBodyParser(a);
  a.setErrorHandler((error, _request, reply) => {
    const mapped = toErrorReply(error);
    return reply.code(mapped.status).send(mapped.body);
  });
  await a.register(webhookRoutes(f.engine));
  await a.register(syncAdminRoutes(f.engine));
  return a;
}

describe('webhook and admin routes', () => {
  it('accepts a signed webhook fast, dedupes a replay, rejects a tampered one with 401', async () => {
    fx = await engineFixture(['alpha', 'beta']);
    app = await buildTestApp(fx);
    const alpha = fx.crms.get('alpha')!;
    alpha.repEdit('contacts', undefined, { email: 'w@x.io', firstname: 'W' });
    const request = alpha.buildWebhook();
    const send = (body: Buffer, signature: string) =>
      app!.inject({ method: 'POST', url: '/webhooks/alpha', headers: { 'content-type': 'application/json', 'x-memory-signature': signature }, payload: body });
    const signature = String(request.headers['x-memory-signature']);
    const first = await send(request.rawBody, signature);
    expect(first.statusCode).toBe(200);
    expect(first.body).toBe('{}');
    await fx.engine.settled();
    expect(await fx.store.pendingOutboxCount('beta')).toBe(1);
    const replay = await send(request.rawBody, signature);
    expect(replay.statusCode).toBe(200);
    await fx.engine.settled();
    expect(alpha.calls.readByIds).toBe(1);
    const tampered = Buffer.from(request.rawBody.toString().replace('"other"', '"self" '));
    expect((await send(tampered, signature)).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/webhooks/nope', payload: '{}', headers: { 'content-type': 'application/json' } })).statusCode).toBe(404);
  });

  it('guards admin routes and runs, lists and replays', async () => {
    fx = await engineFixture(['alpha']);
    app = await buildTestApp(fx);
    const alpha = fx.crms.get('alpha')!;
    alpha.repEdit('contacts', undefined, { email: 'a1@x.io', firstname: 'invalid-later' });
    expect((await app.inject({ method: 'GET', url: '/admin/sync-runs' })).statusCode).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const run = await app.inject({ method: 'POST', url: '/admin/sync', headers: { ...auth, 'content-type': 'application/json' }, payload: { direction: 'pull' } });
    expect(run.statusCode).toBe(200);
    expect(run.json().objects[0]).toMatchObject({ connector: 'alpha', created: 1 });
    const runs = await app.inject({ method: 'GET', url: '/admin/sync-runs?limit=5', headers: auth });
    expect(runs.json().runs).toHaveLength(1);
    expect(runs.json().runs[0].counts.created).toBe(1);
    const bad = await app.inject({ method: 'POST', url: '/admin/sync', headers: { ...auth, 'content-type': 'application/json' }, payload: { direction: 'sideways' } });
    expect(bad.statusCode).toBe(400);

    // A profile-side value the CRM rejects dead-letters; the admin API lists and replays it.
    const [ident] = await fx.store.read().findIdentifiers([{ type: 'email', value: 'a1@x.io' }]);
    await fx.store.transaction(async (tx) => {
      await tx.writeTraits(ident!.profileId, [{ key: 'plan', value: 'invalid-plan', source: 'event', changedAt: new Date().toISOString() }]);
      await fx!.engine.onProfilesChanged(tx, [ident!.profileId]);
    });
    await fx.engine.push('alpha');
    const dlq = await app.inject({ method: 'GET', url: '/admin/dlq', headers: auth });
    const [dead] = dlq.json().deadLetters;
    expect(dead.reason).toBe('payload:MEMORY_INVALID_VALUE');
    const replay = await app.inject({ method: 'POST', url: `/admin/dlq/${dead.id}/replay`, headers: auth });
    expect(replay.json()).toEqual({ replayed: 1 });
    expect((await app.inject({ method: 'POST', url: `/admin/dlq/${dead.id}/replay`, headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/admin/conflicts', headers: auth })).json().conflicts).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/admin/connections', headers: auth })).json().connections.alpha.status).toBe('ok');
  });
});
