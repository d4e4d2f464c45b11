/**
 * A group commit (one transaction for many events, with the per-transaction cache and the bulk
 * prefetch of identifiers, profiles, identifier lists and traits) must leave the store exactly as
 * storing the same events one transaction each does: same people, same identifiers together, same
 * traits, same events, same possible duplicates.
 */
import { describe, expect, it } from 'vitest';
import { IdentityResolver } from '../../src/identity/identity-resolver.ts';
import { EventIngestor } from '../../src/ingest/event-ingestor.ts';
import { openStore } from '../../src/store/open-store.ts';
import { events, snapshot, T } from './group-fixtures.ts';

describe('EventIngestor group commit', () => {
  it('stores a whole group exactly as one transaction per event would', async () => {
    const all = events();
    const receivedAt = T(10_000);
    const grouped = await openStore('sqlite::memory:');
    const single = await openStore('sqlite::memory:');
    try {
      const g = new EventIngestor({ store: grouped, identity: new IdentityResolver() });
      const outcomesGrouped = await g.ingest(all, receivedAt);
      await g.close();
      const s = new EventIngestor({ store: single, identity: new IdentityResolver() });
      const outcomesSingle = [];
      for (const e of all) outcomesSingle.push(...(await s.ingest([e], receivedAt)));
      await s.close();
      const status = (o: (typeof outcomesGrouped)[number]): string => (o.ok ? o.value.status : 'failed');
      expect(outcomesGrouped.map(status)).toEqual(outcomesSingle.map(status));
      expect(outcomesGrouped.map(status)).toContain('duplicate');
      const a = await snapshot(grouped, all);
      expect(a).toEqual(await snapshot(single, all));
      expect((a as { duplicates: unknown[] }).duplicates.length).toBeGreaterThan(0);
    } finally {
      await grouped.close();
      await single.close();
    }
  });

  it('reports events to metrics once per type and status, with their count', async () => {
    const store = await openStore('sqlite::memory:');
    const calls: [string, string, number][] = [];
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), onEvent: (type, status, count) => calls.push([type, status, count]) });
    try {
      const all = events();
      await ingestor.ingest(all, T(10_000));
      const expected = new Map<string, number>();
      for (const e of all) expected.set(e.type, (expected.get(e.type) ?? 0) + 1);
      const counted = new Map<string, number>();
      for (const [type, , count] of calls) counted.set(type, (counted.get(type) ?? 0) + count);
      expect(counted).toEqual(expected);
      expect(new Set(calls.map(([type, status]) => `${type}/${status}`)).size).toBe(calls.length);
      expect(calls).toContainEqual(['track', 'duplicate', 12]);
    } finally {
      await ingestor.close();
      await store.close();
    }
  });
});
