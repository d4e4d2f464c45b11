/** Segment's own Node library, pointed at crmhub with `host`, works unchanged. */
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileId } from '../../src/core/types.ts';
import { BEARER, WRITE_KEY, harness, type Harness } from './app-harness.ts';

describe('@segment/analytics-node against crmhub', () => {
  let h: Harness;
  let url: string;
  beforeAll(async () => {
    h = await harness('sqlite');
    url = await h.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('identify + track + page + group + flush land as stored events on one profile', async () => {
    const errors: unknown[] = [];
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: url, flushAt: 3, maxRetries: 1 });
    analytics.on('error', (e) => errors.push(e));
    analytics.identify({ userId: 'seg-user-1', traits: { email: 'Seg@Example.com', name: 'Segment User' } });
    analytics.track({ userId: 'seg-user-1', event: 'Item Purchased', properties: { revenue: 39.95 } });
    analytics.page({ anonymousId: 'seg-anon-1', name: 'Landing' });
    analytics.group({ userId: 'seg-user-1', groupId: 'seg-co', traits: { name: 'Seg Co' } });
    analytics.alias({ userId: 'seg-user-1', previousId: 'seg-anon-1' });
    await analytics.closeAndFlush({ timeout: 10_000 });
    expect(errors).toEqual([]);

    const res = await fetch(`${url}/v1/profiles?identifier=${encodeURIComponent('email:seg@example.com')}`, { headers: { authorization: BEARER } });
    expect(res.status).toBe(200);
    const profile = (await res.json()) as { id: ProfileId; traits: Record<string, { value: unknown }>; identifiers: { type: string; value: string }[] };
    expect(profile.traits.name?.value).toBe('Segment User');
    expect(profile.identifiers).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'user_id', value: 'seg-user-1' })]));
    const events = await h.store.read().listEvents(profile.id, 50);
    // alias merged the anonymous page view into the user's profile.
    expect(events.map((e) => e.type).sort()).toEqual(['alias', 'group', 'identify', 'page', 'track']);
    expect(events.find((e) => e.type === 'track')?.properties).toEqual({ revenue: 39.95 });
  });
});
