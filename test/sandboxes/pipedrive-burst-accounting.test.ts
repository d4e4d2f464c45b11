/**
 * The Pipedrive sandbox's own accounting of what its burst window let through
 * (`GET /_sandbox/pipedrive?since=` → `burstWindow`), which the Pipedrive benchmark reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipedriveLimits } from '../../connectors/pipedrive/sandbox/limits.ts';
import { startPipedriveSandbox, type RunningPipedriveSandbox } from '../../connectors/pipedrive/sandbox/index.ts';

describe('PipedriveLimits.acceptedSince', () => {
  it('counts accepted requests since a time, their span, and the most in one rolling window', () => {
    const limits = new PipedriveLimits({ burst: 3, windowMs: 2_000 }, 0);
    const at = [1_000, 1_000, 1_500, 2_999, 3_000, 3_000, 3_001, 5_000];
    const ok = at.map((t) => limits.take('PATCH /api/v2/persons/:id', t).ok);
    // 2,999 finds three in (999, 2,999]; at 3,000 the two from 1,000 leave (a request counts for
    // exactly 2 s), so two more fit; 3,001 finds 1,500 and both 3,000s; by 5,000 all have left.
    expect(ok).toEqual([true, true, true, false, true, true, false, true]);
    expect(limits.acceptedSince(0)).toEqual({ calls: 6, firstAt: 1_000, lastAt: 5_000, peakInWindow: 3 });
    expect(limits.acceptedSince(1_500)).toEqual({ calls: 4, firstAt: 1_500, lastAt: 5_000, peakInWindow: 3 });
    expect(limits.acceptedSince(6_000)).toEqual({ calls: 0, firstAt: null, lastAt: null, peakInWindow: 0 });
    limits.reset();
    expect(limits.acceptedSince(0).calls).toBe(0);
  });
});

describe('GET /_sandbox/pipedrive?since=', () => {
  let sb: RunningPipedriveSandbox;
  beforeAll(async () => {
    // A long window: the 429s below must not depend on how fast this machine answers.
    sb = await startPipedriveSandbox({ port: 0, limits: { burst: 5, windowMs: 60_000 } });
  });
  afterAll(async () => {
    await sb.close();
  });

  it('reports the burst window accounting of the API calls since then', async () => {
    const since = Date.now();
    const headers = { 'x-api-token': sb.credentials['apiToken']! };
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await fetch(`${sb.baseUrl}/api/v2/persons`, { headers })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const body = (await (await fetch(`${sb.baseUrl}/_sandbox/pipedrive?since=${since}`)).json()) as { burstWindow: { calls: number; peakInWindow: number; firstAt: number; lastAt: number } };
    expect(body.burstWindow).toMatchObject({ calls: 5, peakInWindow: 5 });
    expect(body.burstWindow.firstAt).toBeGreaterThanOrEqual(since);
    expect(body.burstWindow.lastAt).toBeGreaterThanOrEqual(body.burstWindow.firstAt);
    const later = (await (await fetch(`${sb.baseUrl}/_sandbox/pipedrive?since=${Date.now() + 1_000}`)).json()) as { burstWindow: { calls: number } };
    expect(later.burstWindow.calls).toBe(0);
    const all = (await (await fetch(`${sb.baseUrl}/_sandbox/pipedrive`)).json()) as { burstWindow: { calls: number } };
    expect(all.burstWindow.calls).toBe(5);
    expect((await fetch(`${sb.baseUrl}/_sandbox/pipedrive?since=yesterday`)).status).toBe(400);
  });
});
