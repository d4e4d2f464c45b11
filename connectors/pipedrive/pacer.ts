/**
 * Client-side pacing for Pipedrive's burst limits (crm-reference §3.5): at most `burst` requests in
 * any rolling `windowMs` (2 s), at most `searchBurst` of them searches, at most `maxConcurrent` in
 * flight, and nothing at all while paused after a 429 or a spent daily budget. Pipedrive has no
 * batch writes, so this is what turns many single-record calls into the highest safe throughput.
 */

export interface PacerOptions {
  burst: number;
  windowMs: number;
  searchBurst: number;
  maxConcurrent: number;
  now: () => number;
}

/**
 * Margin added to the window, ms: the server stamps a request when it arrives, we when we send, so
 * a request sent exactly one window after another may still land inside the server's window.
 */
const SKEW_MS = 40;

export class Pacer {
  burst: number;
  private readonly windowMs: number;
  private readonly searchBurst: number;
  private readonly maxConcurrent: number;
  private readonly now: () => number;
  private readonly stamps: number[] = [];
  private readonly searchStamps: number[] = [];
  private inflight = 0;
  private pausedUntil = 0;
  private searchPausedUntil = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(options: PacerOptions) {
    this.burst = options.burst;
    this.windowMs = options.windowMs;
    this.searchBurst = options.searchBurst;
    this.maxConcurrent = options.maxConcurrent;
    this.now = options.now;
  }

  /** ms until a request may start (0 = now), ignoring concurrency. */
  private waitMs(now: number, search: boolean): number {
    const horizon = now - this.windowMs - SKEW_MS;
    while (this.stamps.length > 0 && (this.stamps[0] ?? 0) <= horizon) this.stamps.shift();
    while (this.searchStamps.length > 0 && (this.searchStamps[0] ?? 0) <= horizon) this.searchStamps.shift();
    let wait = Math.max(0, this.pausedUntil - now);
    if (search) wait = Math.max(wait, this.searchPausedUntil - now);
    if (this.stamps.length >= this.burst) wait = Math.max(wait, (this.stamps[this.stamps.length - this.burst] ?? now) + this.windowMs + SKEW_MS - now);
    if (search && this.searchStamps.length >= this.searchBurst) {
      wait = Math.max(wait, (this.searchStamps[this.searchStamps.length - this.searchBurst] ?? now) + this.windowMs + SKEW_MS - now);
    }
    return wait;
  }

  /**
   * Resolves with 0 when a request may be sent (the caller must then `release()` it), or with the
   * ms left of a pause longer than `maxWaitMs` (nothing acquired: the caller reports rate_limited
   * rather than sleeping until, say, the daily budget resets).
   */
  async acquire(search: boolean, maxWaitMs = 10_000): Promise<number> {
    for (;;) {
      const now = this.now();
      const paused = Math.max(this.pausedUntil - now, search ? this.searchPausedUntil - now : 0);
      if (paused > maxWaitMs) return paused;
      const wait = this.waitMs(now, search);
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 60_000)));
        continue;
      }
      if (this.inflight >= this.maxConcurrent) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      this.inflight++;
      this.stamps.push(now);
      if (search) this.searchStamps.push(now);
      return 0;
    }
  }

  release(): void {
    this.inflight = Math.max(0, this.inflight - 1);
    this.waiters.shift()?.();
  }

  /** Stops new requests for `ms` (all of them, or searches only). */
  pauseFor(ms: number, searchOnly: boolean): void {
    const until = this.now() + ms;
    if (searchOnly) this.searchPausedUntil = Math.max(this.searchPausedUntil, until);
    else this.pausedUntil = Math.max(this.pausedUntil, until);
  }

  /** ms left in a pause (0 when not paused). */
  pausedFor(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }
}
