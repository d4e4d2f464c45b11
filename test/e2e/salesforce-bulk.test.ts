/**
 * Issue 7: a 10,000-record initial sync into Salesforce goes through Bulk API 2.0 — end to end
 * through the hub (store → outbox → engine → connector → sandbox), not only at the connector.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';
import { startSandboxes } from '../../src/cli/commands/sandbox.ts';
import { openRuntime } from '../../src/cli/runtime.ts';
import type { ProfileId } from '../../src/core/types.ts';

const PEOPLE = 10_000;

describe('salesforce: initial sync of 10,000 profiles', () => {
  let dir: string;
  let sandbox: RunningSandbox;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'crmhub-sf-bulk-'));
    [sandbox] = (await startSandboxes({ only: ['salesforce'] })) as [RunningSandbox];
  });

  afterAll(async () => {
    await sandbox?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates every Contact through Bulk API 2.0 ingest jobs, with no collection calls', async () => {
    const env = {
      ...sandbox.env,
      CRMHUB_DATABASE_URL: `sqlite:${path.join(dir, 'hub.db')}`,
      CRMHUB_MAPPINGS_DIR: path.resolve('mappings'),
      CRMHUB_LOG_LEVEL: 'silent',
    };
    const runtime = await openRuntime({ env, logger: pino({ level: 'silent' }) });
    try {
      const at = new Date().toISOString();
      // Profiles as ingestion would leave them: identifiers, traits, outbox rows in one transaction.
      for (let start = 0; start < PEOPLE; start += 1_000) {
        await runtime.store.transaction(async (tx) => {
          const ids: ProfileId[] = [];
          for (let i = start; i < start + 1_000; i++) {
            const profile = await tx.createProfile('person', at);
            await tx.addIdentifier({ type: 'email', value: `person${i}@bulk.example.com`, profileId: profile.id, source: 'event', at });
            await tx.writeTraits(profile.id, [
              { key: 'email', value: `person${i}@bulk.example.com`, source: 'event', changedAt: at },
              { key: 'first_name', value: `First${i}`, source: 'event', changedAt: at },
              { key: 'last_name', value: `Last${i}`, source: 'event', changedAt: at },
            ]);
            ids.push(profile.id);
          }
          await runtime.engine.onProfilesChanged(tx, ids);
        });
      }
      const counts = await runtime.engine.push('salesforce', { object: 'Contact' });
      expect(counts.created).toBe(PEOPLE);
      expect(counts.deadLettered).toBe(0);

      const stats = (await (await fetch(`${sandbox.baseUrl}/_sandbox/stats`)).json()) as { calls: Record<string, number>; records: Record<string, number> };
      expect(stats.records.Contact).toBe(PEOPLE);
      const calls = Object.entries(stats.calls);
      const bulkCreates = calls.filter(([route]) => route.startsWith('POST ') && route.endsWith('/jobs/ingest')).reduce((n, [, c]) => n + c, 0);
      const collectionCalls = calls.filter(([route]) => route.includes('/composite/sobjects')).reduce((n, [, c]) => n + c, 0);
      expect(bulkCreates).toBe(1);
      expect(collectionCalls).toBe(0);
      // Every Contact is linked back to its profile (its id is an identifier of the profile).
      const linked = await runtime.store.read().findIdentifiers([{ type: 'email', value: 'person9999@bulk.example.com' }]);
      const remote = await runtime.store.read().findRemoteRecordsByProfile('salesforce', 'Contact', linked[0]!.profileId);
      expect(remote).toHaveLength(1);
    } finally {
      await runtime.close();
    }
  }, 120_000);
});
