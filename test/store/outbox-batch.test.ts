/**
 * The bulk store operations the outbox worker settles and diffs a batch with (issue 5): shadows of
 * many profiles or remote ids in a few statements, and completions, retries and dead letters of
 * many claimed rows in one transaction — on SQLite (memory and file) and Postgres.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore, RemoteRecordRow } from '../../src/store/port.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';

const pgUrl = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-outbox-batch-'));
const schemas: string[] = [];
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const schema of schemas) {
    const admin = new PostgresStore({ connectionString: pgUrl, schema });
    await admin.dropSchema();
    await admin.close();
  }
});

const T0 = '2026-01-01T00:00:00.000Z';
const t = (s: number): string => new Date(Date.parse(T0) + s * 1000).toISOString();

const factories: Record<string, () => Promise<ProfileStore>> = {
  'sqlite memory': () => openStore('sqlite::memory:'),
  'sqlite file': () => openStore(`sqlite:${path.join(dir, `${randomBytes(4).toString('hex')}.db`)}`),
  postgres: () => {
    const schema = `obx_batch_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    return openStore(pgUrl, { schema });
  },
};

describe.each(Object.keys(factories))('bulk outbox and shadow operations on %s', (name) => {
  let store: ProfileStore;
  afterEach(async () => {
    await store.close();
  });

  const shadow = (profileId: ProfileId, remoteId: string, deleted = false): RemoteRecordRow => ({
    connector: 'hubspot',
    object: 'contacts',
    remoteId,
    profileId,
    shadow: { email: `${remoteId}@x.io` },
    remoteChangedAt: t(1),
    fieldChangedAt: {},
    syncedAt: t(2),
    deleted,
  });

  it('reads the shadows of many profiles and many remote ids, across statement chunks', async () => {
    store = await factories[name]!();
    // 70 profiles (more than one 64-id chunk), two shadows for the first, none for the last.
    const ids = await store.transaction(async (tx) => {
      const out: ProfileId[] = [];
      for (let i = 0; i < 70; i++) out.push((await tx.createProfile('person', T0)).id);
      for (let i = 0; i < 69; i++)
        await tx.upsertRemoteRecord(shadow(out[i]!, `r${String(i).padStart(3, '0')}`));
      await tx.upsertRemoteRecord(shadow(out[0]!, 'a-first', true));
      await tx.upsertRemoteRecord({ ...shadow(out[1]!, 'other-object'), object: 'companies' });
      return out;
    });
    const read = store.read();
    const byProfile = await read.findRemoteRecordsByProfiles('hubspot', 'contacts', ids);
    expect(byProfile).toHaveLength(70);
    // Ordered by profile, then remote id; deleted shadows included (callers filter).
    const first = byProfile.filter((r) => r.profileId === ids[0]).map((r) => [r.remoteId, r.deleted]);
    expect(first).toEqual([
      ['a-first', true],
      ['r000', false],
    ]);
    expect(byProfile.some((r) => r.profileId === ids[69])).toBe(false);
    expect(byProfile.some((r) => r.object === 'companies')).toBe(false);
    expect(await read.findRemoteRecordsByProfile('hubspot', 'contacts', ids[0]!)).toEqual(
      byProfile.filter((r) => r.profileId === ids[0]),
    );

    const wanted = [
      'r068',
      'r000',
      'missing',
      ...Array.from({ length: 65 }, (_, i) => `r${String(i).padStart(3, '0')}`),
    ];
    const byId = await read.getRemoteRecords('hubspot', 'contacts', wanted);
    expect(byId.map((r) => r.remoteId).sort()).toEqual(
      [...new Set(wanted.filter((w) => w !== 'missing'))].sort(),
    );
    expect(byId.find((r) => r.remoteId === 'r068')).toEqual(shadow(ids[68]!, 'r068'));
    expect(await read.getRemoteRecords('hubspot', 'contacts', [])).toEqual([]);
  });

  it('upserts many shadows and identifiers at once; the last row per record wins; a taken identifier fails the lot', async () => {
    store = await factories[name]!();
    const [p1, p2] = await store.transaction(async (tx) => [
      (await tx.createProfile('person', T0)).id,
      (await tx.createProfile('person', T0)).id,
    ]);
    await store.transaction(async (tx) => {
      await tx.upsertRemoteRecord(shadow(p1, 'x1'));
      await tx.upsertRemoteRecords([
        { ...shadow(p1, 'x1'), shadow: { email: 'first' } },
        shadow(p2, 'x2'),
        { ...shadow(p1, 'x1'), shadow: { email: 'last' }, syncedAt: t(9) },
      ]);
      await tx.addIdentifiers([
        { type: 'hubspot.contact', value: 'x1', profileId: p1, source: 'hubspot', at: t(1) },
        { type: 'hubspot.contact', value: 'x2', profileId: p2, source: 'hubspot', at: t(1) },
        { type: 'hubspot.contact', value: 'x1', profileId: p1, source: 'hubspot', at: t(5) },
      ]);
      await tx.upsertRemoteRecords([]);
      await tx.addIdentifiers([]);
    });
    const read = store.read();
    expect(await read.getRemoteRecord('hubspot', 'contacts', 'x1')).toMatchObject({
      shadow: { email: 'last' },
      syncedAt: t(9),
      profileId: p1,
    });
    expect(await read.getRemoteRecord('hubspot', 'contacts', 'x2')).toEqual(shadow(p2, 'x2'));
    expect((await read.findIdentifiers([{ type: 'hubspot.contact', value: 'x1' }]))[0]).toMatchObject({
      profileId: p1,
      firstSeen: t(1),
      lastSeen: t(5),
    });
    // x2 belongs to p2: claiming it for p1 in a batch fails, and nothing of the batch stays.
    await expect(
      store.transaction((tx) =>
        tx.addIdentifiers([
          { type: 'hubspot.contact', value: 'x3', profileId: p1, source: 'hubspot', at: t(6) },
          { type: 'hubspot.contact', value: 'x2', profileId: p1, source: 'hubspot', at: t(6) },
        ]),
      ),
    ).rejects.toMatchObject({ kind: 'conflict', code: 'IDENTIFIER_TAKEN' });
    expect(await read.findIdentifiers([{ type: 'hubspot.contact', value: 'x3' }])).toEqual([]);
  });

  it('completes, retries and dead-letters many claimed rows at once, leaving rows another owner holds', async () => {
    store = await factories[name]!();
    await store.transaction(async (tx) => {
      const p = await tx.createProfile('person', T0);
      await tx.enqueueOutbox(
        Array.from({ length: 8 }, (_, i) => ({
          connector: 'hubspot',
          object: 'contacts',
          profileId: p.id,
          op: 'delete',
          fields: { i },
          nextAt: T0,
        })),
      );
    });
    const mine = await store.claimOutbox({ owner: 'w', limit: 6, leaseMs: 60_000, now: t(1) });
    const theirs = await store.claimOutbox({ owner: 'other', limit: 2, leaseMs: 60_000, now: t(1) });
    expect(mine).toHaveLength(6);
    const [a, b, c, d, e, f] = mine.map((r) => r.id) as [string, string, string, string, string, string];
    const foreign = theirs[0]!.id;

    expect(await store.completeOutboxMany([a, b, foreign], 'w')).toBe(2);
    expect(
      await store.retryOutboxMany(
        [
          { id: c, nextAt: t(10), error: 'HTTP 429', countAttempt: false },
          { id: d, nextAt: t(20), error: 'HTTP 503', countAttempt: true },
          { id: foreign, nextAt: t(10), error: 'x', countAttempt: true },
        ],
        'w',
      ),
    ).toBe(2);
    const dead = await store.deadLetterOutboxMany(
      [
        { id: e, reason: 'payload:INVALID', error: 'bad e' },
        { id: foreign, reason: 'payload:INVALID', error: 'not mine' },
        { id: f, reason: 'conflict:TAKEN', error: 'bad f' },
      ],
      'w',
      t(3),
    );
    expect(dead.map((dl) => [dl.outboxId, dl.reason, dl.error, dl.attempts])).toEqual([
      [e, 'payload:INVALID', 'bad e', 1],
      [f, 'conflict:TAKEN', 'bad f', 1],
    ]);
    // Left: c and d (pending, retried) and the two rows `other` still holds.
    expect(await store.pendingOutboxCount()).toBe(4);
    expect(await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 60_000, now: t(15) })).toMatchObject([
      { id: c, attempts: 0, lastError: 'HTTP 429' },
    ]);
    expect(await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 60_000, now: t(25) })).toMatchObject([
      { id: d, attempts: 1, lastError: 'HTTP 503' },
    ]);
    expect((await store.listDeadLetters({ limit: 10 })).map((dl) => dl.outboxId).sort()).toEqual(
      [e, f].sort(),
    );
    expect(await store.completeOutboxMany([], 'w')).toBe(0);
    expect(await store.retryOutboxMany([], 'w')).toBe(0);
    expect(await store.deadLetterOutboxMany([], 'w', t(4))).toEqual([]);
  });

  it('records what an attempt sends and reads it back until the rows are done (migration 0003)', async () => {
    store = await factories[name]!();
    const p = await store.transaction(async (tx) => (await tx.createProfile('person', T0)).id);
    // Pending rows of one record coalesce, so each row is claimed before the next is enqueued.
    const claimNext = async (i: number): Promise<string> => {
      await store.transaction((tx) => tx.enqueueOutbox([{ connector: 'hubspot', object: 'contacts', profileId: p, op: 'upsert', fields: { i }, nextAt: t(i) }]));
      const claimed = await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 60_000, now: t(5) });
      expect(claimed).toHaveLength(1);
      return claimed[0]!.id;
    };
    const r1 = await claimNext(1);
    const r2 = await claimNext(2);
    const r3 = await claimNext(3);
    // Only rows `w` holds are marked; later rows win per field.
    expect(await store.markOutboxSent([{ id: r1, fields: { plan: 'free', email: 'a@x.io' } }, { id: r2, fields: { plan: 'pro' } }], 'w')).toBe(2);
    expect(await store.markOutboxSent([{ id: r3, fields: { plan: 'x' } }], 'someone-else')).toBe(0);
    const sent = (): Promise<unknown> => store.transaction((tx) => tx.findSentOutboxFields('hubspot', 'contacts', p));
    expect(await sent()).toEqual({ plan: 'pro', email: 'a@x.io' });
    expect(await store.transaction((tx) => tx.findSentOutboxFields('salesforce', 'contacts', p))).toEqual({});
    // A retried row keeps its sent values (the call may have landed); a completed one drops out.
    await store.retryOutboxMany([{ id: r2, nextAt: t(9), error: 'HTTP 503', countAttempt: true }], 'w');
    expect(await sent()).toEqual({ plan: 'pro', email: 'a@x.io' });
    await store.completeOutboxMany([r1, r3], 'w');
    expect(await sent()).toEqual({ plan: 'pro' });
  });
});
