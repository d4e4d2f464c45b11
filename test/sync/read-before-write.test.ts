/**
 * The lost-update guard (`readBeforeWrite`, design.md §4): a rep edits a record in the CRM, the change
 * has not reached crmhub (its webhook is late or lost), and the profile changes the same or another
 * field. After the push the rep's edit is still there unless the field's conflict rule says the
 * profile wins. The default `pull` guard does it with one incremental pull per freshness window;
 * `ids` reads the linked records per batch; `off` shows what the guard prevents.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import {
  deliverWebhooks,
  engineFixture as baseFixture,
  type EngineFixture,
  dropSchemasAfterAll,
  pgUrl,
} from './sync-fixtures.ts';

const schemas = dropSchemasAfterAll();

let fx: EngineFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe.each(['sqlite', 'postgres'] as const)('lost-update guard on %s', (dialect) => {
  // One clock for the engine and the CRM, ahead of the wall clock (the store stamps outbox rows
  // with it), moved by hand past the freshness window.
  let now = Date.now() + 1_000;
  const tick = (ms = 1): number => (now += ms);

  const setup = async (
    options: Parameters<typeof baseFixture>[1] = {},
  ): Promise<{ f: EngineFixture; crm: MemoryConnector; id: string; profile: ProfileId }> => {
    now = Date.now() + 1_000;
    const extra =
      dialect === 'sqlite'
        ? {}
        : (() => {
            const schema = `rbw_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
            schemas.push(schema);
            return { url: pgUrl, storeSchema: schema };
          })();
    const f = await baseFixture(['alpha'], {
      now: () => tick(),
      readBeforeWriteFreshnessMs: 30_000,
      ...extra,
      ...options,
    });
    fx = f;
    const crm = f.crms.get('alpha')!;
    // A linked record and a saved pull cursor: the state of any object after its first sync.
    const id = crm.repEdit('contacts', undefined, {
      email: 'ada@example.com',
      firstname: 'Ada',
      crmhub_plan: 'free',
    });
    await f.engine.pull('alpha', 'contacts');
    crm.outbox.length = 0;
    const [link] = await f.store.read().findIdentifiers([{ type: 'alpha.contacts', value: id }]);
    return { f, crm, id, profile: link!.profileId };
  };

  const profileEdit = async (
    f: EngineFixture,
    profile: ProfileId,
    traits: Record<string, string>,
  ): Promise<void> => {
    await f.store.transaction(async (tx) => {
      const at = new Date(tick()).toISOString();
      await tx.writeTraits(
        profile,
        Object.entries(traits).map(([key, value]) => ({ key, value, source: 'event', changedAt: at })),
      );
      await f.engine.onProfilesChanged(tx, [profile]);
    });
  };

  const traitsOf = async (f: EngineFixture, profile: ProfileId): Promise<Record<string, unknown>> =>
    Object.fromEntries((await f.store.read().getTraits(profile)).map((t) => [t.key, t.value]));

  it('pull (default): a rep edit not yet seen survives a later push of the same and another field', async () => {
    const { f, crm, id, profile } = await setup();
    tick(60_000); // the set-up pull is no longer fresh
    // The profile changes first name and plan; later a rep changes the first name in the CRM, and
    // its webhook never arrives.
    await profileEdit(f, profile, { first_name: 'Ada P', plan: 'pro' });
    tick(10);
    crm.repEdit('contacts', id, { firstname: 'Ada R' });
    crm.outbox.length = 0;
    const calls = { ...crm.calls };
    const pushed = await f.engine.push('alpha');
    // The rep's later edit wins under latest_wins; plan (prefer_profile, untouched by the rep) is sent.
    expect(crm.record('contacts', id)?.fields).toMatchObject({
      firstname: 'Ada R',
      crmhub_plan: 'pro',
      email: 'ada@example.com',
    });
    expect(await traitsOf(f, profile)).toMatchObject({ first_name: 'Ada R', plan: 'pro' });
    // One pull page and one write; no per-record reads.
    expect((crm.calls.readChanges ?? 0) - (calls.readChanges ?? 0)).toBe(1);
    expect((crm.calls.write ?? 0) - (calls.write ?? 0)).toBe(1);
    expect((crm.calls.readByIds ?? 0) - (calls.readByIds ?? 0)).toBe(0);
    expect(pushed.apiCalls).toBe(2);
    expect(crm.writeBatchSizes.at(-1)).toBe(1);
    // Nothing left to send: the profile already has the rep's value.
    expect(await f.store.pendingOutboxCount()).toBe(0);
  });

  it('pull: where the rule says the profile wins, the profile value is written and the conflict recorded', async () => {
    const { f, crm, id, profile } = await setup();
    tick(60_000);
    crm.repEdit('contacts', id, { crmhub_plan: 'rep-plan' });
    crm.outbox.length = 0;
    tick(10);
    await profileEdit(f, profile, { plan: 'enterprise' });
    await f.engine.push('alpha');
    // plan is prefer_profile in the fixture mapping.
    expect(crm.record('contacts', id)?.fields.crmhub_plan).toBe('enterprise');
    const conflicts = await f.store.listConflicts({ limit: 10 });
    expect(conflicts.map((c) => [c.field, c.resolution])).toContainEqual(['crmhub_plan', 'profile']);
    await deliverWebhooks(f.engine, crm);
    await f.engine.push('alpha');
    expect(await f.store.pendingOutboxCount()).toBe(0);
  });

  it('off: the same sequence overwrites the rep edit (what the guard prevents)', async () => {
    const { f, crm, id, profile } = await setup({ readBeforeWrite: 'off' });
    tick(60_000);
    await profileEdit(f, profile, { first_name: 'Ada P' });
    tick(10);
    crm.repEdit('contacts', id, { firstname: 'Ada R' });
    crm.outbox.length = 0;
    await f.engine.push('alpha');
    expect(crm.record('contacts', id)?.fields.firstname).toBe('Ada P');
    expect(crm.calls.readChanges).toBe(1); // the set-up pull only
  });

  it('ids: reads the linked records per batch and protects the rep edit the same way', async () => {
    const { f, crm, id, profile } = await setup({ readBeforeWrite: 'ids' });
    tick(60_000);
    await profileEdit(f, profile, { first_name: 'Ada P' });
    tick(10);
    crm.repEdit('contacts', id, { firstname: 'Ada R' });
    crm.outbox.length = 0;
    await f.engine.push('alpha');
    expect(crm.record('contacts', id)?.fields.firstname).toBe('Ada R');
    expect(crm.calls.readByIds).toBe(1);
    expect(crm.calls.readChanges).toBe(1); // the set-up pull only
  });

  it('pull: one pull per freshness window, shared by concurrent rounds; none without updates', async () => {
    const { f, crm, profile } = await setup();
    // Within the window of the set-up pull: no guard pull at all.
    await profileEdit(f, profile, { plan: 'p1' });
    await f.engine.push('alpha');
    expect(crm.calls.readChanges).toBe(1);
    tick(60_000);
    // Many linked records, pushed in several rounds side by side: still one pull.
    const others: ProfileId[] = [];
    for (let i = 0; i < 30; i++)
      crm.repEdit('contacts', undefined, { email: `p${i}@x.io`, firstname: `P${i}` });
    crm.outbox.length = 0;
    await f.engine.pull('alpha', 'contacts');
    tick(60_000);
    for (let i = 0; i < 30; i++) {
      const [link] = await f.store.read().findIdentifiers([{ type: 'email', value: `p${i}@x.io` }]);
      others.push(link!.profileId);
    }
    const before = crm.calls.readChanges ?? 0;
    for (const p of others) await profileEdit(f, p, { plan: 'p2' });
    const pushed = await f.engine.push('alpha', { limit: 5 });
    expect(pushed.updated).toBe(30);
    expect((crm.calls.readChanges ?? 0) - before).toBe(1);
    // Creates alone never pull.
    tick(60_000);
    const created = await f.store.transaction(async (tx) => {
      const p = await tx.createProfile('person', new Date(tick()).toISOString());
      await tx.writeTraits(p.id, [
        { key: 'email', value: 'new@x.io', source: 'event', changedAt: new Date(tick()).toISOString() },
      ]);
      await f.engine.onProfilesChanged(tx, [p.id]);
      return p.id;
    });
    const beforeCreate = crm.calls.readChanges ?? 0;
    expect((await f.engine.push('alpha')).created).toBe(1);
    expect(crm.calls.readChanges ?? 0).toBe(beforeCreate);
    expect(created).toBeTruthy();
  });

  it('pull: an object never pulled falls back to ids (its first pull would read everything)', async () => {
    const f = await baseFixture(
      ['alpha'],
      dialect === 'sqlite'
        ? {}
        : (() => {
            const schema = `rbw_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
            schemas.push(schema);
            return { url: pgUrl, storeSchema: schema };
          })(),
    );
    fx = f;
    const crm = f.crms.get('alpha')!;
    const id = crm.repEdit('contacts', undefined, { email: 'w@x.io', firstname: 'W' });
    await deliverWebhooks(f.engine, crm); // linked by webhook; no pull cursor yet
    const [link] = await f.store.read().findIdentifiers([{ type: 'alpha.contacts', value: id }]);
    crm.repEdit('contacts', id, { firstname: 'W rep' });
    crm.outbox.length = 0;
    await profileEdit(f, link!.profileId, { first_name: 'W old' });
    // The profile change is older than the rep edit only if stamped before it: make it so.
    await f.store.transaction((tx) =>
      tx.writeTraits(link!.profileId, [
        { key: 'first_name', value: 'W old', source: 'event', changedAt: '2000-01-01T00:00:00.000Z' },
      ]),
    );
    await f.engine.push('alpha');
    expect(crm.calls.readChanges ?? 0).toBe(0);
    expect(crm.calls.readByIds).toBe(2); // the webhook's read, and the guard's
    expect(crm.record('contacts', id)?.fields.firstname).toBe('W rep');
  });

  it('pull: when the guard pull fails, updates wait for a retry while creates go on', async () => {
    const { f, crm, profile } = await setup({ retry: { baseMs: 10, maxMs: 100, maxAttempts: 2 } });
    tick(60_000);
    await profileEdit(f, profile, { plan: 'pro' });
    await f.store.transaction(async (tx) => {
      const p = await tx.createProfile('person', new Date(tick()).toISOString());
      await tx.writeTraits(p.id, [
        { key: 'email', value: 'fresh@x.io', source: 'event', changedAt: new Date(tick()).toISOString() },
      ]);
      await f.engine.onProfilesChanged(tx, [p.id]);
    });
    const original = crm.readChanges.bind(crm);
    crm.readChanges = () => Promise.reject(new CrmhubError('transient', 'reset', { code: 'ECONNRESET' }));
    const failed = await f.engine.pushOnce('alpha');
    expect(failed).toMatchObject({ retried: 1, created: 1, updated: 0 });
    expect(
      crm.record(
        'contacts',
        (await f.store.read().findRemoteRecordsByProfile('alpha', 'contacts', profile))[0]!.remoteId,
      )?.fields.crmhub_plan,
    ).toBe('free');
    crm.readChanges = original;
    tick(60_000);
    const ok = await f.engine.push('alpha');
    expect(ok.updated).toBe(1);
    expect(await f.store.listDeadLetters({ limit: 5 })).toEqual([]);
  });
});

describe('read-before-write settings', () => {
  it('CRMHUB_READ_BEFORE_WRITE and its freshness are validated, with pull / 60 s by default', () => {
    expect(loadConfig({}, null).sync).toEqual({
      readBeforeWrite: 'pull',
      readBeforeWriteFreshnessMs: 60_000,
    });
    expect(
      loadConfig({ CRMHUB_READ_BEFORE_WRITE: 'ids', CRMHUB_READ_BEFORE_WRITE_FRESHNESS_MS: '5000' }, null)
        .sync,
    ).toEqual({
      readBeforeWrite: 'ids',
      readBeforeWriteFreshnessMs: 5_000,
    });
    expect(() => loadConfig({ CRMHUB_READ_BEFORE_WRITE: 'sometimes' }, null)).toThrow(
      /CRMHUB_READ_BEFORE_WRITE/,
    );
  });

  it('the engine takes the kind, and the older boolean form (true = the default guard, false = off)', async () => {
    const kinds: string[] = [];
    for (const readBeforeWrite of [undefined, true, false, 'ids'] as const) {
      const f = await baseFixture(['alpha'], readBeforeWrite === undefined ? {} : { readBeforeWrite });
      kinds.push(f.engine.ctx.readBeforeWrite);
      await f.close();
    }
    expect(kinds).toEqual(['pull', 'pull', 'off', 'ids']);
  });
});
