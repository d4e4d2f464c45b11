/**
 * The engine sends the calls a connector declares as searches (`limits.search.usedBy`) through the
 * connection's search limiter as well as the general one (issue 5: HubSpot pulls are searches).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hubspotDeclaration } from '../../connectors/hubspot/declaration.ts';
import type { Connector, ConnectorLimits } from '../../src/connector-kit/connector.ts';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { SyncEngine } from '../../src/sync/sync-engine.ts';
import { contactsMapping, staticMappings } from './sync-fixtures.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function engineWith(
  limits: ConnectorLimits,
): Promise<{ engine: SyncEngine; crm: MemoryConnector; store: ProfileStore }> {
  const store = await openStore('sqlite::memory:');
  const crm = new MemoryConnector({ slug: 'alpha', limits });
  const engine = new SyncEngine({
    store,
    connectors: new Map<string, Connector>([['alpha', crm]]),
    mappings: staticMappings([contactsMapping('alpha')]),
    pageSize: 2,
  });
  cleanup.push(async () => {
    await engine.close();
    await store.close();
  });
  return { engine, crm, store };
}

describe('search budget in the engine', () => {
  it('pulls spend the search budget when the connector declares readChanges a search; webhook reads do not', async () => {
    const { engine, crm } = await engineWith({
      requestsPerWindow: 100,
      windowMs: 1_000,
      maxConcurrent: 5,
      search: { requestsPerWindow: 50, windowMs: 1_000, usedBy: ['readChanges'] },
    });
    for (let i = 0; i < 5; i++) crm.repEdit('contacts', undefined, { email: `s${i}@x.io` });
    crm.outbox.splice(0);
    await engine.pull('alpha', 'contacts');
    const throttle = engine.ctx.throttle('alpha');
    expect(crm.calls.readChanges).toBeGreaterThanOrEqual(3); // 5 records, pages of 2
    expect(throttle.searchScheduled).toBe(crm.calls.readChanges);
    crm.repEdit('contacts', undefined, { email: 'hook@x.io' });
    await engine.receiveWebhook('alpha', crm.buildWebhook());
    await engine.settled();
    expect(crm.calls.readByIds).toBe(1);
    expect(throttle.searchScheduled).toBe(crm.calls.readChanges);
  });

  it('a declared budget without `usedBy` (the connector paces its own searches) leaves pulls alone', async () => {
    const { engine, crm } = await engineWith({
      requestsPerWindow: 100,
      windowMs: 1_000,
      maxConcurrent: 5,
      search: { requestsPerWindow: 1, windowMs: 60_000 },
    });
    crm.repEdit('contacts', undefined, { email: 'one@x.io' });
    await engine.pull('alpha', 'contacts');
    expect(engine.ctx.throttle('alpha').searchScheduled).toBe(0);
  });

  it('HubSpot declares its pulls (search API) against its search budget', () => {
    expect(hubspotDeclaration().limits.search).toMatchObject({
      requestsPerWindow: 5,
      windowMs: 1_000,
      usedBy: ['readChanges'],
    });
  });
});
