/**
 * `holdCreatesUntilPulled` (on under `crmhub serve`): a create for an object waits until one pull
 * of that object ran to the end, so a person the CRM already has is linked, not created again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deliverWebhooks, engineFixture, type EngineFixture } from './sync-fixtures.ts';

let fx: EngineFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe('holding creates until the first pull', () => {
  it('links the record the CRM already has instead of creating a duplicate', async () => {
    // The store stamps new outbox rows with the real clock; the engine's clock only moves ahead of it.
    let now = Date.now();
    fx = await engineFixture(['alpha', 'beta'], { holdCreatesUntilPulled: true, now: () => now, readBeforeWrite: false });
    const alpha = fx.crms.get('alpha')!;
    const beta = fx.crms.get('beta')!;
    // The same person is already in both CRMs; crmhub has seen only beta's record so far.
    alpha.repEdit('contacts', undefined, { email: 'grace@example.com', firstname: 'Grace' });
    beta.repEdit('contacts', undefined, { email: 'grace@example.com', firstname: 'Grace', crmhub_plan: 'pro' });
    await deliverWebhooks(fx.engine, beta);

    // Alpha was never pulled: the create is held (not sent, not counted as an attempt).
    const held = await fx.engine.push('alpha');
    expect(held.apiCalls).toBe(0);
    expect(alpha.records('contacts')).toHaveLength(1);
    expect(await fx.store.pendingOutboxCount('alpha')).toBeGreaterThan(0);

    // The first pull links alpha's existing record by email; the held row then updates it.
    await fx.engine.pull('alpha', 'contacts');
    now += 10_000;
    await fx.engine.push('alpha');
    const records = alpha.records('contacts');
    expect(records).toHaveLength(1);
    expect(records[0]!.fields).toMatchObject({ email: 'grace@example.com', crmhub_plan: 'pro' });
    expect(await fx.store.pendingOutboxCount('alpha')).toBe(0);
    expect(await fx.store.listDeadLetters({ limit: 10 })).toEqual([]);
  });

  it('is off by default: without it, the same sequence sends a blind create', async () => {
    fx = await engineFixture(['alpha', 'beta'], { readBeforeWrite: false });
    const alpha = fx.crms.get('alpha')!;
    const beta = fx.crms.get('beta')!;
    alpha.repEdit('contacts', undefined, { email: 'grace@example.com', firstname: 'Grace' });
    beta.repEdit('contacts', undefined, { email: 'grace@example.com', firstname: 'Grace', crmhub_plan: 'pro' });
    await deliverWebhooks(fx.engine, beta);
    const counts = await fx.engine.push('alpha');
    // This CRM refuses a second record with the same email, so the blind create dead-letters
    // (a CRM without that rule, such as Salesforce, would hold a duplicate now).
    expect(counts.deadLettered).toBe(1);
    expect(alpha.records('contacts')).toHaveLength(1);
  });
});
