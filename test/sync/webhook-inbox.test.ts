/**
 * The durable webhook inbox (issue 5): a change acknowledged to the CRM survives the process dying
 * before it was applied, failed applies are retried and finally given up, duplicates stay deduped,
 * and processed receipts are pruned after the retention. On SQLite (a file, reopened as a new
 * process would) and Postgres (CRMHUB_TEST_POSTGRES_URL).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector-kit/connector.ts';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { SyncEngine, type SyncEngineOptions } from '../../src/sync/sync-engine.ts';
import { contactsMapping, staticMappings } from './sync-fixtures.ts';

const pgUrl = process.env.CRMHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schemas: string[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await client.end();
});

/** Everything opened by a test, closed after it (engines first, then stores). */
const opened: { engines: SyncEngine[]; stores: ProfileStore[] } = { engines: [], stores: [] };
afterEach(async () => {
  for (const e of opened.engines.splice(0)) await e.close();
  for (const s of opened.stores.splice(0)) await s.close();
});

/** Closes a store before the test ends (a process going away). */
async function closeStore(store: ProfileStore): Promise<void> {
  opened.stores = opened.stores.filter((s) => s !== store);
  await store.close();
}

describe.each(['sqlite', 'postgres'] as const)('webhook inbox on %s', (dialect) => {
  /** A database two "processes" can open one after the other. */
  const database = (): (() => Promise<ProfileStore>) => {
    if (dialect === 'sqlite') {
      const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-inbox-'));
      dirs.push(dir);
      return async () => {
        const s = await openStore(`sqlite:${path.join(dir, 'hub.db')}`);
        opened.stores.push(s);
        return s;
      };
    }
    const schema = `inbox_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    schemas.push(schema);
    return async () => {
      const s = await openStore(pgUrl, { schema });
      opened.stores.push(s);
      return s;
    };
  };

  /** The two CRMs outlive the hub's processes. */
  const crms = (): { alpha: MemoryConnector; beta: MemoryConnector } => ({
    alpha: new MemoryConnector({ slug: 'alpha' }),
    beta: new MemoryConnector({ slug: 'beta' }),
  });

  const engineOn = (
    store: ProfileStore,
    c: { alpha: MemoryConnector; beta: MemoryConnector },
    options: Partial<SyncEngineOptions> = {},
  ): SyncEngine => {
    const engine = new SyncEngine({
      store,
      connectors: new Map<string, Connector>([
        ['alpha', c.alpha],
        ['beta', c.beta],
      ]),
      mappings: staticMappings([contactsMapping('alpha'), contactsMapping('beta')]),
      retry: { baseMs: 10, maxMs: 100, maxAttempts: 3 },
      ...options,
    });
    opened.engines.push(engine);
    return engine;
  };

  const profileEmail = async (store: ProfileStore, remoteId: string): Promise<unknown> => {
    const [ident] = await store.read().findIdentifiers([{ type: 'alpha.contacts', value: remoteId }]);
    if (!ident) return undefined;
    return (await store.read().getTraits(ident.profileId)).find((t) => t.key === 'email')?.value;
  };

  it('a change acknowledged but not applied before the process died is applied by the next one, once', async () => {
    const open = database();
    const c = crms();
    const id = c.alpha.repEdit('contacts', undefined, { email: 'crash@x.io', firstname: 'Cee' });
    const request = c.alpha.buildWebhook();

    // Process 1 answers 200, then "dies" before applying (the step hook stops it there).
    const store1 = await open();
    const dying = engineOn(store1, c);
    const reply = await dying.receiveWebhook('alpha', request, {
      step: () => {
        throw new Error('simulated crash after the 2xx');
      },
    });
    expect(reply).toMatchObject({ status: 200, accepted: 1, duplicates: 0 });
    await dying.settled();
    expect(await profileEmail(store1, id)).toBeUndefined();
    expect(await store1.pendingWebhookCount('alpha')).toBe(1);
    await dying.close();
    await closeStore(store1);

    // Process 2 starts while the dead one's lease (60 s) still holds: a live process could be
    // applying it, so the receipt is left alone...
    const store2 = await open();
    const early = engineOn(store2, c);
    expect(await early.processPendingWebhooks()).toBe(0);
    await early.close();
    // ...and taken over once the lease ran out.
    const later = engineOn(store2, c, { now: () => Date.now() + 61_000 });
    expect(await later.processPendingWebhooks()).toBe(1);
    expect(await profileEmail(store2, id)).toBe('crash@x.io');
    expect(await store2.pendingWebhookCount()).toBe(0);
    expect(await store2.pendingOutboxCount('beta')).toBe(1);

    // The CRM resending the same delivery is still a duplicate, and a second sweep finds nothing.
    const again = await later.receiveWebhook('alpha', request);
    expect(again).toMatchObject({ status: 200, accepted: 0, duplicates: 1 });
    expect(await later.processPendingWebhooks()).toBe(0);
    expect(c.alpha.calls.readByIds).toBe(1);
  });

  it('a failed apply is retried when its time comes, and given up after the retry budget', async () => {
    const open = database();
    const c = crms();
    const store = await open();
    let offset = 0;
    // Backoff of 10–20 s: a retry is due only when the test moves the clock.
    const engine = engineOn(store, c, {
      now: () => Date.now() + offset,
      retry: { baseMs: 10_000, maxMs: 20_000, maxAttempts: 3 },
    });

    // The CRM is down when the webhook comes: the receipt stays, with the reason.
    c.alpha.faults = { transientRate: 1 };
    const id = c.alpha.repEdit('contacts', undefined, { email: 'retry@x.io' });
    await engine.receiveWebhook('alpha', c.alpha.buildWebhook());
    await engine.settled();
    expect(await store.pendingWebhookCount('alpha')).toBe(1);
    expect(await profileEmail(store, id)).toBeUndefined();
    // Not before its retry time...
    expect(await engine.processPendingWebhooks()).toBe(0);
    // ...then applied once the CRM answers again.
    c.alpha.faults = {};
    offset += 60_000;
    expect(await engine.processPendingWebhooks()).toBe(1);
    expect(await profileEmail(store, id)).toBe('retry@x.io');
    expect(await store.pendingWebhookCount()).toBe(0);

    // A change that keeps failing is given up after `retry.maxAttempts` (3) counted attempts; the
    // next pull still finds it.
    c.alpha.faults = { transientRate: 1 };
    const other = c.alpha.repEdit('contacts', undefined, { email: 'never@x.io' });
    await engine.receiveWebhook('alpha', c.alpha.buildWebhook());
    await engine.settled();
    for (let round = 0; round < 2; round++) {
      offset += 60_000;
      expect(await engine.processPendingWebhooks()).toBe(1);
    }
    expect(await store.pendingWebhookCount()).toBe(0);
    offset += 60_000;
    expect(await engine.processPendingWebhooks()).toBe(0);
    c.alpha.faults = {};
    await engine.runOnce({ connector: 'alpha', direction: 'pull' });
    expect(await profileEmail(store, other)).toBe('never@x.io');
  });

  it('runs and the inbox sweep apply receipts left behind; processed receipts are pruned after the retention', async () => {
    const open = database();
    const c = crms();
    const store = await open();
    const first = c.alpha.repEdit('contacts', undefined, { email: 'one@x.io' });
    const firstRequest = c.alpha.buildWebhook();
    const second = c.alpha.repEdit('contacts', undefined, { email: 'two@x.io' });
    const secondRequest = c.alpha.buildWebhook();
    const crash = {
      step: (): never => {
        throw new Error('simulated crash');
      },
    };
    // A short lease: the receipts are free to take over right after the "crash".
    const dying = engineOn(store, c, { leaseMs: 1 });
    await dying.receiveWebhook('alpha', firstRequest, crash);
    await dying.receiveWebhook('alpha', secondRequest, crash);
    await dying.settled();
    await dying.close();
    await new Promise((resolve) => setTimeout(resolve, 5));

    // A one-off run (`crmhub sync --direction push` would not) applies them before its pulls.
    const engine = engineOn(store, c, { webhookRetentionMs: 60_000 });
    await engine.runOnce({ connector: 'alpha', direction: 'push' });
    expect(await store.pendingWebhookCount()).toBe(2);
    await engine.runOnce({ connector: 'beta', direction: 'pull' }); // another connector's run leaves them
    expect(await store.pendingWebhookCount()).toBe(2);
    const readsBefore = c.alpha.calls.readByIds ?? 0;
    await engine.runOnce({ connector: 'alpha', direction: 'pull' });
    expect(await store.pendingWebhookCount()).toBe(0);
    expect(c.alpha.calls.readByIds).toBe(readsBefore + 1); // both ids in one read
    expect(await profileEmail(store, first)).toBe('one@x.io');
    expect(await profileEmail(store, second)).toBe('two@x.io');

    // The serve-time sweep: applies what it finds at start.
    const third = c.alpha.repEdit('contacts', undefined, { email: 'three@x.io' });
    const dying2 = engineOn(store, c, { leaseMs: 1 });
    await dying2.receiveWebhook('alpha', c.alpha.buildWebhook(), crash);
    await dying2.settled();
    await dying2.close();
    await new Promise((resolve) => setTimeout(resolve, 5));
    engine.startWebhookInbox({ pollMs: 20 });
    for (let i = 0; i < 200 && (await store.pendingWebhookCount()) > 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await profileEmail(store, third)).toBe('three@x.io');

    // Retention 60 s: receipts processed before then are pruned; until then a resend is a duplicate.
    expect(await engine.pruneWebhookReceipts()).toBe(0);
    expect(await engine.receiveWebhook('alpha', firstRequest)).toMatchObject({ accepted: 0, duplicates: 1 });
    const later = engineOn(store, c, { webhookRetentionMs: 60_000, now: () => Date.now() + 120_000 });
    expect(await later.pruneWebhookReceipts()).toBe(3);
    expect(await later.receiveWebhook('alpha', firstRequest)).toMatchObject({ accepted: 1, duplicates: 0 });
    await later.settled();
    expect(await store.pendingWebhookCount()).toBe(0);
  });
});
