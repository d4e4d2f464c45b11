/**
 * End to end against the sandbox, with the sync engine on an in-memory SQLite store: a rep's edit
 * reaches the profile through a webhook; a CDP trait change reaches Pipedrive; our own write's
 * webhook does not echo; a conflict resolves per the mapping's rule; a deleted person is handled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookRequest } from '../../../src/connector-kit/connector.ts';
import type { ProfileId } from '../../../src/core/types.ts';
import { openStore } from '../../../src/store/open-store.ts';
import type { ProfileStore } from '../../../src/store/port.ts';
import { SyncEngine } from '../../../src/sync/sync-engine.ts';
import type { SyncObjectMapping } from '../../../src/sync/sync-types.ts';
import { startPipedriveRig, type PipedriveTestRig } from './sandbox-harness.ts';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from './webhook-receiver.ts';

const mapping: SyncObjectMapping = {
  connector: 'pipedrive',
  object: 'persons',
  profileKind: 'person',
  version: 'e2e-1',
  tieBreaker: 'profile',
  match: [
    { remote: 'crmhub id', identifier: 'profile_id' },
    { remote: 'email', identifier: 'email' },
  ],
  onNoMatch: 'create',
  fields: [
    { profileKey: 'email', remoteField: 'email', toProfile: true, toRemote: true, rule: 'prefer_remote_unless_empty', onEmpty: 'ignore' },
    { profileKey: 'first_name', remoteField: 'first_name', toProfile: true, toRemote: true, rule: 'prefer_remote', onEmpty: 'ignore' },
    { profileKey: 'last_name', remoteField: 'last_name', toProfile: true, toRemote: true, rule: 'latest_wins', onEmpty: 'ignore' },
    { profileKey: 'plan', remoteField: 'Plan', toProfile: false, toRemote: true, rule: 'prefer_profile', onEmpty: 'ignore' },
  ],
};

let rig: PipedriveTestRig;
let receiver: WebhookReceiver;
let store: ProfileStore;
let engine: SyncEngine;
let delivered = 0;

function asRequest(hook: ReceivedWebhook): WebhookRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(hook.headers)) if (typeof v === 'string') headers[k] = v;
  return { method: 'POST', url: `${receiver.url}${hook.path}`, headers, rawBody: hook.rawBody, now: Date.now() };
}

/** Hands every webhook the sandbox sent since last time to the engine, and waits for processing. */
async function deliver(): Promise<number> {
  await rig.sb.state.drainWebhooks(5000);
  const fresh = receiver.received.slice(delivered);
  delivered = receiver.received.length;
  for (const hook of fresh) {
    const reply = await engine.receiveWebhook('pipedrive', asRequest(hook));
    expect(reply.status).toBe(200);
  }
  await engine.settled();
  return fresh.length;
}

async function profileFor(type: string, value: string): Promise<{ id: ProfileId; traits: Record<string, unknown> }> {
  const [ident] = await store.read().findIdentifiers([{ type, value }]);
  expect(ident, `${type}:${value}`).toBeDefined();
  const traits = await store.read().getTraits(ident!.profileId);
  return { id: ident!.profileId, traits: Object.fromEntries(traits.map((t) => [t.key, t.value])) };
}

async function setTraits(id: ProfileId, traits: Record<string, string>): Promise<void> {
  const at = new Date().toISOString();
  await store.transaction(async (tx) => {
    await tx.writeTraits(id, Object.entries(traits).map(([key, value]) => ({ key, value, source: 'event', changedAt: at })));
    await engine.onProfilesChanged(tx, [id]);
  });
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  rig = await startPipedriveRig({ webhookTarget: receiver.url });
  store = await openStore('sqlite::memory:');
  engine = new SyncEngine({
    store,
    connectors: new Map([['pipedrive', rig.connector]]),
    mappings: { list: () => [mapping], get: (c, o) => (c === 'pipedrive' && o === 'persons' ? mapping : undefined) },
    retry: { baseMs: 10, maxMs: 100, maxAttempts: 3 },
  });
});

afterAll(async () => {
  await engine.close();
  await store.close();
  await rig.close();
  await receiver.close();
});

describe('Pipedrive end to end', () => {
  let personId: string;
  let profile: ProfileId;

  it("a rep's edit reaches the profile through a webhook", async () => {
    personId = await rig.repCreatePerson({ first_name: 'Grace', last_name: 'Hopper', email: 'grace@navy.example' });
    expect(await deliver()).toBeGreaterThan(0);
    const p = await profileFor('pipedrive.person', personId);
    expect(p.traits).toMatchObject({ email: 'grace@navy.example', first_name: 'Grace', last_name: 'Hopper' });
    profile = p.id;
  });

  it('a CDP trait change reaches Pipedrive, and the echo of our own write changes nothing', async () => {
    await setTraits(profile, { plan: 'enterprise' });
    const before = (await rig.stats()).calls;
    await engine.push('pipedrive');
    const after = (await rig.stats()).calls;
    expect((after['PATCH /api/v2/persons/:id'] ?? 0) - (before['PATCH /api/v2/persons/:id'] ?? 0)).toBe(1);
    expect(after['POST /api/v2/persons'] ?? 0).toBe(before['POST /api/v2/persons'] ?? 0);
    const [read] = await rig.connector.readByIds('persons', [personId]);
    expect(read!.fields['Plan']).toBe('enterprise');
    const mid = (await rig.stats()).calls;
    await deliver(); // the sandbox's webhook for our PATCH (change_source api, our user)
    expect(await store.pendingOutboxCount('pipedrive')).toBe(0);
    await engine.push('pipedrive');
    // Reading the echoed record (and, once, who our token is) is fine; writing anything back is not.
    const end = (await rig.stats()).calls;
    const echoCalls = Object.keys(end).filter((k) => end[k] !== mid[k]);
    expect(echoCalls.every((k) => k === 'GET /api/v2/persons' || k === 'GET /v1/users/me')).toBe(true);
    expect(end['PATCH /api/v2/persons/:id']).toBe(after['PATCH /api/v2/persons/:id']);
  });

  it('a conflict resolves per the mapping: first_name is prefer_remote, so the rep wins', async () => {
    await setTraits(profile, { first_name: 'Amazing' });
    await rig.control('edit', { object: 'persons', id: personId, fields: { name: 'Admiral Hopper' } });
    await deliver();
    await engine.push('pipedrive');
    await deliver();
    const p = await profileFor('pipedrive.person', personId);
    expect(p.traits['first_name']).toBe('Admiral');
    const [read] = await rig.connector.readByIds('persons', [personId]);
    expect(read!.fields['first_name']).toBe('Admiral');
  });

  it('a new profile is created in Pipedrive with one search and one POST', async () => {
    let created: ProfileId | undefined;
    await store.transaction(async (tx) => {
      const p = await tx.createProfile('person', new Date().toISOString());
      created = p.id;
      await tx.writeTraits(p.id, [
        { key: 'email', value: 'ada@engine.example', source: 'event', changedAt: new Date().toISOString() },
        { key: 'first_name', value: 'Ada', source: 'event', changedAt: new Date().toISOString() },
        { key: 'last_name', value: 'Lovelace', source: 'event', changedAt: new Date().toISOString() },
      ]);
      await engine.onProfilesChanged(tx, [p.id]);
    });
    const before = (await rig.stats()).calls;
    await engine.push('pipedrive');
    const after = (await rig.stats()).calls;
    expect((after['GET /api/v2/persons/search'] ?? 0) - (before['GET /api/v2/persons/search'] ?? 0)).toBe(1);
    expect((after['POST /api/v2/persons'] ?? 0) - (before['POST /api/v2/persons'] ?? 0)).toBe(1);
    const links = await store.read().findRemoteRecordsByProfile('pipedrive', 'persons', created!);
    expect(links).toHaveLength(1);
    const [read] = await rig.connector.readByIds('persons', [links[0]!.remoteId]);
    expect(read!.fields).toMatchObject({ name: 'Ada Lovelace', email: 'ada@engine.example', 'crmhub id': created });
  });

  it('a deleted person is handled: its link is marked deleted and nothing is recreated', async () => {
    await rig.control('delete', { object: 'persons', id: personId });
    await deliver();
    const [link] = await store.read().findRemoteRecordsByProfile('pipedrive', 'persons', profile);
    expect(link?.deleted).toBe(true);
    expect(await store.pendingOutboxCount('pipedrive')).toBe(0);
  });
});
