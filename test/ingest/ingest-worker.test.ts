/**
 * The ingest worker thread (EventIngestor `worker: true` on a SQLite file): it must store exactly
 * what the in-process path stores, run the `onProfilesChanged` hook inside its own transaction
 * (writes commit with the group, a failing hook rolls it back), give the write turn back to the
 * main store's transactions, and hand over to the in-process path if it dies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { IdentityResolver } from '../../src/identity/identity-resolver.ts';
import { EventIngestor, type ProfilesChangedHook } from '../../src/ingest/event-ingestor.ts';
import type { Outcome } from '../../src/ingest/group-committer.ts';
import type { EventOutcome } from '../../src/ingest/ingest-group.ts';
import type { IngestWorker } from '../../src/ingest/ingest-worker-client.ts';
import { validateEvent, type IngestEvent } from '../../src/ingest/validate-events.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { events, snapshot, T } from './group-fixtures.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-ingest-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fileStore = (): Promise<ProfileStore> => openStore(`sqlite:${path.join(dir, `w${(n += 1)}.db`)}`);

function identify(userId: string, messageId: string, traits: Record<string, unknown> = { email: `${userId}@example.com` }): IngestEvent {
  const r = validateEvent({ userId, messageId, timestamp: T(1), traits }, 'identify');
  if (!r.ok) throw new TypeError(JSON.stringify(r.issues));
  return r.event;
}

const status = (o: Outcome<EventOutcome>): string => (o.ok ? o.value.status : 'failed');

/** The worker behind an ingestor (test-only access to a private field). */
const workerOf = (ingestor: EventIngestor): IngestWorker | null => (ingestor as unknown as { worker: IngestWorker | null }).worker;

describe('EventIngestor with the worker thread', () => {
  it('stores a group exactly as the in-process path does', async () => {
    const all = events();
    const viaWorker = await fileStore();
    const inProcess = await openStore('sqlite::memory:');
    try {
      const w = new EventIngestor({ store: viaWorker, identity: new IdentityResolver(), worker: true });
      expect(workerOf(w)).not.toBeNull();
      const a = await w.ingest(all, T(10_000));
      expect(workerOf(w)?.alive).toBe(true);
      await w.close();
      const p = new EventIngestor({ store: inProcess, identity: new IdentityResolver() });
      const b = await p.ingest(all, T(10_000));
      await p.close();
      expect(a.map(status)).toEqual(b.map(status));
      expect(a.map(status)).toContain('duplicate');
      expect(await snapshot(viaWorker, all)).toEqual(await snapshot(inProcess, all));
    } finally {
      await viaWorker.close();
      await inProcess.close();
    }
  });

  it('runs the hook inside the worker transaction: its writes commit with the group', async () => {
    const store = await fileStore();
    const seen: ProfileId[] = [];
    const hook: ProfilesChangedHook = async (tx, ids) => {
      for (const id of ids) {
        seen.push(id);
        const profile = await tx.resolveProfile(id);
        await tx.writeTraits(profile!.id, [{ key: 'hooked', value: true, source: 'test', changedAt: T(2) }]);
      }
    };
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), worker: true, onProfilesChanged: hook });
    try {
      const [outcome] = await ingestor.ingest([identify('ada', 'm-1')], T(10));
      expect(outcome?.ok).toBe(true);
      const profileId = (outcome as { ok: true; value: EventOutcome }).value.profileId as ProfileId;
      expect(seen).toEqual([profileId]);
      const traits = await store.read().getTraits(profileId);
      expect(traits.find((t) => t.key === 'hooked')?.value).toBe(true);
      expect(traits.find((t) => t.key === 'email')?.value).toBe('ada@example.com');
    } finally {
      await ingestor.close();
      await store.close();
    }
  });

  it('rolls the group back when the hook fails, and refuses a nested transaction from the hook', async () => {
    const store = await fileStore();
    let mode: 'throw' | 'nested' = 'throw';
    const hook: ProfilesChangedHook = async () => {
      if (mode === 'throw') throw new TypeError('hook broke');
      // In-process this is refused as nested; through the worker it must be too (not a deadlock).
      await store.transaction(() => Promise.resolve());
    };
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), worker: true, onProfilesChanged: hook });
    try {
      const [failed] = await ingestor.ingest([identify('bob', 'm-2')], T(10));
      expect(failed?.ok).toBe(false);
      expect(String((failed as { error: unknown }).error)).toMatch(/hook broke/);
      expect(await store.read().hasEvent('m-2')).toBe(false);
      expect(await store.read().findIdentifiers([{ type: 'user_id', value: 'bob' }])).toEqual([]);
      mode = 'nested';
      const [nested] = await ingestor.ingest([identify('cy', 'm-3')], T(10));
      expect(nested?.ok).toBe(false);
      expect(String((nested as { error: unknown }).error)).toMatch(/nested/);
      expect(await store.read().hasEvent('m-3')).toBe(false);
      // Without the hook the same event goes through.
      ingestor.setProfilesChangedHook(undefined);
      expect((await ingestor.ingest([identify('cy', 'm-3')], T(10))).map(status)).toEqual(['stored']);
    } finally {
      await ingestor.close();
      await store.close();
    }
  });

  it('gives the write turn back: main-thread transactions get through while events keep coming', async () => {
    const store = await fileStore();
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), worker: true });
    try {
      let stop = false;
      const feeders = [0, 1, 2].map(async (f) => {
        let sent = 0;
        for (let i = 0; !stop && i < 200; i++) {
          const out = await ingestor.ingest([identify(`u-${f}-${i % 20}`, `feed-${f}-${i}`, { n: i })], T(i));
          expect(out.map(status)).toEqual(['stored']);
          sent += 1;
        }
        return sent;
      });
      // Main-thread writers while the worker is busy: each must get its turn.
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await store.transaction(async (tx) => (await tx.createProfile('account', T(i))).id));
      stop = true;
      const sent = await Promise.all(feeders);
      expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      for (const id of ids) expect((await store.read().getProfile(id))?.kind).toBe('account');
    } finally {
      await ingestor.close();
      await store.close();
    }
  });

  it('carries on in-process when the worker dies', async () => {
    const store = await fileStore();
    const stopped: Error[] = [];
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), worker: true, onWorkerStopped: (e) => stopped.push(e) });
    try {
      expect((await ingestor.ingest([identify('dee', 'm-4')], T(10))).map(status)).toEqual(['stored']);
      const worker = workerOf(ingestor);
      // Test-only: end the thread as a crash would.
      await (worker as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect(worker?.alive).toBe(false);
      expect((await ingestor.ingest([identify('dee', 'm-5'), identify('eve', 'm-6')], T(10))).map(status)).toEqual(['stored', 'stored']);
      expect(stopped).toHaveLength(1);
      expect(workerOf(ingestor)).toBeNull();
      expect(await store.read().hasEvent('m-6')).toBe(true);
    } finally {
      await ingestor.close();
      await store.close();
    }
  });

  it('stays in-process for stores without a file', async () => {
    const store = await openStore('sqlite::memory:');
    const ingestor = new EventIngestor({ store, identity: new IdentityResolver(), worker: true });
    try {
      expect(workerOf(ingestor)).toBeNull();
      expect((await ingestor.ingest([identify('fay', 'm-7')], T(10))).map(status)).toEqual(['stored']);
    } finally {
      await ingestor.close();
      await store.close();
    }
  });
});
