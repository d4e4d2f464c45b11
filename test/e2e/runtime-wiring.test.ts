/**
 * The composition root: `openRuntime` from settings alone (what `crmhub sync` and `crmhub dlq`
 * use), `openMappingsRuntime` (`mappings validate --remote` / `preview`), and `crmhub serve`'s hook:
 * admin routes, readiness with the mapping watcher (a broken edit is reported, the last good
 * version stays live, a fix is picked up), and the registered default hook.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';
import type { Connector } from '../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { startSandboxes } from '../../src/cli/commands/sandbox.ts';
import { serveHooks, startServer, type RunningServer } from '../../src/cli/commands/serve.ts';
import { ReadRetryConnector } from '../../src/cli/read-retry.ts';
import { openMappingsRuntime, openRuntime } from '../../src/cli/runtime.ts';
import { createSyncServeHook, syncServeHook } from '../../src/cli/serve-wiring.ts';
import { waitFor } from './e2e-harness.ts';

describe('composition root', () => {
  let dir: string;
  let sandbox: RunningSandbox;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'crmhub-runtime-'));
    [sandbox] = (await startSandboxes({ only: ['hubspot'] })) as [RunningSandbox];
    await fetch(`${sandbox.baseUrl}/_sandbox/seed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ object: 'contacts', count: 5 }) });
    await cp(path.resolve('mappings'), path.join(dir, 'mappings'), { recursive: true });
    env = { ...sandbox.env, CRMHUB_DATABASE_URL: `sqlite:${path.join(dir, 'hub.db')}`, CRMHUB_MAPPINGS_DIR: path.join(dir, 'mappings'), CRMHUB_LOG_LEVEL: 'silent', CRMHUB_ADMIN_TOKEN: 'admin-token', CRMHUB_PORT: '0' };
  });

  afterAll(async () => {
    await sandbox?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('opens from settings alone: only connectors with credentials, a sync run recorded with its mapping version', async () => {
    const runtime = await openRuntime({ env, logger: pino({ level: 'silent' }) });
    try {
      expect([...runtime.connectors.keys()]).toEqual(['hubspot']);
      const summary = await runtime.engine.runOnce({ connector: 'hubspot', object: 'contacts', direction: 'pull', trigger: 'test' });
      expect(summary.objects).toHaveLength(1);
      expect(summary.objects[0]).toMatchObject({ status: 'succeeded', created: 5 });
      const runs = await runtime.store.listSyncRuns(5);
      expect(runs[0]?.mappingVersion).toBe(runtime.mappings.get('hubspot', 'contacts')?.hash);
    } finally {
      await runtime.close();
    }
  });

  it('gives mappings preview what it needs: live schema, profile, linked record and shadow', async () => {
    const runtime = await openMappingsRuntime({ env, logger: pino({ level: 'silent' }) });
    try {
      const schema = await runtime.describe('hubspot', 'contacts');
      expect(schema.fields.some((f) => f.name === 'crmhub_plan')).toBe(true);
      const profile = await runtime.loadProfile({ type: 'hubspot.contact', value: '1001' });
      expect(profile).not.toBeNull();
      const record = await runtime.readRemote('hubspot', 'contacts', profile!);
      expect(record?.id).toBe('1001');
      const shadow = await runtime.getShadow('hubspot', 'contacts', '1001');
      expect(shadow?.['email']).toBe(record?.fields['email']);
      await expect(runtime.describe('salesforce', 'Contact')).rejects.toMatchObject({ kind: 'config' });
    } finally {
      await runtime.close();
    }
  });

  it('registers the sync hook for crmhub serve', () => {
    expect(serveHooks).toContain(syncServeHook);
    expect(syncServeHook.plugins).toHaveLength(2);
  });

  describe('serve hook', () => {
    let server: RunningServer;
    beforeAll(async () => {
      const config = loadConfig(env, null);
      server = await startServer(config, { logger: pino({ level: 'silent' }), hooks: [createSyncServeHook({ schedule: [], workerPollMs: 25 })] });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('guards the admin routes and runs a sync through them', async () => {
      expect((await fetch(`${server.url}/admin/sync-runs`)).status).toBe(401);
      const response = await fetch(`${server.url}/admin/sync`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-token', 'content-type': 'application/json' },
        body: JSON.stringify({ connector: 'hubspot', object: 'contacts', direction: 'pull' }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { objects: { status: string }[] };
      expect(body.objects.map((o) => o.status)).toEqual(['succeeded']);
      const states = (await (await fetch(`${server.url}/admin/connections`, { headers: { authorization: 'Bearer admin-token' } })).json()) as { connections: Record<string, { status: string }> };
      expect(states.connections['hubspot']?.status).toBe('ok');
      // A connector without credentials has no webhook endpoint.
      expect((await fetch(`${server.url}/webhooks/pipedrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(404);
    });

    it('reports a broken mapping edit on /readyz, keeps the last good one, and picks up the fix', async () => {
      const file = path.join(dir, 'mappings', 'hubspot', 'contacts.yaml');
      const good = await readFile(file, 'utf8');
      const ready = async (): Promise<{ status: number; body: { checks: { name: string; ok: boolean; detail?: string }[] } }> => {
        const r = await fetch(`${server.url}/readyz`);
        return { status: r.status, body: (await r.json()) as { checks: { name: string; ok: boolean; detail?: string }[] } };
      };
      expect((await ready()).status).toBe(200);
      await writeFile(file, good.replace('remote: firstname', 'remote: firstnaem'));
      const broken = await waitFor(async () => {
        const r = await ready();
        return r.status === 503 ? r : null;
      }, 10_000, 50);
      expect(broken.body.checks.find((c) => c.name === 'mappings')?.detail).toMatch(/firstnaem|contacts\.yaml/);
      // The last good version still syncs.
      const run = await fetch(`${server.url}/admin/sync`, { method: 'POST', headers: { authorization: 'Bearer admin-token', 'content-type': 'application/json' }, body: JSON.stringify({ connector: 'hubspot', object: 'contacts', direction: 'pull' }) });
      expect(((await run.json()) as { objects: { status: string }[] }).objects.map((o) => o.status)).toEqual(['succeeded']);
      await writeFile(file, good);
      await waitFor(async () => (await ready()).status === 200, 10_000, 50);
    });
  });
});

describe('ReadRetryConnector', () => {
  const declaration = { slug: 'fake', displayName: 'Fake', objects: [], limits: { requestsPerWindow: 1, windowMs: 1, maxConcurrent: 1 }, capabilities: { batchUpsert: false, bulk: false, webhooks: false, deletes: false, fieldChangeTimes: false } };
  const limited = (): CrmhubError => new CrmhubError('rate_limited', '429', { code: 'LIMIT', retryAfterMs: 5 });

  it('retries rate-limited reads after the retry-after and passes other errors and writes through', async () => {
    let reads = 0;
    let writes = 0;
    const inner = {
      declaration,
      readChanges: () => Promise.reject(new CrmhubError('auth', 'no', { code: 'AUTH' })),
      readByIds: () => (++reads <= 2 ? Promise.reject(limited()) : Promise.resolve([])),
      write: () => {
        writes++;
        return Promise.reject(limited());
      },
      handleWebhook: () => Promise.resolve({ changes: [] }),
      describe: (object: string) => Promise.resolve({ object, fields: [] }),
    } satisfies Connector;
    const waits: number[] = [];
    const c = new ReadRetryConnector(inner, { sleep: (ms) => (waits.push(ms), Promise.resolve()) });
    await expect(c.readByIds('x', ['1'])).resolves.toEqual([]);
    expect(c.retries).toBe(2);
    expect(waits).toEqual([50, 50]);
    await expect(c.readChanges('x', null)).rejects.toMatchObject({ kind: 'auth' });
    await expect(c.write('x', [])).rejects.toMatchObject({ kind: 'rate_limited' });
    expect(writes).toBe(1);
  });

  it('gives up after maxAttempts', async () => {
    const inner = { declaration, readChanges: () => Promise.reject(limited()), readByIds: () => Promise.reject(limited()), write: () => Promise.resolve([]), handleWebhook: () => Promise.resolve({ changes: [] }), describe: (object: string) => Promise.resolve({ object, fields: [] }) } satisfies Connector;
    const c = new ReadRetryConnector(inner, { maxAttempts: 3, sleep: () => Promise.resolve() });
    await expect(c.readChanges('x', null)).rejects.toMatchObject({ kind: 'rate_limited' });
    expect(c.retries).toBe(2);
  });
});
