import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { storeConformance } from './conformance.ts';

const url = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const run = `crmhub_t${process.pid}_${randomBytes(3).toString('hex')}`;
let n = 0;

async function drop(store: ProfileStore): Promise<void> {
  if (!(store instanceof PostgresStore)) return;
  const admin = new PostgresStore({ connectionString: url, schema: store.schema });
  await admin.dropSchema();
  await admin.close();
}

storeConformance('postgres', {
  async open() {
    n += 1;
    return openStore(url, { schema: `${run}_${n}` });
  },
  dispose: drop,
  reopen: (store) => openStore(url, { schema: (store as PostgresStore).schema }),
});

describe('openStore (postgres)', () => {
  it('takes the schema from ?schema= and migrates concurrently opened stores once', async () => {
    const schema = `${run}_url`;
    const sep = url.includes('?') ? '&' : '?';
    const [a, b] = await Promise.all([openStore(`${url}${sep}schema=${schema}`), openStore(url, { schema })]);
    try {
      expect((a as PostgresStore).schema).toBe(schema);
      const id = await a.transaction(async (tx) => (await tx.createProfile('person', '2026-01-01T00:00:00Z')).id);
      expect((await b.read().getProfile(id))?.id).toBe(id);
      expect(await b.migrate()).toEqual([]);
    } finally {
      await b.close();
      await a.close();
      await drop(a);
    }
  });

  it('rejects an unsafe schema name', async () => {
    await expect(openStore(url, { schema: 'x; drop table y' })).rejects.toMatchObject({ kind: 'config' });
  });
});
