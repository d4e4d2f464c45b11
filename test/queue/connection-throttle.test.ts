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

describe('ConnectionThrottle search budget', () => {
  it('keeps a burst of searches within the declared search rate; other calls do not wait for it', async () => {
    // General: 50 per 500 ms (one start per 10 ms). Search: 3 per 500 ms, on top of the general budget.
    const t = new ConnectionThrottle({ id: 'search', limits: { requestsPerWindow: 50, windowMs: 500, maxConcurrent: 5, search: { requestsPerWindow: 3, windowMs: 500, usedBy: ['readChanges'] } } });
    expect(t.usesSearch('readChanges')).toBe(true);
    expect(t.usesSearch('write')).toBe(false);
    const searchStarts: number[] = [];
    const otherDone: number[] = [];
    const allStarts: number[] = [];
    const searches = Array.from({ length: 9 }, () =>
      t.schedule(
        () => {
          const now = Date.now();
          searchStarts.push(now);
          allStarts.push(now);
          return Promise.resolve();
        },
        { search: true },
      ),
    );
    const others = Array.from({ length: 15 }, () =>
      t.schedule(() => {
        allStarts.push(Date.now());
        otherDone.push(searchStarts.length);
        return Promise.resolve();
      }),
    );
    await Promise.all([...searches, ...others]);
    expect(searchStarts).toHaveLength(9);
    // Never more searches in a rolling window than declared.
    expect(maxInWindow(searchStarts, 495)).toBeLessThanOrEqual(3);
    // Searches spend the general budget too.
    expect(maxInWindow(allStarts, 495)).toBeLessThanOrEqual(50);
    expect(t.searchScheduled).toBe(9);
    expect(t.scheduled).toBe(24);
    // The 15 other calls all went out while the first window's 3 searches were still the only ones:
    // they never queued behind the 6 searches waiting for the search budget.
    expect(Math.max(...otherDone)).toBeLessThanOrEqual(3);
    await t.close();
  });

  it('a 429 on a search pauses searches only; without a declared budget `search` changes nothing', async () => {
    const t = new ConnectionThrottle({ id: 'search-429', limits: { requestsPerWindow: 1000, windowMs: 1000, maxConcurrent: 1, search: { requestsPerWindow: 100, windowMs: 1000 } } });
    expect(t.usesSearch('readChanges')).toBe(false); // a declared budget, but no call named as a search
    const over = t.schedule(() => Promise.reject(new CrmhubError('rate_limited', 'secondly', { code: 'SEARCH', retryAfterMs: 300 })), { search: true });
    await expect(over).rejects.toMatchObject({ kind: 'rate_limited' });
    expect(t.searchPausedUntil).not.toBeNull();
    expect(t.pausedUntil).toBeNull();
    let searched = false;
    const waiting = t.schedule(
      () => {
        searched = true;
        return Promise.resolve();
      },
      { search: true },
    );
    // With one general slot (maxConcurrent 1), the paused search must not hold it: the other call
    // goes out while searches are still paused.
    await expect(t.schedule(() => Promise.resolve('other call'))).resolves.toBe('other call');
    expect(searched).toBe(false);
    expect(t.searchPausedUntil).not.toBeNull();
    await waiting;
    expect(searched).toBe(true);
    await t.close();

    const plain = new ConnectionThrottle({ id: 'no-search', limits: { requestsPerWindow: 1000, windowMs: 1000, maxConcurrent: 5 } });
    await expect(plain.schedule(() => Promise.resolve(1), { search: true })).resolves.toBe(1);
    expect(plain.searchScheduled).toBe(0);
    await plain.close();
  });
});

describe('ConnectionThrottle search budget clustered on Redis', () => {
  const clients: Redis[] = [];
  afterAll(() => {
    for (const c of clients) c.disconnect();
  });

  it('two processes share one search budget', async () => {
    const namespace = `crmhub-test-${randomUUID()}`;
    const limits = { requestsPerWindow: 100, windowMs: 1000, maxConcurrent: 5, search: { requestsPerWindow: 3, windowMs: 300, usedBy: ['readChanges' as const] } };
    const a = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
    const b = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 });
    clients.push(a, b);
    const one = new ConnectionThrottle({ id: 'shared-search', limits, redis: a, namespace });
    const two = new ConnectionThrottle({ id: 'shared-search', limits, redis: b, namespace });
    const stamps: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 === 0 ? one : two).schedule(
          () => {
            stamps.push(Date.now());
            return Promise.resolve();
          },
          { search: true },
        ),
      ),
    );
    expect(stamps).toHaveLength(12);
    expect(maxInWindow(stamps, 290)).toBeLessThanOrEqual(3);
    await one.close();
    await two.close();
  });
});
