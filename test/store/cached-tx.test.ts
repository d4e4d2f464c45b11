import { describe, expect, it } from 'vitest';
import { CachedTx } from '../../src/store/cached-tx.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore, StoreTx } from '../../src/store/port.ts';
import { storeConformance } from './conformance.ts';

/** The store with every transaction's tx wrapped in a CachedTx: it must behave exactly like the store. */
function cachedStore(store: ProfileStore): ProfileStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'transaction') {
        return <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => target.transaction((tx) => fn(new CachedTx(tx)));
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

storeConformance('sqlite (memory) through CachedTx', { open: async () => cachedStore(await openStore('sqlite::memory:')) });

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T00:01:00.000Z';

describe('CachedTx', () => {
  it('answers repeated reads from the cache and sees its own writes like the store does', async () => {
    const store = await openStore('sqlite::memory:');
    try {
      await store.transaction(async (raw) => {
        const tx = new CachedTx(raw);
        const p = await tx.createProfile('person', T0);
        expect(await tx.findIdentifiers([{ type: 'email', value: 'a@example.com' }])).toEqual([]);
        await tx.addIdentifier({ type: 'email', value: 'a@example.com', profileId: p.id, source: 'event', at: T0 });
        await tx.addIdentifier({ type: 'user_id', value: 'u1', profileId: p.id, source: 'event', at: T0 });
        await tx.addIdentifier({ type: 'email', value: 'a@example.com', profileId: p.id, source: 'crm', at: T1 });
        for (const key of [{ type: 'email', value: 'a@example.com' }, { type: 'user_id', value: 'u1' }]) {
          expect(await tx.findIdentifiers([key])).toEqual(await raw.findIdentifiers([key]));
        }
        expect(await tx.listIdentifiers(p.id)).toEqual(await raw.listIdentifiers(p.id));
        await tx.removeIdentifier('user_id', 'u1');
        expect(await tx.listIdentifiers(p.id)).toEqual(await raw.listIdentifiers(p.id));
        expect(await tx.findIdentifiers([{ type: 'user_id', value: 'u1' }])).toEqual([]);

        expect(await tx.getTraits(p.id)).toEqual([]);
        await tx.writeTraits(p.id, [{ key: 'plan', value: 'pro', source: 'event', changedAt: T0 }, { key: 'a', value: 1, source: 'event', changedAt: T0 }]);
        await tx.writeTraits(p.id, [{ key: 'plan', value: 'free', source: 'event', changedAt: T1 }, { key: 'a', value: null, source: 'event', changedAt: T1 }]);
        expect(await tx.getTraits(p.id)).toEqual(await raw.getTraits(p.id));

        await tx.touchProfile(p.id, T1);
        await tx.touchProfile(p.id, T0); // older: the store keeps T1, and so must the cache
        expect(await tx.getProfile(p.id)).toEqual(await raw.getProfile(p.id));

        const q = await tx.createProfile('person', T0);
        await tx.addIdentifier({ type: 'anonymous_id', value: 'anon-1', profileId: q.id, source: 'event', at: T0 });
        await tx.mergeProfiles({ fromId: q.id, intoId: p.id, reason: 'test', trigger: 'm1', at: T1 });
        expect(await tx.findIdentifiers([{ type: 'anonymous_id', value: 'anon-1' }])).toEqual(await raw.findIdentifiers([{ type: 'anonymous_id', value: 'anon-1' }]));
        expect((await tx.resolveProfile(q.id))?.id).toBe(p.id);
        expect(await tx.listIdentifiers(p.id)).toEqual(await raw.listIdentifiers(p.id));
      });
    } finally {
      await store.close();
    }
  });

  it('forgets an identifier whose attach failed (taken by another profile)', async () => {
    const store = await openStore('sqlite::memory:');
    try {
      await store.transaction(async (raw) => {
        const tx = new CachedTx(raw);
        const a = await tx.createProfile('person', T0);
        const b = await tx.createProfile('person', T0);
        await tx.addIdentifier({ type: 'email', value: 'x@example.com', profileId: a.id, source: 'event', at: T0 });
        await expect(tx.addIdentifier({ type: 'email', value: 'x@example.com', profileId: b.id, source: 'event', at: T0 })).rejects.toThrow(/another profile/);
        expect(await tx.findIdentifiers([{ type: 'email', value: 'x@example.com' }])).toMatchObject([{ profileId: a.id }]);
      });
    } finally {
      await store.close();
    }
  });

  it('returns copies: mutating what a read returned does not change the next read', async () => {
    const store = await openStore('sqlite::memory:');
    try {
      await store.transaction(async (raw) => {
        const tx = new CachedTx(raw);
        const p = await tx.createProfile('person', T0);
        await tx.addIdentifier({ type: 'email', value: 'c@example.com', profileId: p.id, source: 'event', at: T0 });
        const held = await tx.listIdentifiers(p.id);
        held.splice(0, 1);
        expect(await tx.listIdentifiers(p.id)).toHaveLength(1);
      });
    } finally {
      await store.close();
    }
  });
});
