import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identifier, ProfileKind } from '../../src/core/types.ts';
import { IdentityResolver, type ResolveResult } from '../../src/identity/identity-resolver.ts';
import { getProfileView } from '../../src/identity/profile-view.ts';
import { writeTraits } from '../../src/identity/write-traits.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();
const id = (type: string, value: string, source = 'event'): Identifier => ({ type, value, source });

let store: ProfileStore;
let resolver: IdentityResolver;
let clock = 0;

async function resolve(identifiers: Identifier[], kind: ProfileKind = 'person', messageId?: string): Promise<ResolveResult> {
  clock += 1;
  const trigger = messageId ?? `msg-${clock}`;
  return store.transaction(async (tx) => {
    const res = await resolver.resolve(tx, { kind, identifiers, at: at(clock), trigger });
    await tx.insertEvent({ messageId: trigger, profileId: res.profileId, type: 'track', name: 'x', properties: {}, timestamp: at(clock), receivedAt: at(clock) });
    return res;
  });
}

beforeEach(async () => {
  store = await openStore('sqlite::memory:');
  resolver = new IdentityResolver();
  clock = 0;
});
afterEach(async () => {
  await store.close();
});

describe('IdentityResolver', () => {
  it('0 matches → creates; 1 match → attaches new identifiers to it', async () => {
    const first = await resolve([id('email', 'Ada@Example.com ')]);
    expect(first).toMatchObject({ created: true, mergedFrom: [], issues: [] });
    const second = await resolve([id('email', 'ada@example.com'), id('user_id', 'u-ada'), id('phone', '+1 415 555 2671')]);
    expect(second).toMatchObject({ profileId: first.profileId, created: false, mergedFrom: [] });
    const view = await getProfileView(store.read(), first.profileId);
    expect(view?.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual(['email:ada@example.com', 'phone:+14155552671', 'user_id:u-ada']);
  });

  it('anonymous browsing then sign-up merges the anonymous history into the known profile', async () => {
    const known = await resolve([id('user_id', 'u-1'), id('email', 'grace@example.com')], 'person', 'login-elsewhere');
    const anon = await resolve([id('anonymous_id', 'anon-1')], 'person', 'page-1');
    await resolve([id('anonymous_id', 'anon-1')], 'person', 'page-2');
    expect(anon.profileId).not.toBe(known.profileId);
    const signup = await resolve([id('user_id', 'u-1'), id('anonymous_id', 'anon-1')], 'person', 'identify-1');
    expect(signup.profileId).toBe(known.profileId);
    expect(signup.mergedFrom).toEqual([anon.profileId]);
    const events = await store.read().listEvents(known.profileId, 10);
    expect(events.map((e) => e.messageId).sort()).toEqual(['identify-1', 'login-elsewhere', 'page-1', 'page-2']);
    const view = await getProfileView(store.read(), anon.profileId); // the old id still resolves
    expect(view?.id).toBe(known.profileId);
    expect(view?.mergedFrom).toEqual([anon.profileId]);
    const merges = await store.read().listMerges(known.profileId);
    expect(merges).toEqual([{ fromId: anon.profileId, intoId: known.profileId, reason: 'linked by anonymous_id:anon-1', trigger: 'identify-1', at: merges[0]!.at }]);
  });

  it('first identify of an anonymous visitor attaches the user id to the anonymous profile (no merge needed)', async () => {
    const anon = await resolve([id('anonymous_id', 'anon-2')]);
    const identify = await resolve([id('user_id', 'u-2'), id('anonymous_id', 'anon-2')]);
    expect(identify).toMatchObject({ profileId: anon.profileId, created: false, mergedFrom: [] });
  });

  it('two different user ids sharing an email stay two profiles and a possible duplicate is written', async () => {
    const a = await resolve([id('user_id', 'alice'), id('email', 'shared@example.com')]);
    const b = await resolve([id('user_id', 'bob'), id('email', 'shared@example.com')]);
    expect(b.profileId).not.toBe(a.profileId);
    expect(b.created).toBe(true);
    expect(b.mergedFrom).toEqual([]);
    expect(b.issues.map((i) => i.code)).toContain('merge_refused');
    const dups = await store.read().listPossibleDuplicates(10);
    expect(dups).toHaveLength(1);
    expect([dups[0]!.profileA, dups[0]!.profileB].sort()).toEqual([a.profileId, b.profileId].sort());
    expect(dups[0]!.reason).toBe('email:shared@example.com shared by two different user_id');
    // The email stays with its first owner; bob's profile holds only bob.
    const bobView = await getProfileView(store.read(), 'user_id:bob');
    expect(bobView?.identifiers.map((i) => i.type)).toEqual(['user_id']);
    expect((await getProfileView(store.read(), 'email:shared@example.com'))?.id).toBe(a.profileId);
    // And later messages keep them apart.
    const again = await resolve([id('user_id', 'bob'), id('email', 'shared@example.com')]);
    expect(again.profileId).toBe(b.profileId);
  });

  it('two profiles holding different CRM ids of one object never merge automatically', async () => {
    const a = await resolve([id('hubspot.contact', '101'), id('email', 'x@example.com')]);
    const b = await resolve([id('hubspot.contact', '202')]);
    const link = await resolve([id('hubspot.contact', '202'), id('email', 'x@example.com')]);
    expect(link.profileId).toBe(b.profileId);
    expect(link.mergedFrom).toEqual([]);
    expect(await store.read().resolveProfile(a.profileId)).toMatchObject({ mergedInto: null });
  });

  it('blocked values never join profiles', async () => {
    const a = await resolve([id('user_id', 'null'), id('email', 'test@test.com'), id('anonymous_id', 'a-1')]);
    const b = await resolve([id('user_id', 'null'), id('email', 'test@test.com'), id('anonymous_id', 'a-2')]);
    const c = await resolve([id('user_id', 'undefined'), id('anonymous_id', '0')]);
    expect(new Set([a.profileId, b.profileId, c.profileId]).size).toBe(3);
    expect(a.issues.map((i) => i.code)).toEqual(['blocked_value', 'blocked_value']);
    expect(c.issues.map((i) => i.code)).toEqual(['blocked_value', 'blocked_value', 'no_identifiers']);
    expect(await store.read().findIdentifiers([{ type: 'user_id', value: 'null' }, { type: 'email', value: 'test@test.com' }])).toEqual([]);
  });

  it('invalid values are issues, the rest of the message still resolves', async () => {
    const res = await resolve([id('phone', 'nope'), id('email', 'bad'), id('favourite', 'x'), id('user_id', 'u-9')]);
    expect(res.issues.map((i) => i.code)).toEqual(['invalid_value', 'invalid_value', 'unknown_type']);
    expect((await getProfileView(store.read(), 'user_id:u-9'))?.id).toBe(res.profileId);
  });

  it('phone (non-unique) never joins profiles, it only suggests a duplicate', async () => {
    const a = await resolve([id('user_id', 'p1'), id('phone', '+14155552671')]);
    const b = await resolve([id('user_id', 'p2'), id('phone', '(415) 555-2671')]);
    expect(b.profileId).not.toBe(a.profileId);
    expect(b.issues.map((i) => i.code)).toContain('not_joining');
    expect(await store.read().listPossibleDuplicates(10)).toHaveLength(1);
  });

  it('kind matters: group_id identifies accounts; a person message cannot attach it', async () => {
    const account = await resolve([id('group_id', 'acme')], 'account');
    expect(account.created).toBe(true);
    const personRes = await resolve([id('user_id', 'u-10'), id('group_id', 'acme')], 'person');
    expect(personRes.issues.map((i) => i.code)).toEqual(['kind_mismatch']);
    expect(personRes.profileId).not.toBe(account.profileId);
  });

  it('limits: a second user_id is not attached to a profile that has one', async () => {
    const a = await resolve([id('email', 'lim@example.com'), id('user_id', 'first')]);
    // Message asserts email+user "second": the email's profile has "first" → kept apart.
    const b = await resolve([id('user_id', 'second'), id('email', 'lim@example.com')]);
    expect(b.profileId).not.toBe(a.profileId);
    // One message with two user ids: the first (message order within equal priority) is used.
    const c = await resolve([id('user_id', 'x1'), id('user_id', 'x2')]);
    expect(c.issues.map((i) => i.code)).toEqual(['limit_reached']);
  });

  it('anonymous ids beyond the limit evict the least recently seen, not the event', async () => {
    resolver = new IdentityResolver({ registry: (() => {
      const r = new IdentityResolver().registry;
      const spec = r.get('anonymous_id')!;
      r.register({ ...spec, limit: 3 });
      return r;
    })() });
    const base = await resolve([id('user_id', 'many')]);
    for (let i = 0; i < 5; i += 1) await resolve([id('user_id', 'many'), id('anonymous_id', `dev-${i}`)]);
    const ids = (await store.read().listIdentifiers(base.profileId)).filter((i) => i.type === 'anonymous_id').map((i) => i.value);
    expect(ids.sort()).toEqual(['dev-2', 'dev-3', 'dev-4']);
  });

  it('merge cap stops runaway merging without losing the event', async () => {
    resolver = new IdentityResolver({ maxMergesPerProfile: 2 });
    const known = await resolve([id('user_id', 'cap')]);
    const anons = [];
    for (let i = 0; i < 4; i += 1) anons.push(await resolve([id('anonymous_id', `c-${i}`)]));
    const results = [];
    for (let i = 0; i < 4; i += 1) results.push(await resolve([id('user_id', 'cap'), id('anonymous_id', `c-${i}`)], 'person', `cap-${i}`));
    expect(results.every((r) => r.profileId === known.profileId)).toBe(true);
    expect(results.flatMap((r) => r.mergedFrom)).toHaveLength(2);
    expect(results[3]!.issues.map((i) => i.code)).toEqual(['merge_cap']);
    expect(await store.read().countMerges(known.profileId)).toBe(2);
    expect(await store.read().hasEvent('cap-3')).toBe(true);
    expect((await store.read().listPossibleDuplicates(10)).length).toBe(2);
  });

  it('identifier cap stops a profile from growing without bound', async () => {
    resolver = new IdentityResolver({ maxIdentifiersPerProfile: 3 });
    const r = await resolve([id('user_id', 'idcap'), id('email', 'a@x.io'), id('email', 'b@x.io'), id('email', 'c@x.io')]);
    expect(r.issues.map((i) => i.code)).toEqual(['identifier_cap']);
    expect(await store.read().listIdentifiers(r.profileId)).toHaveLength(3);
  });

  it('merges several profiles linked by one message into the strongest-matched one', async () => {
    const byUser = await resolve([id('user_id', 'multi')]);
    const byEmail = await resolve([id('email', 'multi@example.com')]);
    const byAnon = await resolve([id('anonymous_id', 'multi-anon')]);
    const res = await resolve([id('anonymous_id', 'multi-anon'), id('email', 'multi@example.com'), id('user_id', 'multi')]);
    expect(res.profileId).toBe(byUser.profileId);
    expect(res.mergedFrom.sort()).toEqual([byEmail.profileId, byAnon.profileId].sort());
    expect((await store.read().mergedFrom(byUser.profileId)).sort()).toEqual([byEmail.profileId, byAnon.profileId].sort());
  });

  it('admin merge joins what automatic rules refuse, audited as admin:<actor>', async () => {
    const a = await resolve([id('user_id', 'adm-a')]);
    const b = await resolve([id('user_id', 'adm-b')]);
    const res = await resolver.adminMerge(store, a.profileId, b.profileId, 'grace', 'same person, two logins', at(99));
    expect(res).toEqual({ fromId: a.profileId, intoId: b.profileId, overLimit: ['user_id'] });
    const merges = await store.read().listMerges(b.profileId);
    expect(merges).toEqual([{ fromId: a.profileId, intoId: b.profileId, reason: 'same person, two logins', trigger: 'admin:grace', at: at(99) }]);
    await expect(resolver.adminMerge(store, a.profileId, b.profileId, 'grace', 'again')).rejects.toMatchObject({ code: 'MERGE_SAME_PROFILE' });
    await expect(resolver.adminMerge(store, 'prf_missing', b.profileId, 'grace', 'x')).rejects.toMatchObject({ code: 'PROFILE_NOT_FOUND' });
    const acct = await resolve([id('group_id', 'g')], 'account');
    await expect(resolver.adminMerge(store, acct.profileId, b.profileId, 'grace', 'x')).rejects.toMatchObject({ code: 'MERGE_KIND_MISMATCH' });
  });
});

describe('writeTraits and the profile view', () => {
  it('provenance per trait, null deletes, stale writes skipped, unchanged values not re-versioned', async () => {
    const { profileId } = await resolve([id('user_id', 'traits'), id('email', 'T@Example.com')]);
    await store.transaction(async (tx) => {
      const w1 = await writeTraits(tx, profileId, { plan: 'pro', title: 'CTO', ignored: undefined }, { source: 'hubspot', changedAt: at(10) });
      expect(w1.written.map((w) => w.key).sort()).toEqual(['plan', 'title']);
      const w2 = await writeTraits(tx, profileId, { plan: 'free' }, { source: 'event', changedAt: at(5) });
      expect(w2.skipped).toEqual(['plan']);
      const w3 = await writeTraits(tx, profileId, { plan: 'pro', title: null }, { source: 'salesforce', changedAt: at(20) });
      expect(w3).toEqual({ written: [], deleted: ['title'], skipped: ['plan'] });
      const w4 = await writeTraits(tx, profileId, { plan: 'enterprise', missing: null }, { source: 'salesforce', changedAt: at(30) });
      expect(w4.written).toMatchObject([{ key: 'plan', version: 2, source: 'salesforce' }]);
    });
    const view = await getProfileView(store.read(), 'email: t@example.COM ');
    expect(view).toEqual({
      id: profileId,
      kind: 'person',
      identifiers: [
        { type: 'email', value: 't@example.com', source: 'event' },
        { type: 'user_id', value: 'traits', source: 'event' },
      ],
      traits: { plan: { value: 'enterprise', source: 'salesforce', changedAt: at(30) } },
      mergedFrom: [],
      createdAt: view!.createdAt,
      updatedAt: view!.updatedAt,
    });
    expect(await getProfileView(store.read(), 'email:nobody@example.com')).toBeNull();
    expect(await getProfileView(store.read(), 'prf_unknown')).toBeNull();
    expect(await getProfileView(store.read(), 'weird:thing')).toBeNull();
  });
});
