/**
 * The event API and profile routes end to end through Fastify's inject, on SQLite and on Postgres:
 * every route answers, a 200 means stored, duplicates are stored once, anonymous history merges
 * into the known profile on sign-up, and a bad batch item does not lose the good ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { BEARER, harness, post, type Harness } from './app-harness.ts';

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`event API (${dialect})`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await harness(dialect);
    });
    afterAll(async () => {
      await h.close();
    });

    const profileBy = async (identifier: string) => {
      const res = await h.app.inject({ method: 'GET', url: `/v1/profiles?identifier=${encodeURIComponent(identifier)}`, headers: { authorization: BEARER } });
      return { status: res.statusCode, body: res.json() };
    };

    it('answers 200 {"success":true} on every event route and stores the event', async () => {
      const p = `${dialect}-routes`;
      const calls: [string, Record<string, unknown>][] = [
        ['identify', { userId: `${p}-u`, traits: { name: 'Ada', plan: 'pro' }, messageId: `${p}-1` }],
        ['track', { userId: `${p}-u`, event: 'Order Completed', properties: { total: 42 }, messageId: `${p}-2` }],
        ['page', { userId: `${p}-u`, name: 'Pricing', properties: { url: 'https://x.io/pricing' }, messageId: `${p}-3` }],
        ['screen', { userId: `${p}-u`, name: 'Home', messageId: `${p}-4` }],
        ['group', { userId: `${p}-u`, groupId: `${p}-acme`, traits: { name: 'Acme Inc', employees: 50 }, messageId: `${p}-5` }],
        ['alias', { userId: `${p}-u`, previousId: `${p}-anon`, messageId: `${p}-6` }],
        ['batch', { batch: [{ type: 'track', userId: `${p}-u`, event: 'In Batch', messageId: `${p}-7` }] }],
      ];
      for (const [route, body] of calls) {
        const res = await post(h.app, route, body);
        expect(res.statusCode, `${route}: ${res.body}`).toBe(200);
        expect(res.json()).toEqual({ success: true });
      }
      for (let i = 1; i <= 7; i += 1) expect(await h.store.read().hasEvent(`${p}-${i}`)).toBe(true);

      const person = await profileBy(`user_id:${p}-u`);
      expect(person.status).toBe(200);
      expect(person.body.kind).toBe('person');
      expect(person.body.traits.name).toMatchObject({ value: 'Ada', source: 'event' });
      expect(person.body.identifiers).toContainEqual({ type: 'anonymous_id', value: `${p}-anon`, source: 'event' });
      const account = await profileBy(`group_id:${p}-acme`);
      expect(account.status).toBe(200);
      expect(account.body.kind).toBe('account');
      expect(account.body.traits.employees.value).toBe(50);
      // The id route answers the same profile.
      const byId = await h.app.inject({ method: 'GET', url: `/v1/profiles/${person.body.id}`, headers: { authorization: BEARER } });
      expect(byId.json().id).toBe(person.body.id);
    });

    it('stores the same messageId once', async () => {
      const body = { anonymousId: `${dialect}-dup-a`, event: 'Clicked', messageId: `${dialect}-dup-1` };
      expect((await post(h.app, 'track', body)).statusCode).toBe(200);
      expect((await post(h.app, 'track', body)).statusCode).toBe(200);
      expect((await post(h.app, 'batch', { batch: [{ ...body, type: 'track' }, { ...body, type: 'track' }] })).statusCode).toBe(200);
      const profile = await profileBy(`anonymous_id:${dialect}-dup-a`);
      const events = await h.store.read().listEvents(profile.body.id as ProfileId, 100);
      expect(events.filter((e) => e.messageId === `${dialect}-dup-1`)).toHaveLength(1);
    });

    it('merges anonymous browsing into the known profile at sign-up', async () => {
      const anon = `${dialect}-visitor`;
      const user = `${dialect}-user-77`;
      // Known user exists already (signed up on another device).
      expect((await post(h.app, 'identify', { userId: user, traits: { email: 'Grace@Example.com' } })).statusCode).toBe(200);
      // Anonymous browsing on this device.
      for (const page of ['Home', 'Pricing', 'Signup']) {
        expect((await post(h.app, 'page', { anonymousId: anon, name: page, messageId: `${anon}-${page}` })).statusCode).toBe(200);
      }
      const before = await profileBy(`anonymous_id:${anon}`);
      const known = await profileBy(`user_id:${user}`);
      expect(before.body.id).not.toBe(known.body.id);

      // Sign-up: identify with both ids.
      expect((await post(h.app, 'identify', { anonymousId: anon, userId: user, traits: { plan: 'trial' } })).statusCode).toBe(200);
      const after = await profileBy(`user_id:${user}`);
      expect((await profileBy(`anonymous_id:${anon}`)).body.id).toBe(after.body.id);
      expect(after.body.mergedFrom).toContain(before.body.id);
      const events = await h.store.read().listEvents(after.body.id as ProfileId, 100);
      expect(events.map((e) => e.messageId)).toEqual(expect.arrayContaining([`${anon}-Home`, `${anon}-Pricing`, `${anon}-Signup`]));
      expect(after.body.traits.plan.value).toBe('trial');
      // The old id still resolves to the survivor.
      const old = await h.app.inject({ method: 'GET', url: `/v1/profiles/${before.body.id}`, headers: { authorization: BEARER } });
      expect(old.json().id).toBe(after.body.id);
    });

    it('stores the good items of a batch and names the bad ones (400)', async () => {
      const p = `${dialect}-partial`;
      const res = await post(h.app, 'batch', {
        batch: [
          { type: 'track', userId: p, event: 'Good 1', messageId: `${p}-1` },
          { type: 'track', userId: p, messageId: `${p}-2` },
          { type: 'identify', userId: p, traits: 'wrong', messageId: `${p}-3` },
          { type: 'track', userId: p, event: 'Good 2', messageId: `${p}-4` },
        ],
      });
      expect(res.statusCode).toBe(400);
      const body = res.json();
      expect(body).toMatchObject({ success: false, code: 'INVALID_EVENTS', stored: 2 });
      expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2]);
      expect(body.reason).toMatch(/batch\[1\]\.event/);
      expect(await h.store.read().hasEvent(`${p}-1`)).toBe(true);
      expect(await h.store.read().hasEvent(`${p}-4`)).toBe(true);
      expect(await h.store.read().hasEvent(`${p}-2`)).toBe(false);
    });

    it('shares one transaction between concurrent requests and answers each after commit', async () => {
      const p = `${dialect}-concurrent`;
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          post(h.app, 'batch', { batch: Array.from({ length: 5 }, (_, j) => ({ type: 'track', anonymousId: `${p}-${i % 7}`, event: 'E', messageId: `${p}-${i}-${j}` })) }),
        ),
      );
      expect(results.every((r) => r.statusCode === 200)).toBe(true);
      for (let i = 0; i < 40; i += 1) expect(await h.store.read().hasEvent(`${p}-${i}-4`)).toBe(true);
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
      const sum = /crmhub_ingest_transaction_events_sum (\d+)/.exec(metrics.body);
      const count = /crmhub_ingest_transaction_events_count (\d+)/.exec(metrics.body);
      expect(Number(sum?.[1])).toBeGreaterThan(Number(count?.[1]));
    });

    it('corrects the client clock skew on stored events', async () => {
      const id = `${dialect}-skew`;
      const res = await post(h.app, 'track', { anonymousId: id, event: 'Skewed', messageId: id, timestamp: '2000-01-01T00:00:00.000Z', sentAt: '2000-01-01T00:00:05.000Z' });
      expect(res.statusCode).toBe(200);
      const profile = await profileBy(`anonymous_id:${id}`);
      const [event] = await h.store.read().listEvents(profile.body.id as ProfileId, 10);
      const skew = Date.parse(event!.receivedAt) - Date.parse(event!.timestamp);
      expect(skew).toBe(5000);
    });
  });
}
