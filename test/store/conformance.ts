/**
 * The store conformance suite: every ProfileStore port method, run against each adapter by
 * `sqlite.test.ts` and `postgres.test.ts`. Each test opens a fresh store from the factory.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import type { EventRow, ProfileStore, StoreTx } from '../../src/store/port.ts';

export interface StoreFactory {
  /** A fresh, migrated, empty store. */
  open(): Promise<ProfileStore>;
  /** Cleans up after `open` (drop the schema, delete the file). Called after close. */
  dispose?(store: ProfileStore): Promise<void>;
  /** `store.read()` uses its own connection (false for `sqlite::memory:`, which has one). */
  isolatedReads?: boolean;
  /** Optional: opens a second store on the same database (another process's view). */
  reopen?(store: ProfileStore): Promise<ProfileStore>;
}

const T0 = '2026-01-01T00:00:00.000Z';
const t = (seconds: number): string => new Date(Date.parse(T0) + seconds * 1000).toISOString();

function event(messageId: string, profileId: ProfileId, seconds = 0): EventRow {
  return { messageId, profileId, type: 'track', name: 'Clicked', properties: { n: seconds, nested: { ok: true } }, timestamp: t(seconds), receivedAt: t(seconds) };
}

async function person(tx: StoreTx, ids: [string, string][] = [], at = T0): Promise<ProfileId> {
  const p = await tx.createProfile('person', at);
  for (const [type, value] of ids) await tx.addIdentifier({ type, value, profileId: p.id, source: 'event', at });
  return p.id;
}

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`ProfileStore conformance: ${name}`, () => {
    let store: ProfileStore;
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await store.close();
      await factory.dispose?.(store);
    });

    describe('migrations', () => {
      it('applies every migration once; a second migrate applies nothing', async () => {
        expect(await store.migrate()).toEqual([]);
      });
    });

    describe('transactions', () => {
      it('commits everything or nothing', async () => {
        let id: ProfileId | undefined;
        await expect(
          store.transaction(async (tx) => {
            id = await person(tx, [['email', 'rollback@example.com']]);
            throw new TypeError('boom');
          }),
        ).rejects.toThrow('boom');
        expect(id).toBeDefined();
        expect(await store.read().getProfile(id!)).toBeNull();
        expect(await store.read().findIdentifiers([{ type: 'email', value: 'rollback@example.com' }])).toEqual([]);
      });

      it('reads inside a transaction see its own writes', async () => {
        await store.transaction(async (tx) => {
          const id = await person(tx, [['user_id', 'u1']]);
          expect((await tx.listIdentifiers(id)).map((i) => i.value)).toEqual(['u1']);
        });
      });

      it('concurrent transactions do not interleave or lose writes', async () => {
        const id = await store.transaction((tx) => person(tx));
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.transaction(async (tx) => {
              const traits = await tx.getTraits(id);
              const n = (traits.find((x) => x.key === 'counter')?.value as number | undefined) ?? 0;
              await tx.writeTraits(id, [{ key: 'counter', value: n + 1, source: 'test', changedAt: t(i) }]);
            }),
          ),
        );
        const traits = await store.read().getTraits(id);
        // SQLite serialises; Postgres (READ COMMITTED) may lose increments, but never rows or versions.
        const counter = traits.find((x) => x.key === 'counter')!;
        expect(counter.version).toBe(20);
        if (store.dialect === 'sqlite') expect(counter.value).toBe(20);
      });

      if (factory.isolatedReads === true) {
        it('reads outside a transaction do not see its uncommitted writes', async () => {
          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          let written!: () => void;
          const wrote = new Promise<void>((resolve) => (written = resolve));
          const tx = store.transaction(async (t) => {
            await person(t, [['email', 'invisible@example.com']]);
            written();
            await gate;
          });
          await wrote;
          expect(await store.read().findIdentifiers([{ type: 'email', value: 'invisible@example.com' }])).toEqual([]);
          release();
          await tx;
          expect(await store.read().findIdentifiers([{ type: 'email', value: 'invisible@example.com' }])).toHaveLength(1);
        });
      }

      it('refuses nested transactions instead of deadlocking', async () => {
        await expect(store.transaction(() => store.transaction(() => Promise.resolve(1)))).rejects.toThrow(/nested/);
      });
    });

    describe('profiles', () => {
      it('creates, gets, touches', async () => {
        const p = await store.transaction((tx) => tx.createProfile('account', T0));
        expect(p).toMatchObject({ kind: 'account', createdAt: T0, updatedAt: T0, mergedInto: null });
        expect(p.id).toMatch(/^prf_/);
        await store.transaction((tx) => tx.touchProfile(p.id, t(60)));
        await store.transaction((tx) => tx.touchProfile(p.id, t(30))); // older: ignored
        expect(await store.read().getProfile(p.id)).toMatchObject({ updatedAt: t(60) });
        expect(await store.read().getProfile('prf_nope')).toBeNull();
        expect(await store.read().resolveProfile('prf_nope')).toBeNull();
      });
    });

    describe('identifiers', () => {
      it('adds, finds in bulk, lists, bumps lastSeen, removes', async () => {
        const id = await store.transaction((tx) => person(tx, [['email', 'a@example.com'], ['user_id', 'u1']]));
        await store.transaction((tx) => tx.addIdentifier({ type: 'email', value: 'a@example.com', profileId: id, source: 'event', at: t(100) }));
        const found = await store.read().findIdentifiers([
          { type: 'email', value: 'a@example.com' },
          { type: 'user_id', value: 'u1' },
          { type: 'user_id', value: 'missing' },
        ]);
        expect(found).toHaveLength(2);
        const email = found.find((f) => f.type === 'email')!;
        expect(email).toMatchObject({ profileId: id, source: 'event', firstSeen: T0, lastSeen: t(100) });
        expect((await store.read().listIdentifiers(id)).map((i) => `${i.type}:${i.value}`)).toEqual(['email:a@example.com', 'user_id:u1']);
        await store.transaction((tx) => tx.removeIdentifier('email', 'a@example.com'));
        expect(await store.read().listIdentifiers(id)).toHaveLength(1);
      });

      it('finds many keys at once (bulk path)', async () => {
        const keys = Array.from({ length: 1200 }, (_, i) => ({ type: 'anonymous_id', value: `a${i}` }));
        const id = await store.transaction(async (tx) => {
          const p = await person(tx);
          for (const k of keys) await tx.addIdentifier({ ...k, profileId: p, source: 'event', at: T0 });
          return p;
        });
        const found = await store.read().findIdentifiers([...keys, { type: 'anonymous_id', value: 'zzz' }]);
        expect(found).toHaveLength(1200);
        expect(new Set(found.map((f) => f.profileId))).toEqual(new Set([id]));
      });

      it('bulk reads: profiles, identifier lists and traits of many profiles (over one chunk)', async () => {
        const ids = await store.transaction(async (tx) => {
          const out: ProfileId[] = [];
          for (let i = 0; i < 70; i++) {
            const p = await person(tx, [['user_id', `bulk-${i}`], ['email', `bulk-${i}@example.com`]]);
            await tx.writeTraits(p, [{ key: 'n', value: i, source: 'event', changedAt: T0 }]);
            out.push(p);
          }
          return out;
        });
        const r = store.read();
        if (r.getProfiles === undefined || r.listIdentifiersOfProfiles === undefined || r.getTraitsOfProfiles === undefined) throw new TypeError('the SQL adapters have the bulk reads');
        const asked = [...ids, 'prf_missing' as ProfileId];
        expect(new Set((await r.getProfiles(asked)).map((p) => p.id))).toEqual(new Set(ids));
        const lists = await r.listIdentifiersOfProfiles(asked);
        expect(lists).toHaveLength(140);
        for (const id of ids.slice(0, 3)) expect(lists.filter((l) => l.profileId === id)).toEqual(await r.listIdentifiers(id));
        const traits = await r.getTraitsOfProfiles(asked);
        expect(traits).toHaveLength(70);
        expect(traits.find((t) => t.profileId === ids[69])).toMatchObject({ key: 'n', value: 69 });
      });

      it('an identifier belongs to one profile: adding it to another fails', async () => {
        await store.transaction((tx) => person(tx, [['user_id', 'taken']]));
        await expect(store.transaction((tx) => person(tx, [['user_id', 'taken']]))).rejects.toMatchObject({ code: 'IDENTIFIER_TAKEN' });
      });
    });

    describe('traits', () => {
      it('writes with provenance, bumps versions, null deletes', async () => {
        const id = await store.transaction((tx) => person(tx));
        const first = await store.transaction((tx) =>
          tx.writeTraits(id, [
            { key: 'plan', value: 'pro', source: 'hubspot', changedAt: t(1) },
            { key: 'audiences', value: ['a', 'b'], source: 'computed', changedAt: t(1) },
            { key: 'score', value: 4.5, source: 'computed', changedAt: t(1) },
          ]),
        );
        expect(first).toHaveLength(3);
        const second = await store.transaction((tx) =>
          tx.writeTraits(id, [
            { key: 'plan', value: 'enterprise', source: 'salesforce', changedAt: t(2) },
            { key: 'score', value: null, source: 'computed', changedAt: t(2) },
          ]),
        );
        expect(second).toEqual([{ profileId: id, key: 'plan', value: 'enterprise', source: 'salesforce', changedAt: t(2), version: 2 }]);
        const traits = await store.read().getTraits(id);
        expect(traits.map((x) => [x.key, x.value, x.version])).toEqual([
          ['audiences', ['a', 'b'], 1],
          ['plan', 'enterprise', 2],
        ]);
      });

      it('round-trips JSON values exactly (strings that look like JSON stay strings)', async () => {
        const id = await store.transaction((tx) => person(tx));
        const values = ['{"a":1}', '42', 42, true, { z: 1, a: [null, 'x'] }, ''];
        await store.transaction((tx) => tx.writeTraits(id, values.map((value, i) => ({ key: `k${i}`, value, source: 's', changedAt: T0 }))));
        const traits = await store.read().getTraits(id);
        expect(traits.map((x) => x.value)).toEqual(values);
      });
    });

    describe('events', () => {
      it('appends once per messageId and lists newest first', async () => {
        const id = await store.transaction((tx) => person(tx));
        expect(await store.transaction((tx) => tx.insertEvent(event('m1', id, 1)))).toBe(true);
        expect(await store.transaction((tx) => tx.insertEvent(event('m1', id, 5)))).toBe(false);
        expect(await store.transaction((tx) => tx.insertEvent(event('m2', id, 2)))).toBe(true);
        expect(await store.read().hasEvent('m1')).toBe(true);
        expect(await store.read().hasEvent('m3')).toBe(false);
        const events = await store.read().listEvents(id, 10);
        expect(events.map((e) => e.messageId)).toEqual(['m2', 'm1']);
        expect(events[1]).toEqual(event('m1', id, 1));
        expect(await store.read().listEvents(id, 1)).toHaveLength(1);
      });

      it('bulk insert reports duplicates, including repeats inside the batch', async () => {
        const id = await store.transaction((tx) => person(tx));
        await store.transaction((tx) => tx.insertEvent(event('dup-old', id)));
        const rows = [event('b1', id), event('dup-old', id), event('b2', id), event('b1', id)];
        expect(await store.transaction((tx) => tx.insertEvents(rows))).toEqual([true, false, true, false]);
        expect(await store.read().listEvents(id, 10)).toHaveLength(3);
        const many = Array.from({ length: 1100 }, (_, i) => event(`bulk-${i}`, id, i));
        const res = await store.transaction((tx) => tx.insertEvents(many));
        expect(res.every(Boolean)).toBe(true);
        expect(await store.read().listEvents(id, 5000)).toHaveLength(1103);
      });
    });

    describe('merges', () => {
      it('moves identifiers, traits (newer wins), events, remote records; old ids resolve', async () => {
        const { a, b } = await store.transaction(async (tx) => {
          const a = await person(tx, [['anonymous_id', 'anon-1']], T0);
          const b = await person(tx, [['user_id', 'u-1'], ['email', 'b@example.com']], t(1));
          await tx.writeTraits(a, [
            { key: 'plan', value: 'free', source: 'event', changedAt: t(5) },
            { key: 'only_a', value: 1, source: 'event', changedAt: t(1) },
          ]);
          await tx.writeTraits(b, [
            { key: 'plan', value: 'pro', source: 'hubspot', changedAt: t(3) },
            { key: 'title', value: 'CTO', source: 'hubspot', changedAt: t(9) },
          ]);
          await tx.writeTraits(a, [{ key: 'title', value: 'old', source: 'event', changedAt: t(2) }]);
          await tx.insertEvent(event('ea', a));
          await tx.insertEvent(event('eb', b));
          await tx.upsertRemoteRecord({ connector: 'hubspot', object: 'contact', remoteId: '7', profileId: a, shadow: { email: 'x' }, remoteChangedAt: null, fieldChangedAt: {}, syncedAt: T0, deleted: false });
          await tx.enqueueOutbox([{ connector: 'hubspot', object: 'contact', profileId: a, op: 'upsert', fields: { email: 'x' } }]);
          return { a, b };
        });
        await store.transaction((tx) => tx.mergeProfiles({ fromId: a, intoId: b, reason: 'linked by user_id:u-1', trigger: 'msg-1', at: t(10) }));
        const r = store.read();
        expect(await r.getProfile(a)).toMatchObject({ mergedInto: b });
        expect((await r.resolveProfile(a))?.id).toBe(b);
        expect(await r.mergedFrom(b)).toEqual([a]);
        expect((await r.listIdentifiers(b)).map((i) => i.type).sort()).toEqual(['anonymous_id', 'email', 'user_id']);
        expect(await r.listIdentifiers(a)).toEqual([]);
        const traits = Object.fromEntries((await r.getTraits(b)).map((x) => [x.key, x.value]));
        expect(traits).toEqual({ plan: 'free', only_a: 1, title: 'CTO' });
        expect(await r.getTraits(a)).toEqual([]);
        expect((await r.listEvents(b, 10)).map((e) => e.messageId).sort()).toEqual(['ea', 'eb']);
        expect((await r.findRemoteRecordsByProfile('hubspot', 'contact', b)).map((x) => x.remoteId)).toEqual(['7']);
        expect(await r.listMerges(b)).toEqual([{ fromId: a, intoId: b, reason: 'linked by user_id:u-1', trigger: 'msg-1', at: t(10) }]);
        expect(await r.countMerges(b)).toBe(1);
        const claimed = await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 1000, now: new Date(Date.now() + 1000).toISOString() });
        expect(claimed.map((c) => c.profileId)).toEqual([b]);
      });

      it('chains: an id merged twice still resolves to the final survivor; counts are transitive', async () => {
        const [a, b, c] = await store.transaction(async (tx) => [await person(tx), await person(tx), await person(tx)]);
        await store.transaction((tx) => tx.mergeProfiles({ fromId: a, intoId: b, reason: 'r1', trigger: 'm1', at: t(1) }));
        await store.transaction((tx) => tx.mergeProfiles({ fromId: b, intoId: c, reason: 'r2', trigger: 'm2', at: t(2) }));
        const r = store.read();
        expect((await r.resolveProfile(a))?.id).toBe(c);
        expect((await r.mergedFrom(c)).sort()).toEqual([a, b].sort());
        expect(await r.countMerges(c)).toBe(2);
        expect((await r.listMerges(c)).map((m) => m.reason)).toEqual(['r1', 'r2']);
      });

      it('refuses to merge a profile into itself or from a merged profile', async () => {
        const [a, b] = await store.transaction(async (tx) => [await person(tx), await person(tx)]);
        await expect(store.transaction((tx) => tx.mergeProfiles({ fromId: a, intoId: a, reason: 'x', trigger: 'x', at: T0 }))).rejects.toMatchObject({ code: 'MERGE_INVALID' });
        await store.transaction((tx) => tx.mergeProfiles({ fromId: a, intoId: b, reason: 'x', trigger: 'x', at: T0 }));
        await expect(store.transaction((tx) => tx.mergeProfiles({ fromId: a, intoId: b, reason: 'x', trigger: 'x', at: T0 }))).rejects.toMatchObject({ code: 'MERGE_INVALID' });
      });

      it('records possible duplicates once per pair', async () => {
        const [a, b] = await store.transaction(async (tx) => [await person(tx), await person(tx)]);
        await store.transaction(async (tx) => {
          await tx.recordPossibleDuplicate({ profileA: a, profileB: b, reason: 'email:x shared by two different user_id', at: T0 });
          await tx.recordPossibleDuplicate({ profileA: b, profileB: a, reason: 'again', at: t(1) });
        });
        const dups = await store.read().listPossibleDuplicates(10);
        expect(dups).toHaveLength(1);
        expect(dups[0]!.reason).toBe('email:x shared by two different user_id');
        expect([dups[0]!.profileA, dups[0]!.profileB].sort()).toEqual([a, b].sort());
      });
    });

    describe('remote records', () => {
      it('upserts shadows, finds by profile, moves', async () => {
        const id = await store.transaction((tx) => person(tx));
        const row = { connector: 'salesforce', object: 'contact', remoteId: '003A', profileId: id, shadow: { Email: 'a@b.co', Score__c: 1.5 }, remoteChangedAt: t(1), fieldChangedAt: { Email: t(1) }, syncedAt: t(2), deleted: false };
        await store.transaction((tx) => tx.upsertRemoteRecord(row));
        await store.transaction((tx) => tx.upsertRemoteRecord({ ...row, shadow: { Email: 'new@b.co' }, deleted: true }));
        expect(await store.read().getRemoteRecord('salesforce', 'contact', '003A')).toEqual({ ...row, shadow: { Email: 'new@b.co' }, deleted: true });
        expect(await store.read().getRemoteRecord('salesforce', 'contact', 'nope')).toBeNull();
        await store.transaction((tx) => tx.moveRemoteRecord('salesforce', 'contact', '003A', '003B'));
        expect(await store.read().getRemoteRecord('salesforce', 'contact', '003A')).toBeNull();
        expect((await store.read().findRemoteRecordsByProfile('salesforce', 'contact', id)).map((r) => r.remoteId)).toEqual(['003B']);
        // Moving onto an existing record keeps the target's shadow.
        await store.transaction((tx) => tx.upsertRemoteRecord({ ...row, remoteId: '003C', shadow: { keep: true } }));
        await store.transaction((tx) => tx.moveRemoteRecord('salesforce', 'contact', '003C', '003B'));
        const all = await store.read().findRemoteRecordsByProfile('salesforce', 'contact', id);
        expect(all.map((r) => [r.remoteId, r.shadow])).toEqual([['003B', { Email: 'new@b.co' }]]);
      });
    });

    describe('outbox', () => {
      const now = (s: number): string => t(s);
      async function enqueue(n: number, profileId?: ProfileId): Promise<void> {
        await store.transaction(async (tx) => {
          const id = profileId ?? (await person(tx));
          await tx.enqueueOutbox(Array.from({ length: n }, (_, i) => ({ connector: 'hubspot', object: 'contact', profileId: id, op: 'delete', fields: { i }, nextAt: T0 })));
        });
      }

      it('coalesces pending upserts for one record; later fields win', async () => {
        const id = await store.transaction((tx) => person(tx));
        const [first] = await store.transaction((tx) => tx.enqueueOutbox([{ connector: 'pipedrive', object: 'person', profileId: id, op: 'upsert', fields: { a: 1, b: 1 }, nextAt: t(5) }]));
        const [second] = await store.transaction((tx) => tx.enqueueOutbox([{ connector: 'pipedrive', object: 'person', profileId: id, op: 'upsert', fields: { b: 2 }, nextAt: t(1) }]));
        expect(second!.id).toBe(first!.id);
        expect(second!.fields).toEqual({ a: 1, b: 2 });
        expect(await store.pendingOutboxCount('pipedrive')).toBe(1);
        const [claimed] = await store.claimOutbox({ owner: 'w1', limit: 5, leaseMs: 1000, now: t(2) });
        expect(claimed).toMatchObject({ id: first!.id, fields: { a: 1, b: 2 }, status: 'leased', leaseOwner: 'w1', nextAt: t(1) });
      });

      it('claims due rows oldest first, honours nextAt, connector and object filters', async () => {
        const id = await store.transaction((tx) => person(tx));
        await store.transaction((tx) =>
          tx.enqueueOutbox([
            { connector: 'hubspot', object: 'contact', profileId: id, op: 'delete', fields: { n: 1 }, nextAt: T0 },
            { connector: 'hubspot', object: 'company', profileId: id, op: 'delete', fields: { n: 2 }, nextAt: T0 },
            { connector: 'salesforce', object: 'contact', profileId: id, op: 'delete', fields: { n: 3 }, nextAt: T0 },
            { connector: 'hubspot', object: 'contact', profileId: id, op: 'delete', fields: { n: 4 }, nextAt: t(100) },
          ]),
        );
        expect(await store.pendingOutboxCount()).toBe(4);
        expect(await store.pendingOutboxCount('hubspot')).toBe(3);
        const hs = await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 1000, now: now(1), connector: 'hubspot', object: 'contact' });
        expect(hs.map((r) => r.fields['n'])).toEqual([1]);
        const rest = await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 1000, now: now(1) });
        expect(rest.map((r) => r.fields['n'])).toEqual([2, 3]);
        const later = await store.claimOutbox({ owner: 'w', limit: 10, leaseMs: 100_000, now: now(200) });
        // Row 4 is now due; rows 1–3 had 1 s leases that ran out, so they are claimable again.
        expect(later.map((r) => r.fields['n'])).toEqual([1, 2, 3, 4]);
      });

      it('two concurrent claimers never get the same row', async () => {
        await enqueue(60);
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store.claimOutbox({ owner: `w${i}`, limit: 15, leaseMs: 60_000, now: now(1) })),
        );
        const ids = results.flat().map((r) => r.id);
        expect(ids).toHaveLength(60);
        expect(new Set(ids).size).toBe(60);
        if (factory.reopen !== undefined) {
          await enqueue(40);
          const other = await factory.reopen(store);
          try {
            const [x, y] = await Promise.all([
              store.claimOutbox({ owner: 'p1', limit: 40, leaseMs: 60_000, now: now(1) }),
              other.claimOutbox({ owner: 'p2', limit: 40, leaseMs: 60_000, now: now(1) }),
            ]);
            const both = [...x, ...y].map((r) => r.id);
            expect(both).toHaveLength(40);
            expect(new Set(both).size).toBe(40);
          } finally {
            await other.close();
          }
        }
      });

      it('an expired lease can be claimed by another worker; the old owner then loses it', async () => {
        await enqueue(1);
        const [row] = await store.claimOutbox({ owner: 'slow', limit: 1, leaseMs: 10_000, now: now(1) });
        expect(await store.claimOutbox({ owner: 'fast', limit: 1, leaseMs: 10_000, now: now(5) })).toEqual([]);
        const [again] = await store.claimOutbox({ owner: 'fast', limit: 1, leaseMs: 10_000, now: now(12) });
        expect(again!.id).toBe(row!.id);
        expect(again!.leaseOwner).toBe('fast');
        // The old owner's late answer changes nothing: the row is still leased by the new owner.
        await store.completeOutbox(row!.id, 'slow');
        await store.retryOutbox(row!.id, 'slow', now(13), 'late', true);
        expect(await store.pendingOutboxCount()).toBe(1);
        expect(await store.claimOutbox({ owner: 'third', limit: 1, leaseMs: 10_000, now: now(13) })).toEqual([]);
        await store.completeOutbox(row!.id, 'fast');
        expect(await store.pendingOutboxCount()).toBe(0);
        expect(await store.claimOutbox({ owner: 'x', limit: 1, leaseMs: 10_000, now: now(100) })).toEqual([]);
      });

      it('retry counts attempts unless rate limited, and respects nextAt', async () => {
        await enqueue(1);
        const [row] = await store.claimOutbox({ owner: 'w', limit: 1, leaseMs: 1000, now: now(1) });
        await store.retryOutbox(row!.id, 'w', now(10), 'HTTP 429', false);
        expect(await store.claimOutbox({ owner: 'w', limit: 1, leaseMs: 1000, now: now(5) })).toEqual([]);
        const [r2] = await store.claimOutbox({ owner: 'w', limit: 1, leaseMs: 1000, now: now(10) });
        expect(r2).toMatchObject({ attempts: 0, lastError: 'HTTP 429' });
        await store.retryOutbox(r2!.id, 'w', now(11), 'HTTP 503', true);
        const [r3] = await store.claimOutbox({ owner: 'w', limit: 1, leaseMs: 1000, now: now(11) });
        expect(r3).toMatchObject({ attempts: 1, lastError: 'HTTP 503' });
        await store.retryOutbox(r3!.id, 'other', now(12), 'x', true); // not the holder: no effect
        await store.retryOutbox(r3!.id, 'w', now(12), 'HTTP 500', true);
        const [r4] = await store.claimOutbox({ owner: 'w', limit: 1, leaseMs: 1000, now: now(12) });
        expect(r4).toMatchObject({ attempts: 2, lastError: 'HTTP 500' });
      });

      it('dead letters, lists and replays them', async () => {
        await enqueue(2);
        const claimed = await store.claimOutbox({ owner: 'w', limit: 2, leaseMs: 1000, now: now(1) });
        const dl = await store.deadLetterOutbox(claimed[0]!.id, 'w', 'payload:INVALID_EMAIL', 'Email is invalid', now(2));
        expect(dl).toMatchObject({ outboxId: claimed[0]!.id, connector: 'hubspot', reason: 'payload:INVALID_EMAIL', attempts: 1, replayedAt: null, fields: claimed[0]!.fields });
        await store.deadLetterOutbox(claimed[1]!.id, 'w', 'transient:TIMEOUT', 'timed out', now(3));
        await expect(store.deadLetterOutbox(claimed[1]!.id, 'w', 'x', 'x', now(3))).rejects.toMatchObject({ code: 'OUTBOX_LEASE_LOST' });
        expect(await store.pendingOutboxCount()).toBe(0);
        const listed = await store.listDeadLetters({ limit: 10 });
        expect(listed.map((d) => d.reason)).toEqual(['transient:TIMEOUT', 'payload:INVALID_EMAIL']);
        expect(await store.listDeadLetters({ limit: 10, connector: 'salesforce' })).toEqual([]);
        expect(await store.replayDeadLetters([dl.id], now(4))).toBe(1);
        expect(await store.listDeadLetters({ limit: 10 })).toHaveLength(1);
        expect((await store.listDeadLetters({ limit: 10, includeReplayed: true })).find((d) => d.id === dl.id)?.replayedAt).toBe(now(4));
        const [replayed] = await store.claimOutbox({ owner: 'w', limit: 5, leaseMs: 1000, now: now(5) });
        expect(replayed).toMatchObject({ fields: dl.fields, attempts: 0, profileId: dl.profileId });
        expect(await store.replayDeadLetters([], now(6))).toBe(1);
        expect(await store.replayDeadLetters([], now(7))).toBe(0);
      });
    });

    describe('cursors, runs, conflicts, mappings, webhooks, leases', () => {
      it('cursors', async () => {
        expect(await store.read().getCursor('hubspot', 'contact')).toBeNull();
        await store.transaction((tx) => tx.setCursor('hubspot', 'contact', '2026-01-01T00:00:00Z|42', T0));
        await store.transaction((tx) => tx.setCursor('hubspot', 'contact', 'v2', t(1)));
        expect(await store.read().getCursor('hubspot', 'contact')).toEqual({ connector: 'hubspot', object: 'contact', value: 'v2', updatedAt: t(1) });
      });

      it('sync runs', async () => {
        const run = await store.startSyncRun({ connector: 'hubspot', object: 'contact', direction: 'pull', trigger: 'cron', startedAt: T0, counts: {}, mappingVersion: 'abc' });
        expect(run.status).toBe('running');
        await store.finishSyncRun(run.id, { status: 'succeeded', counts: { created: 3, apiCalls: 2 }, error: null, finishedAt: t(5) });
        const second = await store.startSyncRun({ connector: 'pipedrive', object: 'person', direction: 'push', trigger: 'manual', startedAt: t(10), counts: {}, mappingVersion: null });
        const runs = await store.listSyncRuns(10);
        expect(runs.map((r) => r.id)).toEqual([second.id, run.id]);
        expect(runs[1]).toEqual({ ...run, status: 'succeeded', counts: { created: 3, apiCalls: 2 }, finishedAt: t(5) });
      });

      it('conflicts', async () => {
        const id = await store.transaction((tx) => person(tx));
        const c = await store.transaction((tx) =>
          tx.insertConflict({ connector: 'hubspot', object: 'contact', profileId: id, remoteId: '1', field: 'plan', profileValue: 'pro', remoteValue: 'free', baseValue: null, rule: 'review', resolution: 'review', at: t(1), resolvedAt: null }),
        );
        await store.transaction((tx) =>
          tx.insertConflict({ connector: 'hubspot', object: 'contact', profileId: id, remoteId: '1', field: 'title', profileValue: 'a', remoteValue: 'b', baseValue: 'c', rule: 'latest_wins', resolution: 'remote', at: t(2), resolvedAt: t(2) }),
        );
        expect(c.id).toBeTruthy();
        expect((await store.listConflicts({ limit: 10 })).map((x) => x.field)).toEqual(['title', 'plan']);
        expect(await store.listConflicts({ limit: 10, unresolvedOnly: true })).toEqual([c]);
      });

      it('mapping versions record idempotently', async () => {
        await store.recordMappingVersion({ connector: 'hubspot', object: 'contact', hash: 'h1', loadedAt: T0 });
        await expect(store.recordMappingVersion({ connector: 'hubspot', object: 'contact', hash: 'h1', loadedAt: t(1) })).resolves.toBeUndefined();
      });

      it('webhook receipts dedupe per source', async () => {
        expect(await store.transaction((tx) => tx.recordWebhookReceipt('hubspot', 'evt-1', T0))).toBe(true);
        expect(await store.transaction((tx) => tx.recordWebhookReceipt('hubspot', 'evt-1', t(1)))).toBe(false);
        expect(await store.transaction((tx) => tx.recordWebhookReceipt('pipedrive', 'evt-1', t(1)))).toBe(true);
      });

      it('webhook inbox: stores changes with receipts, claims oldest change first under a lease, retries, finishes, prunes', async () => {
        const receipt = (deliveryId: string, changedSeconds: number, source = 'hubspot') => ({
          source,
          deliveryId,
          receivedAt: t(0),
          changedAt: t(changedSeconds),
          payload: { object: 'contacts', id: `c-${deliveryId}`, kind: 'upsert', nested: { n: changedSeconds } },
          leaseOwner: 'receiver',
          leaseUntil: t(60),
        });
        expect(await store.transaction((tx) => tx.insertWebhookReceipts([receipt('a', 5), receipt('b', 2), receipt('a', 9)]))).toEqual([true, true, false]);
        expect(await store.transaction((tx) => tx.insertWebhookReceipts([receipt('a', 7), receipt('c', 1, 'pipedrive')]))).toEqual([false, true]);
        // A bare receipt dedupes against stored changes and has nothing to process.
        expect(await store.transaction((tx) => tx.recordWebhookReceipt('hubspot', 'b', t(1)))).toBe(false);
        expect(await store.transaction((tx) => tx.recordWebhookReceipt('hubspot', 'bare', t(1)))).toBe(true);
        expect(await store.pendingWebhookCount('hubspot')).toBe(2);
        expect(await store.pendingWebhookCount()).toBe(3);

        // The receiver's lease holds until t(60): nobody else takes its receipts before.
        expect(await store.claimWebhookReceipts({ owner: 'sweeper', limit: 10, leaseMs: 30_000, now: t(59), sources: ['hubspot'] })).toEqual([]);
        const claimed = await store.claimWebhookReceipts({ owner: 'sweeper', limit: 10, leaseMs: 30_000, now: t(61), sources: ['hubspot'] });
        expect(claimed.map((r) => r.deliveryId)).toEqual(['b', 'a']);
        expect(claimed[1]).toMatchObject({ source: 'hubspot', changedAt: t(5), processedAt: null, leaseOwner: 'sweeper', leaseUntil: t(91), attempts: 0, payload: receipt('a', 5).payload });
        expect(await store.claimWebhookReceipts({ owner: 'other', limit: 10, leaseMs: 30_000, now: t(62) })).toEqual([expect.objectContaining({ deliveryId: 'c', source: 'pipedrive' })]);

        await store.retryWebhookReceipts('hubspot', ['a'], t(100), 'transient:X boom', true);
        await store.retryWebhookReceipts('hubspot', ['a'], t(100), 'rate_limited:Y wait', false);
        await store.finishWebhookReceipts('hubspot', ['b'], t(63));
        expect(await store.pendingWebhookCount('hubspot')).toBe(1);
        // Released for a retry at t(100), by any owner; finished receipts are never claimed again.
        expect(await store.claimWebhookReceipts({ owner: 'other', limit: 10, leaseMs: 30_000, now: t(99), sources: ['hubspot'] })).toEqual([]);
        const retried = await store.claimWebhookReceipts({ owner: 'other', limit: 10, leaseMs: 30_000, now: t(100), sources: ['hubspot'] });
        expect(retried).toEqual([expect.objectContaining({ deliveryId: 'a', attempts: 1, lastError: 'rate_limited:Y wait', leaseOwner: 'other' })]);
        await store.finishWebhookReceipts('hubspot', ['a'], t(200), 'transient:X given up');
        await store.finishWebhookReceipts('hubspot', ['a'], t(300)); // already processed: unchanged
        await store.finishWebhookReceipts('pipedrive', ['c'], t(400));
        expect(await store.pendingWebhookCount()).toBe(0);

        // Pruning drops receipts processed before the cut-off; their delivery ids are accepted again.
        expect(await store.pruneWebhookReceipts(t(250))).toBe(3); // b (t63), a (t200), bare (t1)
        expect(await store.transaction((tx) => tx.insertWebhookReceipts([receipt('a', 1), receipt('c', 1, 'pipedrive')]))).toEqual([true, false]);
      });

      it('webhook inbox: two concurrent claimers never get the same receipt', async () => {
        const rows = Array.from({ length: 20 }, (_, i) => ({ source: 'hubspot', deliveryId: `d${String(i).padStart(2, '0')}`, receivedAt: T0, changedAt: t(i), payload: { i }, leaseOwner: 'r', leaseUntil: T0 }));
        await store.transaction((tx) => tx.insertWebhookReceipts(rows));
        const [a, b] = await Promise.all(['a', 'b'].map((owner) => store.claimWebhookReceipts({ owner, limit: 12, leaseMs: 60_000, now: t(1) })));
        const ids = [...a!, ...b!].map((r) => r.deliveryId);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(20);
      });

      it('leases: one holder at a time, renewable, released, taken over after expiry', async () => {
        expect(await store.acquireLease('scheduler', 'a', t(30), T0)).toBe(true);
        expect(await store.acquireLease('scheduler', 'b', t(30), t(10))).toBe(false);
        expect(await store.acquireLease('scheduler', 'a', t(60), t(20))).toBe(true);
        expect(await store.acquireLease('scheduler', 'b', t(90), t(40))).toBe(false);
        expect(await store.acquireLease('scheduler', 'b', t(120), t(61))).toBe(true);
        await store.releaseLease('scheduler', 'a'); // not the holder: no effect
        expect(await store.acquireLease('scheduler', 'a', t(130), t(62))).toBe(false);
        await store.releaseLease('scheduler', 'b');
        expect(await store.acquireLease('scheduler', 'a', t(130), t(62))).toBe(true);
        const results = await Promise.all(['x', 'y', 'z'].map((o) => store.acquireLease('race', o, t(10), T0)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });
  });
}
