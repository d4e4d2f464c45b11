import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
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

async function profileOf(
  f: EngineFixture,
  type: string,
  value: string,
): Promise<{ id: ProfileId; traits: Record<string, unknown> }> {
  const [ident] = await f.store.read().findIdentifiers([{ type, value }]);
  expect(ident, `${type}:${value} known`).toBeDefined();
  const traits = await f.store.read().getTraits(ident!.profileId);
  return { id: ident!.profileId, traits: Object.fromEntries(traits.map((t) => [t.key, t.value])) };
}

describe.each(['sqlite', 'postgres'] as const)('SyncEngine on %s', (dialect) => {
  const engineFixture = (
    slugs: string[],
    options: Parameters<typeof baseFixture>[1] = {},
  ): Promise<EngineFixture> => {
    if (dialect === 'sqlite') return baseFixture(slugs, options);
    const schema = `sync_eng_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    schemas.push(schema);
    return baseFixture(slugs, { ...options, url: pgUrl, storeSchema: schema });
  };

  describe('round trip', () => {
    it('a rep edit reaches the profile and the other CRM once, and the echo sends nothing', async () => {
      fx = await engineFixture(['alpha', 'beta']);
      const alpha = fx.crms.get('alpha')!;
      const beta = fx.crms.get('beta')!;
      const id = alpha.repEdit('contacts', undefined, { email: 'ada@example.com', firstname: 'Ada' });
      await deliverWebhooks(fx.engine, alpha);
      const p = await profileOf(fx, 'alpha.contacts', id);
      expect(p.traits).toMatchObject({ email: 'ada@example.com', first_name: 'Ada' });

      const pushed = await fx.engine.push('beta');
      expect(pushed.created).toBe(1);
      const [b] = beta.records('contacts');
      expect(b?.fields).toMatchObject({ email: 'ada@example.com', firstname: 'Ada', crmhub_id: p.id });
      // Nothing goes back to alpha: its own change is not echoed to it.
      expect(await fx.store.pendingOutboxCount('alpha')).toBe(0);

      // beta's webhook for our own write changes nothing and enqueues nothing.
      await deliverWebhooks(fx.engine, beta);
      expect(await fx.store.pendingOutboxCount()).toBe(0);
      await fx.engine.push('alpha');
      await fx.engine.push('beta');
      expect(alpha.calls.write ?? 0).toBe(0);
      expect(beta.calls.write).toBe(1);
      expect((await profileOf(fx, 'beta.contacts', b!.id)).id).toBe(p.id);
    });

    it('sends only changed fields on profile-side changes, coalescing rows for one record', async () => {
      fx = await engineFixture(['alpha']);
      const alpha = fx.crms.get('alpha')!;
      const id = alpha.repEdit('contacts', undefined, {
        email: 'bo@example.com',
        firstname: 'Bo',
        crmhub_plan: 'free',
      });
      await deliverWebhooks(fx.engine, alpha);
      const p = await profileOf(fx, 'alpha.contacts', id);
      for (const plan of ['starter', 'pro']) {
        await fx.store.transaction(async (tx) => {
          await tx.writeTraits(p.id, [
            { key: 'plan', value: plan, source: 'event', changedAt: new Date().toISOString() },
          ]);
          await fx!.engine.onProfilesChanged(tx, [p.id]);
        });
      }
      const counts = await fx.engine.push('alpha');
      // Two rows for one record: coalesced (by the store on enqueue, or by the worker) into one write.
      expect(counts.claimed).toBeGreaterThanOrEqual(1);
      // One read of the linked record (the lost-update guard: this object was never pulled, so the
      // default `pull` guard falls back to `ids`) and one write.
      expect(counts.apiCalls).toBe(2);
      expect(alpha.calls.readByIds).toBe(2); // the webhook read above, and the guard read
      expect(alpha.writeBatchSizes).toEqual([1]);
      expect(alpha.record('contacts', id)?.fields).toMatchObject({ crmhub_plan: 'pro', firstname: 'Bo' });
      // The echo of that write comes back and is recognised.
      await deliverWebhooks(fx.engine, alpha);
      expect(await fx.store.pendingOutboxCount()).toBe(0);
    });

    it('profile churn that changes no mapped value costs no API call; required fields gate creates', async () => {
      fx = await engineFixture(['alpha']);
      const alpha = fx.crms.get('alpha')!;
      alpha.repEdit('contacts', undefined, { email: 'churn@x.io', firstname: 'C' });
      await deliverWebhooks(fx.engine, alpha);
      const p = await profileOf(fx, 'email', 'churn@x.io');
      const calls = alpha.calls.total;
      // An event touched the profile (e.g. a track call) but no mapped value changed.
      await fx.store.transaction((tx) => fx!.engine.profilesChangedHook(tx, [p.id]));
      const counts = await fx.engine.push('alpha');
      expect(counts.skipped).toBeGreaterThan(0);
      expect(alpha.calls.total).toBe(calls);
      // An anonymous profile without the required email creates no CRM record.
      const mapping = fx.engine.ctx.mappings.get('alpha', 'contacts')!;
      mapping.fields.find((f) => f.profileKey === 'email')!.required = true;
      await fx.store.transaction(async (tx) => {
        const anon = await tx.createProfile('person', new Date().toISOString());
        await tx.writeTraits(anon.id, [
          { key: 'plan', value: 'free', source: 'event', changedAt: new Date().toISOString() },
        ]);
        await fx!.engine.onProfilesChanged(tx, [anon.id]);
      });
      await fx.engine.push('alpha');
      expect(alpha.calls.write ?? 0).toBe(0);
      expect(alpha.records('contacts')).toHaveLength(1);
    });

    it('dead-letters one bad record and writes the rest of the batch', async () => {
      fx = await engineFixture(['alpha']);
      const alpha = fx.crms.get('alpha')!;
      const ids: ProfileId[] = [];
      await fx.store.transaction(async (tx) => {
        for (const [i, email] of ['a@x.io', 'b@x.io', 'c@x.io'].entries()) {
          const p = await tx.createProfile('person', new Date().toISOString());
          await tx.addIdentifier({
            type: 'email',
            value: email,
            profileId: p.id,
            source: 'event',
            at: new Date().toISOString(),
          });
          await tx.writeTraits(p.id, [
            { key: 'email', value: email, source: 'event', changedAt: new Date().toISOString() },
            {
              key: 'first_name',
              value: i === 1 ? 'invalid-name' : `N${i}`,
              source: 'event',
              changedAt: new Date().toISOString(),
            },
          ]);
          ids.push(p.id);
        }
        await fx!.engine.onProfilesChanged(tx, ids);
      });
      const counts = await fx.engine.push('alpha');
      expect(counts).toMatchObject({ created: 2, deadLettered: 1, apiCalls: 1 });
      const dead = await fx.store.listDeadLetters({ limit: 10 });
      expect(dead).toHaveLength(1);
      expect(dead[0]!.reason).toBe('payload:MEMORY_INVALID_VALUE');
      expect(alpha.records('contacts')).toHaveLength(2);
    });

    it('re-queues rate-limited rows without counting the attempt, and pauses on auth failures', async () => {
      // Ahead of the wall clock: the store stamps new rows due at wall-clock now.
      let now = Date.now() + 1_000;
      fx = await engineFixture(['alpha'], { now: () => now });
      const alpha = fx.crms.get('alpha')!;
      await fx.store.transaction(async (tx) => {
        const p = await tx.createProfile('person', new Date(now).toISOString());
        await tx.writeTraits(p.id, [
          { key: 'email', value: 'r@x.io', source: 'event', changedAt: new Date(now).toISOString() },
        ]);
        await fx!.engine.onProfilesChanged(tx, [p.id]);
      });
      alpha.faults = { rateLimitRate: 1, retryAfterMs: 5 };
      const limited = await fx.engine.pushOnce('alpha');
      expect(limited.rateLimited).toBe(1);
      now += 10;
      alpha.faults = { authFailure: true };
      const auth = await fx.engine.pushOnce('alpha');
      expect(auth.retried).toBe(1);
      expect(fx.engine.connectionStates().alpha?.status).toBe('needs_reauth');
      // Paused: nothing is claimed, nothing is called.
      const callsBefore = alpha.calls.total;
      expect((await fx.engine.pushOnce('alpha')).claimed).toBe(0);
      expect(alpha.calls.total).toBe(callsBefore);
      alpha.faults = {};
      now += 400_000;
      const ok = await fx.engine.push('alpha');
      expect(ok.created).toBe(1);
      expect(await fx.store.listDeadLetters({ limit: 5 })).toHaveLength(0);
    });

    it('dead-letters after the retry budget of transient failures', async () => {
      // Ahead of the wall clock: the store stamps new rows due at wall-clock now.
      let now = Date.now() + 1_000;
      fx = await engineFixture(['alpha'], {
        now: () => now,
        retry: { baseMs: 10, maxMs: 20, maxAttempts: 3 },
      });
      const alpha = fx.crms.get('alpha')!;
      await fx.store.transaction(async (tx) => {
        const p = await tx.createProfile('person', new Date(now).toISOString());
        await tx.writeTraits(p.id, [
          { key: 'email', value: 't@x.io', source: 'event', changedAt: new Date(now).toISOString() },
        ]);
        await fx!.engine.onProfilesChanged(tx, [p.id]);
      });
      alpha.faults = { transientRate: 1 };
      for (let i = 0; i < 3; i++) {
        await fx.engine.pushOnce('alpha');
        now += 1_000;
      }
      const dead = await fx.store.listDeadLetters({ limit: 5 });
      expect(dead.map((d) => d.reason)).toEqual(['transient:MEMORY_UNAVAILABLE']);
      // Replay puts it back; it goes through once the CRM recovers.
      alpha.faults = {};
      expect(await fx.store.replayDeadLetters([dead[0]!.id], new Date(now).toISOString())).toBe(1);
      expect((await fx.engine.push('alpha')).created).toBe(1);
    });
  });

  describe('pulls and runs', () => {
    it('pulls by cursor, records runs, and a full pass finds deletes', async () => {
      fx = await engineFixture(['alpha'], { pageSize: 2 });
      const alpha = fx.crms.get('alpha')!;
      const ids = [1, 2, 3, 4, 5].map((i) =>
        alpha.repEdit('contacts', undefined, { email: `p${i}@x.io`, firstname: `P${i}` }),
      );
      const first = await fx.engine.runOnce({ direction: 'pull', trigger: 'test' });
      expect(first.objects[0]).toMatchObject({
        connector: 'alpha',
        object: 'contacts',
        created: 5,
        status: 'succeeded',
      });
      expect(first.objects[0]!.apiCalls).toBe(3);
      const cursor = await fx.store.read().getCursor('alpha', 'contacts');
      expect(cursor?.value).toBeTruthy();
      // Incremental: nothing new → nothing applied.
      const second = await fx.engine.runOnce({ direction: 'pull' });
      expect(second.objects[0]).toMatchObject({ created: 0, updated: 0 });
      alpha.repEdit('contacts', ids[0], { firstname: 'Renamed' });
      const third = await fx.engine.runOnce({ direction: 'pull' });
      expect(third.objects[0]).toMatchObject({ updated: 1 });
      const runs = await fx.store.listSyncRuns(10);
      expect(runs).toHaveLength(3);
      expect(runs.every((r) => r.status === 'succeeded' && r.mappingVersion === 'v1-alpha')).toBe(true);

      // A delete nobody announced is found by the full pass (when the store can list shadows).
      alpha.outbox.length = 0;
      const rr = await fx.store.read().getRemoteRecord('alpha', 'contacts', ids[1]!);
      expect(rr?.deleted).toBe(false);
      alpha.repDelete('contacts', ids[1]!);
      alpha.outbox.length = 0;
      const full = await fx.engine.runOnce({ direction: 'pull', full: true });
      expect(full.objects[0]!.status).toBe('succeeded');
      expect(full.objects[0]!.deleted).toBe(1);
      expect((await fx.store.read().getRemoteRecord('alpha', 'contacts', ids[1]!))?.deleted).toBe(true);
      expect((await fx.store.read().getRemoteRecord('alpha', 'contacts', ids[2]!))?.deleted).toBe(false);
    });

    it('a pull failing halfway deletes nothing and keeps the cursor of the last applied page', async () => {
      fx = await engineFixture(['alpha'], { pageSize: 2, retry: { maxAttempts: 1 } });
      const alpha = fx.crms.get('alpha')!;
      [1, 2, 3, 4, 5].forEach((i) => alpha.repEdit('contacts', undefined, { email: `f${i}@x.io` }));
      await fx.engine.runOnce({ direction: 'pull' });
      let calls = 0;
      const original = alpha.readChanges.bind(alpha);
      alpha.readChanges = async (object, cursor, options) => {
        if (++calls === 2) throw new CrmhubError('transient', 'reset', { code: 'ECONNRESET' });
        return original(object, cursor, options);
      };
      const run = await fx.engine.runOnce({ direction: 'pull', full: true });
      expect(run.objects[0]!.status).toBe('failed');
      expect(run.objects[0]!.deleted).toBe(0);
      for (const r of alpha.records('contacts'))
        expect((await fx.store.read().getRemoteRecord('alpha', 'contacts', r.id))?.deleted).toBe(false);
      const [latest] = await fx.store.listSyncRuns(1);
      expect(latest?.status).toBe('failed');
    });

    it('dry runs write nothing', async () => {
      fx = await engineFixture(['alpha']);
      const alpha = fx.crms.get('alpha')!;
      alpha.repEdit('contacts', undefined, { email: 'dry@x.io' });
      const planned: string[] = [];
      const run = await fx.engine.runOnce({
        dryRun: true,
        onPlan: (e) => planned.push(`${e.remoteId}:${e.outcome}`),
      });
      expect(run.objects[0]!.created).toBe(1);
      expect(planned).toEqual(['1:created']);
      expect(await fx.store.read().findIdentifiers([{ type: 'email', value: 'dry@x.io' }])).toEqual([]);
      expect(await fx.store.read().getCursor('alpha', 'contacts')).toBeNull();
      expect(await fx.store.listSyncRuns(5)).toEqual([]);
    });

    it('webhook duplicates are applied once and out-of-order deliveries keep the newest state', async () => {
      fx = await engineFixture(['alpha', 'beta']);
      const alpha = fx.crms.get('alpha')!;
      const id = alpha.repEdit('contacts', undefined, { email: 'o@x.io', firstname: 'One' });
      const request = alpha.buildWebhook();
      const a = await fx.engine.receiveWebhook('alpha', request);
      const b = await fx.engine.receiveWebhook('alpha', request);
      expect(a).toMatchObject({ status: 200, accepted: 1, duplicates: 0 });
      expect(b).toMatchObject({ accepted: 0, duplicates: 1 });
      await fx.engine.settled();
      expect(await fx.store.pendingOutboxCount('beta')).toBe(1);
      // An old full state arriving after a newer one is ignored.
      alpha.repEdit('contacts', id, { firstname: 'Two' });
      await deliverWebhooks(fx.engine, alpha);
      const stale = {
        object: 'contacts',
        id,
        fields: { email: 'o@x.io', firstname: 'One' },
        modifiedAt: '2000-01-01T00:00:00.000Z',
      };
      const counts = await fx.engine.applyRemoteChanges('alpha', 'contacts', [stale]);
      expect(counts.skipped).toBe(1);
      expect((await profileOf(fx, 'alpha.contacts', id)).traits.first_name).toBe('Two');
      const tampered = alpha.buildWebhook([
        {
          deliveryId: 'x',
          object: 'contacts',
          id,
          kind: 'upsert',
          changedAt: new Date().toISOString(),
          origin: 'other',
        },
      ]);
      tampered.rawBody = Buffer.from(tampered.rawBody.toString().replace('upsert', 'delete'));
      await expect(fx.engine.receiveWebhook('alpha', tampered)).rejects.toMatchObject({ kind: 'auth' });
    });
  });
});
