/**
 * Shared fixtures for engine tests: memory CRMs with a contacts mapping each, and an engine on a
 * private store.
 */
import pg from 'pg';
import { afterAll } from 'vitest';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import type { Connector } from '../../src/connector-kit/connector.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { SyncEngine, type SyncEngineOptions } from '../../src/sync/sync-engine.ts';
import type { ConflictRule, SyncMappings, SyncObjectMapping } from '../../src/sync/sync-types.ts';

/** The Postgres the engine tests use (`CRMHUB_TEST_POSTGRES_URL`, else the local server). */
export const pgUrl = process.env.CRMHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Call at a test file's top level: the schemas pushed onto the returned list are dropped after its tests. */
export function dropSchemasAfterAll(): string[] {
  const schemas: string[] = [];
  afterAll(async () => {
    if (schemas.length === 0) return;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await client.end();
  });
  return schemas;
}

export function contactsMapping(
  connector: string,
  rules: Partial<Record<'first_name' | 'plan', ConflictRule>> = {},
): SyncObjectMapping {
  return {
    connector,
    object: 'contacts',
    profileKind: 'person',
    version: `v1-${connector}`,
    tieBreaker: 'profile',
    match: [
      { remote: 'crmhub_id', identifier: 'profile_id' },
      { remote: 'email', identifier: 'email' },
    ],
    onNoMatch: 'create',
    fields: [
      {
        profileKey: 'email',
        remoteField: 'email',
        toProfile: true,
        toRemote: true,
        rule: 'prefer_remote_unless_empty',
        onEmpty: 'ignore',
      },
      {
        profileKey: 'first_name',
        remoteField: 'firstname',
        toProfile: true,
        toRemote: true,
        rule: rules.first_name ?? 'latest_wins',
        onEmpty: 'ignore',
      },
      {
        profileKey: 'plan',
        remoteField: 'crmhub_plan',
        toProfile: true,
        toRemote: true,
        rule: rules.plan ?? 'prefer_profile',
        onEmpty: 'ignore',
      },
    ],
  };
}

export function staticMappings(list: SyncObjectMapping[]): SyncMappings {
  return {
    list: () => list,
    get: (connector, object) => list.find((m) => m.connector === connector && m.object === object),
  };
}

export interface EngineFixture {
  store: ProfileStore;
  crms: Map<string, MemoryConnector>;
  engine: SyncEngine;
  close(): Promise<void>;
}

export async function engineFixture(
  slugs: string[],
  options: Partial<SyncEngineOptions> & { url?: string; storeSchema?: string } = {},
): Promise<EngineFixture> {
  const store =
    options.store ??
    (await openStore(
      options.url ?? 'sqlite::memory:',
      options.storeSchema ? { schema: options.storeSchema } : {},
    ));
  const crms = new Map(
    slugs.map((s) => [s, new MemoryConnector({ slug: s, ...(options.now ? { now: options.now } : {}) })]),
  );
  const engine = new SyncEngine({
    store,
    connectors: new Map<string, Connector>(crms),
    mappings: staticMappings(slugs.map((s) => contactsMapping(s))),
    retry: { baseMs: 10, maxMs: 100, maxAttempts: 4 },
    ...options,
  });
  return {
    store,
    crms,
    engine,
    async close() {
      await engine.close();
      await store.close();
    },
  };
}

/** Delivers every pending webhook of a memory CRM to the engine and waits for processing. */
export async function deliverWebhooks(engine: SyncEngine, crm: MemoryConnector): Promise<void> {
  if (crm.outbox.length === 0) return;
  await engine.receiveWebhook(crm.declaration.slug, crm.buildWebhook());
  await engine.settled();
}
