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

/** Margin added to the window, ms (timer and clock granularity). */
const SKEW_MS = 10;

/**
 * One rolling window. A request counts from when it is sent until `windowMs` after its answer:
 * Pipedrive stamps it on arrival, which is no later than our answer, so counting from the answer
 * can never under-count (stamping at send time does, when the server is slow to read requests).
 */
class Window {
  private readonly done: number[] = [];
  inflight = 0;

  constructor(
    public limit: number,
    private readonly windowMs: number,
  ) {}

  /** ms until one more request fits; Infinity when only an answer (release) can make room. */
  waitMs(now: number): number {
    while (this.done.length > 0 && (this.done[0] ?? 0) <= now - this.windowMs - SKEW_MS) this.done.shift();
    const over = this.done.length + this.inflight - this.limit + 1;
    if (over <= 0) return 0;
    if (over > this.done.length) return Infinity;
    return (this.done[over - 1] ?? now) + this.windowMs + SKEW_MS - now;
  }

  finish(now: number): void {
    this.inflight = Math.max(0, this.inflight - 1);
    this.done.push(now);
  }
}

export class Pacer {
  private readonly general: Window;
  private readonly search: Window;
  private readonly maxConcurrent: number;
  private readonly now: () => number;
  private inflight = 0;
  private pausedUntil = 0;
  private searchPausedUntil = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(options: PacerOptions) {
    this.general = new Window(options.burst, options.windowMs);
    this.search = new Window(options.searchBurst, options.windowMs);
    this.maxConcurrent = options.maxConcurrent;
    this.now = options.now;
  }

  get burst(): number {
    return this.general.limit;
  }

  set burst(limit: number) {
    this.general.limit = limit;
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
      let wait = Math.max(0, paused, this.general.waitMs(now), search ? this.search.waitMs(now) : 0);
      if (this.inflight >= this.maxConcurrent) wait = Infinity;
      if (wait === Infinity) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 60_000)));
        continue;
      }
      this.inflight++;
      this.general.inflight++;
      if (search) this.search.inflight++;
      return 0;
    }
  }

  /** The request acquired with `acquire(search)` was answered (or failed). */
  release(search: boolean): void {
    const now = this.now();
    this.inflight = Math.max(0, this.inflight - 1);
    this.general.finish(now);
    if (search) this.search.finish(now);
    // Wake every waiter: each re-checks the windows (cheap; waiters are few and short-lived).
    for (const wake of this.waiters.splice(0)) wake();
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
