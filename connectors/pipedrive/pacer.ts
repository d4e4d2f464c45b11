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

/** A request waiting for its turn. */
interface Waiter {
  search: boolean;
  maxWaitMs: number;
  /** 0 when the request may be sent; else the ms left of a pause longer than `maxWaitMs`. */
  resolve: (pausedMs: number) => void;
}

/**
 * Requests are let through first come, first served from one queue, re-checked only when room may
 * have appeared: an answer (`release`), a pause change, or the one timer armed for the moment the
 * oldest counted request leaves the window. (Each waiter polling on its own timer woke every
 * waiter at every expiry — quadratic work that, on a busy machine, delayed the sends the window
 * already allowed.)
 */
export class Pacer {
  private readonly general: Window;
  private readonly search: Window;
  private readonly maxConcurrent: number;
  private readonly now: () => number;
  private inflight = 0;
  private pausedUntil = 0;
  private searchPausedUntil = 0;
  private readonly queue: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;

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
    this.pump();
  }

  /**
   * Resolves with 0 when a request may be sent (the caller must then `release()` it), or with the
   * ms left of a pause longer than `maxWaitMs` (nothing acquired: the caller reports rate_limited
   * rather than sleeping until, say, the daily budget resets).
   */
  acquire(search: boolean, maxWaitMs = 10_000): Promise<number> {
    return new Promise<number>((resolve) => {
      this.queue.push({ search, maxWaitMs, resolve });
      this.pump();
    });
  }

  /** The request acquired with `acquire(search)` was answered (or failed). */
  release(search: boolean): void {
    const now = this.now();
    this.inflight = Math.max(0, this.inflight - 1);
    this.general.finish(now);
    if (search) this.search.finish(now);
    this.pump();
  }

  /** Stops new requests for `ms` (all of them, or searches only). */
  pauseFor(ms: number, searchOnly: boolean): void {
    const until = this.now() + ms;
    if (searchOnly) this.searchPausedUntil = Math.max(this.searchPausedUntil, until);
    else this.pausedUntil = Math.max(this.pausedUntil, until);
    this.pump();
  }

  /** ms left in a pause (0 when not paused). */
  pausedFor(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }

  /** Lets through every queued request that fits now, in order; arms the timer for the next one. */
  private pump(): void {
    const now = this.now();
    // A pause longer than a waiter accepts answers it at once, wherever it is in the queue.
    if (this.pausedUntil > now || this.searchPausedUntil > now) {
      for (let i = 0; i < this.queue.length; ) {
        const w = this.queue[i]!;
        const paused = Math.max(this.pausedUntil - now, w.search ? this.searchPausedUntil - now : 0);
        if (paused > w.maxWaitMs) {
          this.queue.splice(i, 1);
          w.resolve(paused);
        } else i++;
      }
    }
    let next = Infinity;
    // Once a search waits on the search window (or a search-only pause), later searches wait too.
    let searchBlocked = false;
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i]!;
      if (w.search && searchBlocked) {
        i++;
        continue;
      }
      const common = Math.max(0, this.pausedUntil - now, this.general.waitMs(now), this.inflight >= this.maxConcurrent ? Infinity : 0);
      const own = w.search ? Math.max(0, this.searchPausedUntil - now, this.search.waitMs(now)) : 0;
      if (common === 0 && own === 0) {
        this.queue.splice(i, 1);
        this.inflight++;
        this.general.inflight++;
        if (w.search) this.search.inflight++;
        w.resolve(0);
        continue;
      }
      next = Math.min(next, Math.max(common, own));
      // What holds this one back (general window, concurrency, pause) holds back everyone behind it.
      if (common > 0) break;
      searchBlocked = true;
      i++;
    }
    // Infinity: only an answer can make room, and `release` pumps.
    if (next !== Infinity) this.arm(now + next);
  }

  private arm(at: number): void {
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.min(Math.max(1, Math.ceil(at - this.now())), 60_000),
    );
  }
}
