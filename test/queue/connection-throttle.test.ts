import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectionThrottle } from '../../src/queue/connection-throttle.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';

/** Largest number of timestamps inside any half-open span of `windowMs`. */
function maxInWindow(stamps: number[], windowMs: number): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let best = 0;
  let head = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[head] ?? 0) <= (sorted[i] ?? 0) - windowMs) head++;
    best = Math.max(best, i - head + 1);
  }
  return best;
}

describe('ConnectionThrottle (in process)', () => {
  it('keeps any rolling window within the declared limit and respects maxConcurrent', async () => {
    const t = new ConnectionThrottle({ id: 'local', limits: { requestsPerWindow: 5, windowMs: 200, maxConcurrent: 2 } });
    const stamps: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    await Promise.all(
      Array.from({ length: 15 }, () =>
        t.schedule(async () => {
          stamps.push(Date.now());
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight--;
        }),
      ),
    );
    expect(maxInFlight).toBeLessThanOrEqual(2);
    // Timer granularity: allow one extra start inside a window boundary.
    expect(maxInWindow(stamps, 195)).toBeLessThanOrEqual(6);
    await t.close();
  });

  it('stops cleanly on a spent daily quota and resumes after its reset', async () => {
    let now = 1_000;
    const t = new ConnectionThrottle({ id: 'quota', limits: { requestsPerWindow: 100, windowMs: 1000, maxConcurrent: 5 }, now: () => now });
    t.observeQuota({ dailyRemaining: 0, dailyResetMs: 60_000 });
    const error = await t.schedule(() => Promise.resolve('called')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrmhubError);
    expect((error as CrmhubError).kind).toBe('rate_limited');
    expect((error as CrmhubError).code).toBe('DAILY_QUOTA_EXHAUSTED');
    expect((error as CrmhubError).retryAfterMs).toBe(60_000);
    now += 60_001;
    await expect(t.schedule(() => Promise.resolve('called'))).resolves.toBe('called');
    await t.close();
  });

  it('pauses every caller for retryAfter when the CRM answers 429', async () => {
    const t = new ConnectionThrottle({ id: 'pause', limits: { requestsPerWindow: 1000, windowMs: 1000, maxConcurrent: 5 } });
    const rejected = t.schedule(() => Promise.reject(new CrmhubError('rate_limited', 'over', { code: 'X', retryAfterMs: 150 })));
    await expect(rejected).rejects.toMatchObject({ kind: 'rate_limited' });
    expect(t.pausedUntil).not.toBeNull();
    expect(t.rateLimitedCount).toBe(1);
    const started = Date.now();
    await t.schedule(() => Promise.resolve());
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await t.close();
  });
});

const redisUrl = process.env.CRMHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('ConnectionThrottle clustered on Redis', () => {
  const clients: Redis[] = [];
  afterAll(() => {
    for (const c of clients) c.disconnect();
  });

  it('two limiter instances share one budget: never above the rate, close to it', async () => {
    const namespace = `crmhub-test-${randomUUID()}`;
    const limits = { requestsPerWindow: 10, windowMs: 500, maxConcurrent: 10 };
    const a = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
    const b = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
    clients.push(a, b);
    const one = new ConnectionThrottle({ id: 'shared', limits, redis: a, namespace });
    const two = new ConnectionThrottle({ id: 'shared', limits, redis: b, namespace });
    const stamps: number[] = [];
    const jobs = 60;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: jobs }, (_, i) =>
        (i % 2 === 0 ? one : two).schedule(() => {
          stamps.push(Date.now());
          return Promise.resolve();
        }),
      ),
    );
    const elapsed = Date.now() - started;
    // Ideal: 60 jobs at 10 per 500 ms = 3 000 ms (less the first free window).
    const ideal = ((jobs - limits.requestsPerWindow) / limits.requestsPerWindow) * limits.windowMs;
    expect(stamps.length).toBe(jobs);
    // Shared budget: no rolling window saw more than the limit (+1 for timer edges).
    expect(maxInWindow(stamps, limits.windowMs - 10)).toBeLessThanOrEqual(limits.requestsPerWindow + 1);
    // Never faster than the budget allows: two independent limiters would finish in half the time.
    expect(elapsed).toBeGreaterThanOrEqual(ideal * 0.9);
    // Close to the budget: the 5 s default heartbeat would take ~6× longer.
    expect(elapsed).toBeLessThan(ideal * 1.6);
    await one.close();
    await two.close();
  });
});
