/**
 * The Pipedrive pacer on a fake clock: the burst window counted from answers, first come first
 * served, searches held back by their own window without holding back other requests, pauses, and
 * one timer however many requests wait.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pacer } from '../../../connectors/pipedrive/pacer.ts';

const WINDOW = 2_000;
/** The pacer's margin added to the window, ms. */
const SKEW = 10;

function pacer(over: Partial<{ burst: number; searchBurst: number; maxConcurrent: number }> = {}): Pacer {
  return new Pacer({ burst: over.burst ?? 3, windowMs: WINDOW, searchBurst: over.searchBurst ?? 1, maxConcurrent: over.maxConcurrent ?? 10, now: () => Date.now() });
}

/** Starts `n` acquisitions and records, per request, when (fake ms since the start) it was let through. */
function track(p: Pacer, n: number, search: (i: number) => boolean = () => false): { granted: (number | null)[]; done: Promise<number[]> } {
  const start = Date.now();
  const granted: (number | null)[] = Array.from({ length: n }, () => null);
  const done = Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const paused = await p.acquire(search(i));
      granted[i] = Date.now() - start;
      return paused;
    }),
  );
  return { granted, done };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Pacer', () => {
  it('lets `burst` through, then one more per answer that leaves the window, first come first served', async () => {
    const p = pacer({ burst: 3 });
    const t = track(p, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.granted).toEqual([0, 0, 0, null, null]);
    // Answers at 100 and 300 ms: their slots come back 2 s (+ margin) after each answer.
    await vi.advanceTimersByTimeAsync(100);
    p.release(false);
    await vi.advanceTimersByTimeAsync(200);
    p.release(false);
    await vi.advanceTimersByTimeAsync(WINDOW + SKEW - 300 + 100 - 1);
    expect(t.granted.slice(3)).toEqual([null, null]);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.granted[3]).toBe(100 + WINDOW + SKEW);
    expect(t.granted[4]).toBeNull();
    await vi.advanceTimersByTimeAsync(200);
    expect(t.granted[4]).toBe(300 + WINDOW + SKEW);
    await expect(t.done).resolves.toEqual([0, 0, 0, 0, 0]);
  });

  it('keeps a single timer however many requests wait', async () => {
    const p = pacer({ burst: 2 });
    const t = track(p, 200);
    await vi.advanceTimersByTimeAsync(0);
    p.release(false);
    p.release(false);
    await vi.advanceTimersByTimeAsync(1);
    // Polling on one timer per waiter woke all 198 at every slot; now one timer serves the queue.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(WINDOW + SKEW);
    expect(t.granted.filter((g) => g !== null)).toHaveLength(4);
  });

  it('holds a search back on the search window without holding back the requests behind it', async () => {
    const p = pacer({ burst: 10, searchBurst: 1 });
    // Requests 0 and 1 are searches; 2 is not.
    const t = track(p, 3, (i) => i < 2);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.granted).toEqual([0, null, 0]);
    p.release(true);
    await vi.advanceTimersByTimeAsync(WINDOW + SKEW);
    expect(t.granted[1]).toBe(WINDOW + SKEW);
  });

  it('waits for an answer when `maxConcurrent` requests are in flight', async () => {
    const p = pacer({ burst: 10, maxConcurrent: 2 });
    const t = track(p, 3);
    await vi.advanceTimersByTimeAsync(500);
    expect(t.granted).toEqual([0, 0, null]);
    p.release(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(t.granted[2]).toBe(500);
  });

  it('answers with the pause left when a pause is longer than the caller waits; waits out a shorter one', async () => {
    const p = pacer({ burst: 10 });
    p.pauseFor(60_000, false);
    await expect(p.acquire(false, 10_000)).resolves.toBe(60_000);
    const t = track(p, 1);
    // A waiter already queued is answered too when a long pause starts.
    p.pauseFor(30_000, false);
    await vi.advanceTimersByTimeAsync(0);
    await expect(t.done).resolves.toEqual([60_000]);
    const short = pacer({ burst: 10 });
    short.pauseFor(1_500, false);
    const u = track(short, 1);
    await vi.advanceTimersByTimeAsync(1_499);
    expect(u.granted).toEqual([null]);
    await vi.advanceTimersByTimeAsync(1);
    await expect(u.done).resolves.toEqual([0]);
  });
});
