/**
 * Inbound join keys are the engine's (issue 5): a CRM record whose email is not a unique match key
 * there (Salesforce Contact, Pipedrive person) joins the profile that already has that email —
 * whatever its case — through SyncEngine itself, with the shipped mapping; `identity.join` in a
 * mapping file overrides the default. SQLite and Postgres (CRMHUB_TEST_POSTGRES_URL).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/connector-kit/connector.ts';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import type { ProfileId } from '../../src/core/types.ts';
import { IdentityResolver } from '../../src/identity/identity-resolver.ts';
import { loadMappingText } from '../../src/mapping/load-mappings.ts';
import { validateMappingSource } from '../../src/mapping/validate-mapping.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { identityPortFrom } from '../../src/sync/identity-adapter.ts';
import { inboundJoinKeys } from '../../src/sync/inbound-join-keys.ts';
import { syncMappingsFrom, threeWayPlanner } from '../../src/sync/planner-adapter.ts';
import { SyncEngine } from '../../src/sync/sync-engine.ts';
import type { SyncObjectMapping } from '../../src/sync/sync-types.ts';
import { dropSchemasAfterAll, pgUrl } from './sync-fixtures.ts';

const schemas = dropSchemasAfterAll();

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const CONTACT_FILE = new URL('../../mappings/salesforce/Contact.yaml', import.meta.url);
const shippedContact = readFileSync(CONTACT_FILE, 'utf8');

/** The shipped Salesforce Contact mapping (match: Crmhub_Id__c only), optionally edited. */
function contactMapping(text = shippedContact): SyncObjectMapping {
  const loaded = loadMappingText(CONTACT_FILE.pathname, 'salesforce/Contact.yaml', text);
  expect(loaded.issues.filter((i) => i.severity === 'error')).toEqual([]);
  const compiled = loaded.compiled!;
  const mapping = syncMappingsFrom({ all: () => [compiled] }).get('salesforce', 'Contact');
  return mapping!;
}

describe('inboundJoinKeys', () => {
  const base: SyncObjectMapping = {
    connector: 'salesforce',
    object: 'Contact',
    profileKind: 'person',
    version: 'v1',
    tieBreaker: 'profile',
    fields: [
      {
        profileKey: 'email',
        remoteField: 'Email',
        toProfile: true,
        toRemote: true,
        rule: 'latest_wins',
        onEmpty: 'ignore',
      },
      {
        profileKey: 'phone',
        remoteField: 'Phone',
        toProfile: true,
        toRemote: true,
        rule: 'latest_wins',
        onEmpty: 'ignore',
      },
    ],
    match: [{ remote: 'Crmhub_Id__c', identifier: 'profile_id' }],
    onNoMatch: 'create',
  };

  it('adds the email field after the match keys on person mappings, and leaves the mapping as it is', () => {
    expect(inboundJoinKeys(base)).toEqual([
      { remote: 'Crmhub_Id__c', identifier: 'profile_id' },
      { remote: 'Email', identifier: 'email' },
    ]);
    expect(base.match).toHaveLength(1);
  });

  it('no duplicate when email is already a match key; none for accounts, to_remote-only email, or `join: []`', () => {
    expect(inboundJoinKeys({ ...base, match: [{ remote: 'Email', identifier: 'email' }] })).toEqual([
      { remote: 'Email', identifier: 'email' },
    ]);
    expect(inboundJoinKeys({ ...base, profileKind: 'account' })).toEqual(base.match);
    expect(
      inboundJoinKeys({ ...base, fields: base.fields.map((f) => ({ ...f, toProfile: false })) }),
    ).toEqual(base.match);
    expect(inboundJoinKeys({ ...base, join: [] })).toEqual(base.match);
    expect(inboundJoinKeys({ ...base, join: [{ remote: 'Phone', identifier: 'phone' }] })).toEqual([
      ...base.match,
      { remote: 'Phone', identifier: 'phone' },
    ]);
  });

  it('the shipped Salesforce Contact mapping joins on Email by default; `identity.join` is compiled and validated', () => {
    expect(inboundJoinKeys(contactMapping()).map((k) => k.remote)).toEqual(['Crmhub_Id__c', 'Email']);
    const edited = shippedContact.replace(
      '  on_no_match: create',
      '  join:\n    - remote: Phone\n      identifier: phone\n  on_no_match: create',
    );
    expect(contactMapping(edited).join).toEqual([{ remote: 'Phone', identifier: 'phone' }]);
    const typo = validateMappingSource(
      shippedContact.replace(
        '  on_no_match: create',
        '  join:\n    - remote: Emial\n      identifier: email\n  on_no_match: create',
      ),
      { file: 'Contact.yaml' },
    );
    expect(typo.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'E_UNKNOWN_FIELD', message: expect.stringContaining('Emial') }),
      ]),
    );
  });
});

describe.each(['sqlite', 'postgres'] as const)('SyncEngine inbound email join on %s', (dialect) => {
  const open = async (): Promise<ProfileStore> => {
    if (dialect === 'sqlite') return openStore('sqlite::memory:');
    const schema = `join_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    schemas.push(schema);
    return openStore(pgUrl, { schema });
  };

  async function setup(options: { mapping?: SyncObjectMapping; realResolver?: boolean } = {}): Promise<{
    store: ProfileStore;
    crm: MemoryConnector;
    engine: SyncEngine;
    existing: ProfileId;
    known: (email: string) => Promise<ProfileId>;
  }> {
    const store = await open();
    // Memory record ids ("1", "2") are not Salesforce ids, which the identity registry checks: the
    // record-id identifier gets a type of its own.
    const crm = new MemoryConnector({
      slug: 'salesforce',
      objects: [{ name: 'Contact', upsertKeys: ['Crmhub_Id__c'], identifierType: 'sfmemory.contact' }],
    });
    const mapping = options.mapping ?? contactMapping();
    const resolver = new IdentityResolver();
    const engine = new SyncEngine({
      store,
      connectors: new Map<string, Connector>([['salesforce', crm]]),
      mappings: {
        list: () => [mapping],
        get: (c, o) => (c === mapping.connector && o === mapping.object ? mapping : undefined),
      },
      planner: threeWayPlanner,
      ...(options.realResolver ? { identity: identityPortFrom(resolver) } : {}),
    });
    cleanup.push(async () => {
      await engine.close();
      await store.close();
    });
    // Profiles the CDP already knows (an identify with the email).
    const known = (email: string): Promise<ProfileId> =>
      store.transaction(
        async (tx) =>
          (
            await resolver.resolve(tx, {
              kind: 'person',
              identifiers: [{ type: 'email', value: email, source: 'event' }],
              at: new Date().toISOString(),
              trigger: `identify:${email}`,
            })
          ).profileId,
      );
    return { store, crm, engine, existing: await known('ada@example.com'), known };
  }

  const profileOfRecord = async (store: ProfileStore, id: string): Promise<ProfileId | undefined> =>
    (await store.read().findIdentifiers([{ type: 'sfmemory.contact', value: id }]))[0]?.profileId;

  it.each([
    ['the engine default resolver', false],
    ['the identity resolver', true],
  ] as const)(
    'a CRM record with the same email in another case links to the existing profile (%s)',
    async (_name, realResolver) => {
      const { store, crm, engine, existing, known } = await setup({ realResolver });
      // Already in Salesforce before crmhub: no crmhub id, the email typed differently.
      const pulled = crm.repEdit('Contact', undefined, { Email: 'Ada@Example.COM', LastName: 'Lovelace' });
      crm.outbox.splice(0);
      const counts = await engine.pull('salesforce', 'Contact');
      expect(counts).toMatchObject({ created: 0, updated: 1 });
      expect(await profileOfRecord(store, pulled)).toBe(existing);
      expect((await store.read().getTraits(existing)).find((t) => t.key === 'last_name')?.value).toBe(
        'Lovelace',
      );

      // The webhook path joins the same way.
      const bob = await known('bob@example.com');
      const hooked = crm.repEdit('Contact', undefined, { Email: '  BOB@example.com ', LastName: 'Byron' });
      await engine.receiveWebhook('salesforce', crm.buildWebhook());
      await engine.settled();
      expect(await profileOfRecord(store, hooked)).toBe(bob);
      const emails = await store.read().findIdentifiers([
        { type: 'email', value: 'ada@example.com' },
        { type: 'email', value: 'bob@example.com' },
      ]);
      expect(emails.map((e) => e.profileId).sort()).toEqual([existing, bob].sort());
    },
  );

  it('`identity.join: []` turns the email join off: the record gets its own profile', async () => {
    const mapping = contactMapping(
      shippedContact.replace('  on_no_match: create', '  join: []\n  on_no_match: create'),
    );
    const { store, crm, engine, existing } = await setup({ mapping });
    const id = crm.repEdit('Contact', undefined, { Email: 'Ada@Example.COM', LastName: 'Lovelace' });
    crm.outbox.splice(0);
    expect(await engine.pull('salesforce', 'Contact')).toMatchObject({ created: 1 });
    const other = await profileOfRecord(store, id);
    expect(other).toBeDefined();
    expect(other).not.toBe(existing);
  });
});
