/**
 * The end-to-end scenarios every CRM runs through the whole hub (HTTP event API, signed webhooks,
 * ingest → outbox → workers → connector → sandbox), parameterised by the CRM's field names and how
 * a webhook of that CRM is tampered with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonValue, ProfileId } from '../../src/core/types.ts';
import { crmFields, demoPeople, PERSON_OBJECT, type DemoPerson } from '../../src/demo/demo-data.ts';
import { isWriteRoute } from '../../src/demo/run-demo.ts';
import type { SandboxStatsBody } from '../../src/demo/sandbox-control.ts';
import { startHub, waitFor, type Hub, type RecordedDelivery } from './e2e-harness.ts';

export interface HubE2ESpec {
  slug: string;
  /** Remote field names of the person object. */
  fields: { email: string; lastName: string; phone: string; plan: string; engagement: string };
  /** A rep's edit of the last name, in the sandbox's `/_sandbox/edit` shape. */
  lastNameEdit(p: DemoPerson, lastName: string): Record<string, unknown>;
  /** Whether the CRM announces deletes by webhook; otherwise the next pull finds them (Salesforce: IsDeleted / getDeleted). */
  deleteWebhook: boolean;
  /** A copy of a genuine delivery that must be refused (bad signature, credentials or token). */
  tamper(delivery: RecordedDelivery): { body?: Buffer; headers?: Record<string, string>; url?: string };
}

function writes(after: SandboxStatsBody, before: SandboxStatsBody): number {
  let n = 0;
  for (const [route, count] of Object.entries(after.calls)) if (isWriteRoute(route)) n += count - (before.calls[route] ?? 0);
  return n;
}

export function hubE2E(spec: HubE2ESpec): void {
  const { slug, fields } = spec;
  const object = PERSON_OBJECT[slug] ?? '';
  describe(`${slug}: end to end through the hub`, () => {
    let hub: Hub;
    const people = demoPeople(4);
    const ids = new Map<number, string>();
    const person = (i: number): DemoPerson => people[i] ?? people[0]!;
    const identify = (p: DemoPerson, traits: Record<string, JsonValue>, tag: string): Record<string, JsonValue> => ({
      type: 'identify',
      messageId: `e2e-${slug}-${tag}-${p.index}`,
      userId: `e2e-user-${p.index}`,
      traits: { email: p.email, ...traits },
    });
    const remote = async (i: number): Promise<Record<string, JsonValue>> => {
      const [record] = await hub.connector.readByIds(object, [ids.get(i) ?? '']);
      return record?.fields ?? {};
    };
    const profileId = async (i: number): Promise<ProfileId> => (await hub.profile(person(i).email))?.id ?? ('' as ProfileId);
    const settled = async (): Promise<void> => {
      await hub.runtime.engine.settled();
      await waitFor(async () => (await hub.runtime.store.pendingOutboxCount()) === 0, 15_000);
    };

    /** Until no webhook has arrived for a while and crmhub has processed what came (deliveries of earlier writes may be on their way). */
    const quiet = async (): Promise<void> => {
      let seen = -1;
      await waitFor(async () => {
        await settled();
        const stable = hub.deliveries.length === seen;
        seen = hub.deliveries.length;
        return stable;
      }, 15_000, 400);
    };

    beforeAll(async () => {
      hub = await startHub(slug);
      const seeded = await hub.control.seed(object, people.length);
      for (const p of people) {
        const id = seeded[p.index] ?? '';
        await hub.control.edit(object, id, crmFields(slug, p));
        ids.set(p.index, id);
      }
      const summary = await hub.runtime.engine.runOnce({ direction: 'both', full: true });
      expect(summary.objects.filter((o) => o.status === 'failed')).toEqual([]);
      await settled();
      await hub.webhooks(true);
    }, 30_000);

    afterAll(async () => {
      await hub?.close();
    });

    it('pulls every seeded record into one profile each, linked by the CRM record id', async () => {
      for (const p of people) {
        const profile = await hub.profile(p.email);
        expect(profile?.identifiers.some((i) => i.type.startsWith(`${slug}.`) && i.value === ids.get(p.index))).toBe(true);
      }
    });

    it("carries a rep's edit to the profile through a signed webhook", async () => {
      const before = hub.deliveries.length;
      await hub.control.edit(object, ids.get(0) ?? '', spec.lastNameEdit(person(0), 'Edited-By-Rep'));
      const profile = await waitFor(async () => {
        const p = await hub.profile(person(0).email);
        return p?.traits['last_name']?.value === 'Edited-By-Rep' ? p : null;
      });
      expect(profile.traits['last_name']?.source).toBe(slug);
      expect(hub.deliveries.slice(before).some((d) => d.status === 200)).toBe(true);
    });

    it('carries a CDP trait change to the CRM record', async () => {
      await hub.send([identify(person(1), { plan: 'enterprise' }, 'plan')]);
      const record = await waitFor(async () => {
        const f = await remote(1);
        return f[fields.plan] === 'enterprise' ? f : null;
      });
      expect(record[fields.plan]).toBe('enterprise');
    });

    it('sends nothing when its own write comes back through a webhook (echo)', async () => {
      await quiet();
      const before = await hub.control.stats();
      const deliveriesBefore = hub.deliveries.length;
      await hub.send([identify(person(1), { engagement_score: 42 }, 'echo')]);
      await waitFor(async () => Number((await remote(1))[fields.engagement]) === 42);
      // The CRM announces our own write; wait until crmhub got it and finished processing it.
      await waitFor(() => Promise.resolve(hub.deliveries.length > deliveriesBefore), 10_000);
      await quiet();
      const after = await hub.control.stats();
      expect(writes(after, before)).toBe(1);
      expect(await hub.runtime.store.pendingOutboxCount()).toBe(0);
    });

    it('resolves a conflicting edit by the mapping rule (phone: prefer_remote_unless_empty)', async () => {
      const repPhone = '+1 212 555 7777';
      await hub.webhooks(false); // the rep's webhook is late: crmhub meets the edit when it reads the record
      await hub.control.edit(object, ids.get(2) ?? '', slug === 'pipedrive' ? { phones: [{ value: repPhone, primary: true, label: 'work' }] } : { [fields.phone]: repPhone });
      const id = await profileId(2);
      await hub.send([identify(person(2), { phone: '+1 646 555 0000' }, 'conflict')]);
      const conflict = await waitFor(async () => (await hub.runtime.store.listConflicts({ limit: 50 })).find((c) => c.profileId === id && /phone/i.test(c.field)));
      await hub.webhooks(true);
      expect(conflict.rule).toBe('prefer_remote_unless_empty');
      expect(conflict.resolution).toBe('remote');
      await settled();
      const profile = await hub.profile(person(2).email);
      const digits = (v: unknown): string => String(v).replace(/\D/g, '');
      expect(digits(profile?.traits['phone']?.value)).toBe(digits(repPhone));
      expect(digits((await remote(2))[fields.phone])).toBe(digits(repPhone));
    });

    it('accepts a replayed webhook once (no second read) and refuses a tampered one', async () => {
      await quiet();
      const delivery = [...hub.deliveries].reverse().find((d) => d.status === 200);
      expect(delivery).toBeDefined();
      const before = await hub.control.stats();
      expect(await hub.replay(delivery!)).toBe(200);
      await settled();
      const after = await hub.control.stats();
      expect(Object.fromEntries(Object.entries(after.calls).filter(([route, n]) => n !== before.calls[route]))).toEqual({});
      const status = await hub.replay(delivery!, spec.tamper(delivery!));
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
    });

    it('handles a record deleted in the CRM without creating a duplicate', async () => {
      const id = await profileId(3);
      await hub.control.remove(object, ids.get(3) ?? '');
      if (!spec.deleteWebhook) await hub.runtime.engine.runOnce({ direction: 'pull' });
      await waitFor(async () => (await hub.runtime.store.read().findRemoteRecordsByProfile(slug, object, id)).every((r) => r.deleted));
      await hub.send([identify(person(3), { plan: 'pro' }, 'deleted')]);
      await settled();
      await hub.runtime.engine.runOnce({ direction: 'both', full: true });
      await settled();
      await hub.runtime.engine.runOnce({ direction: 'both' });
      await settled();
      // Every live record of the CRM holding this person's email (any casing): at most one.
      const live: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 50; page++) {
        const result = await hub.connector.readChanges(object, cursor, { full: true });
        for (const r of result.records) {
          const email = r.fields[fields.email];
          if (!r.deleted && typeof email === 'string' && email.toLowerCase() === person(3).email) live.push(r.id);
        }
        cursor = result.nextCursor;
        if (result.done) break;
      }
      expect(live.length).toBeLessThanOrEqual(1);
      const linked = (await hub.runtime.store.read().findRemoteRecordsByProfile(slug, object, id)).filter((r) => !r.deleted);
      expect(linked.length).toBeLessThanOrEqual(1);
      expect((await hub.profile(person(3).email))?.id).toBe(id);
    });
  });
}
