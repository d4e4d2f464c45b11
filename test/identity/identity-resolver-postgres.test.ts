/**
 * The resolver under real concurrency on Postgres: transactions racing to create the same
 * identity must end on one profile (the loser's unique violation re-runs its transaction).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityResolver } from '../../src/identity/identity-resolver.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { PostgresStore } from '../../src/store/postgres-store.ts';

const url = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `crmhub_id${process.pid}_${randomBytes(3).toString('hex')}`;
let store: PostgresStore;
const resolver = new IdentityResolver();

beforeAll(async () => {
  store = (await openStore(url, { schema })) as PostgresStore;
});
afterAll(async () => {
  await store.dropSchema();
  await store.close();
});

describe('IdentityResolver on Postgres, concurrent', () => {
  it('racing first sightings of one email end on one profile', async () => {
    const at = new Date().toISOString();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.transaction(async (tx) => {
          const res = await resolver.resolve(tx, { kind: 'person', identifiers: [{ type: 'email', value: 'race@example.com', source: 'event' }, { type: 'anonymous_id', value: `race-${i}`, source: 'event' }], at, trigger: `race-${i}` });
          await tx.insertEvent({ messageId: `race-${i}`, profileId: res.profileId, type: 'identify', name: null, properties: {}, timestamp: at, receivedAt: at });
          return res.profileId;
        }),
      ),
    );
    const live = await Promise.all(results.map(async (id) => (await store.read().resolveProfile(id))?.id));
    expect(new Set(live).size).toBe(1);
    const profile = live[0]!;
    const ids = await store.read().listIdentifiers(profile);
    expect(ids.filter((i) => i.type === 'anonymous_id')).toHaveLength(8);
    expect(await store.read().listEvents(profile, 20)).toHaveLength(8);
  });

  it('anonymous → known merge works the same as on SQLite', async () => {
    const at = new Date().toISOString();
    const anon = await store.transaction((tx) => resolver.resolve(tx, { kind: 'person', identifiers: [{ type: 'anonymous_id', value: 'pg-anon', source: 'event' }], at, trigger: 'a' }));
    const known = await store.transaction((tx) => resolver.resolve(tx, { kind: 'person', identifiers: [{ type: 'user_id', value: 'pg-user', source: 'event' }], at, trigger: 'b' }));
    const link = await store.transaction((tx) => resolver.resolve(tx, { kind: 'person', identifiers: [{ type: 'user_id', value: 'pg-user', source: 'event' }, { type: 'anonymous_id', value: 'pg-anon', source: 'event' }], at, trigger: 'c' }));
    expect(link).toMatchObject({ profileId: known.profileId, mergedFrom: [anon.profileId], created: false });
  });
});
