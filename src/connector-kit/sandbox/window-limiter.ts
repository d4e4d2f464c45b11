/**
 * Counters that imitate CRM rate limits inside the sandboxes: a rolling window (HubSpot's
 * TEN_SECONDLY_ROLLING, Pipedrive's 2-second burst) and a daily budget. Pure; the clock is passed in.
 */

export interface WindowDecision {
  ok: boolean;
  /** Requests left in the window after this one. */
  remaining: number;
  /** ms until a slot frees up (0 when ok). */
  resetMs: number;
}

/** Rolling window: at most `limit` requests in any `windowMs` span. */
export class RollingWindowLimiter {
  private readonly stamps: number[] = [];
  private head = 0;

  constructor(
    public limit: number,
    public windowMs: number,
  ) {}

  take(now: number, cost = 1): WindowDecision {
    this.expire(now);
    const inWindow = this.stamps.length - this.head;
    if (inWindow + cost > this.limit) {
      const oldest = this.stamps[this.head] ?? now;
      return { ok: false, remaining: 0, resetMs: Math.max(1, oldest + this.windowMs - now) };
    }
    for (let i = 0; i < cost; i++) this.stamps.push(now);
    return { ok: true, remaining: this.limit - inWindow - cost, resetMs: 0 };
  }

  /** Requests left now, without taking one. */
  remaining(now: number): number {
    this.expire(now);
    return Math.max(0, this.limit - (this.stamps.length - this.head));
  }

  /** ms until the oldest request in the window leaves it. */
  resetIn(now: number): number {
    this.expire(now);
    const oldest = this.stamps[this.head];
    return oldest === undefined ? 0 : Math.max(0, oldest + this.windowMs - now);
  }

  reset(): void {
    this.stamps.length = 0;
    this.head = 0;
  }

  private expire(now: number): void {
    while (this.head < this.stamps.length && (this.stamps[this.head] ?? 0) <= now - this.windowMs) this.head++;
    if (this.head > 4096 && this.head * 2 > this.stamps.length) {
      this.stamps.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** A daily budget that resets at the next UTC midnight (or after `periodMs` in tests). */
export class DailyBudget {
  used = 0;
  private periodStart: number;

  constructor(
    public limit: number,
    now: number,
    private readonly periodMs = 86_400_000,
  ) {
    this.periodStart = now - (now % this.periodMs);
  }

  take(now: number, cost = 1): { ok: boolean; remaining: number; resetMs: number } {
    this.roll(now);
    const resetMs = this.periodStart + this.periodMs - now;
    if (this.used + cost > this.limit) return { ok: false, remaining: Math.max(0, this.limit - this.used), resetMs };
    this.used += cost;
    return { ok: true, remaining: this.limit - this.used, resetMs };
  }

  remaining(now: number): number {
    this.roll(now);
    return Math.max(0, this.limit - this.used);
  }

  reset(): void {
    this.used = 0;
  }

  private roll(now: number): void {
    if (now >= this.periodStart + this.periodMs) {
      this.periodStart = now - (now % this.periodMs);
      this.used = 0;
    }
  }
}
