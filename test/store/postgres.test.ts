import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { storeConformance } from './conformance.ts';

const url = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
/** One schema for this file's run (migrated once); emptied before each test; dropped at the end. */
const schema = `crmhub_t${process.pid}_${randomBytes(3).toString('hex')}`;

async function drop(name: string): Promise<void> {
  const admin = new PostgresStore({ connectionString: url, schema: name });
  await admin.dropSchema();
  await admin.close();
}

afterAll(() => drop(schema));

async function truncateAll(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const res = await client.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'`,
      [schema],
    );
    const tables = res.rows.map((r) => `"${schema}"."${r.tablename}"`);
    if (tables.length > 0) await client.query(`TRUNCATE ${tables.join(', ')}`);
  } finally {
    await client.end();
  }
}

storeConformance('postgres', {
  async open() {
    const store = await openStore(url, { schema });
    await truncateAll();
    return store;
  },
  isolatedReads: true,
  reopen: (store: ProfileStore) => openStore(url, { schema: (store as PostgresStore).schema }),
});

describe('openStore (postgres)', () => {
  it('takes the schema from ?schema= and migrates concurrently opened stores once', async () => {
    const own = `${schema}_url`;
    const sep = url.includes('?') ? '&' : '?';
    const [a, b] = await Promise.all([openStore(`${url}${sep}schema=${own}`), openStore(url, { schema: own })]);
    try {
      expect((a as PostgresStore).schema).toBe(own);
      const id = await a.transaction(async (tx) => (await tx.createProfile('person', '2026-01-01T00:00:00Z')).id);
      expect((await b.read().getProfile(id))?.id).toBe(id);
      expect(await b.migrate()).toEqual([]);
    } finally {
      await b.close();
      await a.close();
      await drop(own);
    }
  });

  it('rejects an unsafe schema name', async () => {
    await expect(openStore(url, { schema: 'x; drop table y' })).rejects.toMatchObject({ kind: 'config' });
  });
});
