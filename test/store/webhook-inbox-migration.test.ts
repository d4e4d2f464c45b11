/**
 * Migration 0002 (the durable webhook inbox) on a database created by 0001 with receipts in it:
 * old receipts count as processed (their changes were applied in memory at the time) and still
 * dedupe. SQLite and Postgres (CRMHUB_TEST_POSTGRES_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migration0001 } from '../../src/store/migrations/0001-initial.ts';
import { openStore } from '../../src/store/open-store.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { SqlProfileStore } from '../../src/store/sql-profile-store.ts';

const pgUrl = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describe.each(['sqlite', 'postgres'] as const)('migration 0002 on %s', (dialect) => {
  it('marks receipts stored before it processed; they still dedupe', async () => {
    let url: string;
    if (dialect === 'sqlite') {
      const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-m2-'));
      cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
      url = `sqlite:${path.join(dir, 'hub.db')}`;
    } else {
      const schema = `crmhub_m2_${randomBytes(4).toString('hex')}`;
      url = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=${schema}`;
      cleanups.push(async () => {
        const admin = new PostgresStore({ connectionString: pgUrl, schema });
        await admin.dropSchema();
        await admin.close();
      });
    }
    const store = await openStore(url, { migrate: false });
    try {
      if (!(store instanceof SqlProfileStore)) throw new TypeError('expected an SQL store');
      // The database as version 1 left it, with one receipt.
      await store.execRaw(
        'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
      );
      for (const statement of dialect === 'sqlite' ? migration0001.sqlite : migration0001.postgres)
        await store.execRaw(statement);
      await store.execRaw('INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, ?, ?)', [
        migration0001.name,
        '2026-01-01T00:00:00.000Z',
      ]);
      await store.execRaw(
        'INSERT INTO webhook_receipts (source, delivery_id, received_at) VALUES (?, ?, ?)',
        ['hubspot', 'old-1', '2026-01-01T00:00:00.000Z'],
      );

      // 0002 and every later migration run; 0002 is the one this test is about.
      expect((await store.migrate())[0]).toBe(2);
      expect(await store.pendingWebhookCount()).toBe(0);
      expect(
        await store.claimWebhookReceipts({
          owner: 'w',
          limit: 10,
          leaseMs: 1_000,
          now: '2026-06-01T00:00:00.000Z',
        }),
      ).toEqual([]);
      expect(
        await store.transaction((tx) =>
          tx.recordWebhookReceipt('hubspot', 'old-1', '2026-01-02T00:00:00.000Z'),
        ),
      ).toBe(false);
      // Processed at its receipt time: pruned with the rest once the retention has passed.
      expect(await store.pruneWebhookReceipts('2026-01-01T00:00:01.000Z')).toBe(1);
    } finally {
      await store.close();
    }
  });
});
