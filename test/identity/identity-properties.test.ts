/**
 * Property-based tests of the resolver over random sequences of identify messages (fast-check).
 *
 * Properties that truly hold for the rules of design.md §5:
 * (a) every stored identifier belongs to exactly one live profile, and every message's event is
 *     stored on a live profile (no event lost);
 * (b) no profile ever holds two user_ids (or more values of any `reject` type than its limit);
 * (c) when the messages contain no conflicting evidence (no identifier is ever seen with two
 *     different user_ids, directly or through anonymous ids/emails), the final grouping equals the
 *     connected components of "appeared in one message" — so it does not depend on message order,
 *     nor on whether profiles were joined directly or through intermediate anonymous ids.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Identifier } from '../../src/core/types.ts';
import { IdentityResolver } from '../../src/identity/identity-resolver.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';

const T0 = Date.parse('2026-05-01T00:00:00.000Z');

async function play(messages: Identifier[][]): Promise<{ store: ProfileStore; live: (id: Identifier) => Promise<string | null> }> {
  const store = await openStore('sqlite::memory:');
  const resolver = new IdentityResolver();
  for (const [i, identifiers] of messages.entries()) {
    const at = new Date(T0 + i * 1000).toISOString();
    await store.transaction(async (tx) => {
      const res = await resolver.resolve(tx, { kind: 'person', identifiers, at, trigger: `m${i}` });
      await tx.insertEvent({ messageId: `m${i}`, profileId: res.profileId, type: 'identify', name: null, properties: {}, timestamp: at, receivedAt: at });
    });
  }
  const live = async (id: Identifier): Promise<string | null> => {
    const [row] = await store.read().findIdentifiers([{ type: id.type, value: id.value }]);
    return row === undefined ? null : row.profileId;
  };
  return { store, live };
}

const ident = (type: string, value: string): Identifier => ({ type, value, source: 'event' });

/** Any mix: users, anonymous ids and emails shared arbitrarily (conflicts included). */
const anyMessage = fc
  .record({
    user: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    anons: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
    email: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  })
  .map(({ user, anons, email }) => [
    ...(user === undefined ? [] : [ident('user_id', `u${user}`)]),
    ...anons.map((a) => ident('anonymous_id', `a${a}`)),
    ...(email === undefined ? [] : [ident('email', `e${email}@example.com`)]),
  ]);

describe('identity properties', () => {
  it('(a) identifiers live on exactly one live profile, no event is lost; (b) never two user_ids on one profile', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyMessage, { minLength: 1, maxLength: 25 }), async (messages) => {
        const { store } = await play(messages);
        try {
          const r = store.read();
          const seen = messages.flat();
          const rows = await r.findIdentifiers(seen.map((s) => ({ type: s.type, value: s.value })));
          const owners = new Map<string, Set<string>>();
          for (const row of rows) {
            const p = await r.getProfile(row.profileId);
            expect(p?.mergedInto).toBeNull();
            const k = `${row.type}:${row.value}`;
            owners.set(k, (owners.get(k) ?? new Set()).add(row.profileId));
          }
          for (const set of owners.values()) expect(set.size).toBe(1);
          for (const profileId of new Set(rows.map((x) => x.profileId))) {
            const held = await r.listIdentifiers(profileId);
            expect(held.filter((h) => h.type === 'user_id').length).toBeLessThanOrEqual(1);
            expect(held.filter((h) => h.type === 'email').length).toBeLessThanOrEqual(5);
          }
          for (let i = 0; i < messages.length; i += 1) expect(await r.hasEvent(`m${i}`)).toBe(true);
          // Every event sits on a live profile.
          for (const profileId of new Set(rows.map((x) => x.profileId))) {
            for (const e of await r.listEvents(profileId, 1000)) expect((await r.getProfile(e.profileId))?.mergedInto).toBeNull();
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  /**
   * Conflict-free worlds: identifiers are partitioned into "persons", each with at most one
   * user_id; a message only mixes identifiers of one person.
   */
  const world = fc
    .record({
      persons: fc.integer({ min: 1, max: 4 }),
      anonOwner: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }),
      emailOwner: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }),
      hasUser: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      picks: fc.array(fc.record({ person: fc.nat(), mask: fc.nat({ max: 1023 }) }), { minLength: 1, maxLength: 20 }),
    })
    .map(({ persons, anonOwner, emailOwner, hasUser, picks }) => {
      const ids: Identifier[][] = Array.from({ length: persons }, () => []);
      anonOwner.forEach((o, i) => ids[o % persons]!.push(ident('anonymous_id', `a${i}`)));
      emailOwner.forEach((o, i) => ids[o % persons]!.push(ident('email', `e${i}@example.com`)));
      hasUser.slice(0, persons).forEach((has, p) => {
        if (has) ids[p]!.push(ident('user_id', `u${p}`));
      });
      const messages = picks
        .map(({ person, mask }) => ids[person % persons]!.filter((_, bit) => (mask & (1 << bit)) !== 0))
        .filter((m) => m.length > 0);
      return messages;
    })
    .filter((messages) => messages.length > 0);

  function components(messages: Identifier[][]): Map<string, string> {
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      const p = parent.get(x) ?? x;
      if (p === x) return x;
      const root = find(p);
      parent.set(x, root);
      return root;
    };
    for (const m of messages) {
      const keys = m.map((i) => `${i.type}:${i.value}`);
      for (const k of keys) if (!parent.has(k)) parent.set(k, k);
      for (const k of keys.slice(1)) parent.set(find(k), find(keys[0]!));
    }
    return new Map([...parent.keys()].map((k) => [k, find(k)]));
  }

  it('(c) without conflicting evidence the grouping is the connected components, whatever the order', async () => {
    await fc.assert(
      fc.asyncProperty(
        world.chain((messages) => fc.tuple(fc.constant(messages), fc.shuffledSubarray(messages, { minLength: messages.length, maxLength: messages.length }))),
        async ([messages, shuffled]) => {
          const expected = components(messages);
          for (const order of [messages, shuffled]) {
            const { store, live } = await play(order);
            try {
              const keys = [...expected.keys()];
              const profileOf = new Map<string, string | null>();
              for (const k of keys) {
                const at = k.indexOf(':');
                profileOf.set(k, await live(ident(k.slice(0, at), k.slice(at + 1))));
              }
              for (const x of keys) {
                expect(profileOf.get(x)).not.toBeNull();
                for (const y of keys) {
                  expect(profileOf.get(x) === profileOf.get(y)).toBe(expected.get(x) === expected.get(y));
                }
              }
              expect(await store.read().listPossibleDuplicates(10)).toEqual([]);
            } finally {
              await store.close();
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
