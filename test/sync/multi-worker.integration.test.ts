/**
 * Issue 5 "Done when": two engine instances (separate pg pools, separate Redis clients) on one
 * Postgres never send the same outbox row twice, and together never exceed the declared rate.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import type { Connector, WriteItem } from '../../src/connector-kit/connector.ts';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { SyncEngine } from '../../src/sync/sync-engine.ts';
import { contactsMapping, staticMappings } from './sync-fixtures.ts';

const pgUrl = process.env.CRMHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.CRMHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const schema = `sync_it_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

function maxInWindow(stamps: number[], windowMs: number): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let best = 0;
  let head = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[head] ?? 0) <= (sorted[i] ?? 0) - windowMs) head++;
    best = Math.max(best, i - head + 1);
  }
  return best;
}

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('two workers on one Postgres with a shared Redis budget', () => {
  it('send every outbox row once and stay within the declared rate', async () => {
    const limits = { requestsPerWindow: 10, windowMs: 500, maxConcurrent: 4 };
    // One remote CRM that both workers write to; it answers 429 beyond the declared window.
    const crm = new MemoryConnector({ slug: 'alpha', maxBatchSize: 5, limits, enforceLimits: true });
    const stamps: number[] = [];
    const refsSeen = new Map<string, number>();
    const write = crm.write.bind(crm);
    crm.write = async (object: string, items: WriteItem[]) => {
      stamps.push(Date.now());
      const outcomes = await write(object, items);
      // Count only calls the CRM accepted (a 429 rejects the whole call before any write).
      for (const i of items) refsSeen.set(i.ref, (refsSeen.get(i.ref) ?? 0) + 1);
      return outcomes;
    };
    const stores: ProfileStore[] = [];
    const engines: SyncEngine[] = [];
    const namespace = `crmhub-it-${randomUUID()}`;
    for (let i = 0; i < 2; i++) {
      const store = await openStore(pgUrl, { schema, maxConnections: 4 });
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
      const engine = new SyncEngine({
        store,
        connectors: new Map<string, Connector>([['alpha', crm]]),
        mappings: staticMappings([contactsMapping('alpha')]),
        redis,
        redisNamespace: namespace,
        owner: `worker-${i}`,
      });
      stores.push(store);
      engines.push(engine);
      cleanup.push(async () => {
        await engine.close();
        await store.close();
        redis.disconnect();
      });
    }
    const total = 200;
    await stores[0]!.transaction(async (tx) => {
      const ids: ProfileId[] = [];
      for (let i = 0; i < total; i++) {
        const at = new Date().toISOString();
        const p = await tx.createProfile('person', at);
        await tx.writeTraits(p.id, [
          { key: 'email', value: `mw${i}@x.io`, source: 'event', changedAt: at },
          { key: 'first_name', value: `N${i}`, source: 'event', changedAt: at },
        ]);
        ids.push(p.id);
      }
      await engines[0]!.onProfilesChanged(tx, ids);
    });
    const started = Date.now();
    const [a, b] = await Promise.all(engines.map((e) => e.push('alpha', { limit: 20 })));
    const elapsed = Date.now() - started;

    expect({ rateLimited: crm.calls.rateLimited, calls: stamps.length }).toEqual({ rateLimited: 0, calls: 40 });
    // Both workers did work, and no row was sent twice.
    expect(a!.created).toBeGreaterThan(0);
    expect(b!.created).toBeGreaterThan(0);
    expect(a!.created + b!.created).toBe(total);
    expect([...refsSeen.values()].every((n) => n === 1)).toBe(true);
    expect(refsSeen.size).toBe(total);
    const records = crm.records('contacts');
    expect(records).toHaveLength(total);
    expect(new Set(records.map((r) => r.fields.crmhub_id)).size).toBe(total);
    expect(await stores[1]!.pendingOutboxCount()).toBe(0);
    // Together within the rate: the CRM never answered 429, no window held more than the limit.
    expect(crm.calls.rateLimited).toBe(0);
    expect(maxInWindow(stamps, limits.windowMs - 10)).toBeLessThanOrEqual(limits.requestsPerWindow);
    // 40 write calls at 10 per 500 ms: the first 10 are free, the other 30 take 3 windows at least.
    expect(elapsed).toBeGreaterThanOrEqual(3 * limits.windowMs * 0.9);
  });
});
