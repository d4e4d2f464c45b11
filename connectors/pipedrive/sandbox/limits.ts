/**
 * Pipedrive's token-based rate limits (crm-reference §3.5): a rolling 2-second burst per API token,
 * a tighter burst for the Search API, and a daily company budget of tokens where each endpoint
 * costs what its `x-token-cost` says in Pipedrive's OpenAPI files (`specs/pipedrive/openapi-v2.yaml`,
 * `openapi-v1.yaml`). Over either limit → 429 `Request over limit`.
 */
import { DailyBudget, RollingWindowLimiter } from '../../../src/connector-kit/sandbox/window-limiter.ts';

/** Token cost per route pattern, copied from `x-token-cost` in Pipedrive's OpenAPI files. */
export const TOKEN_COSTS: Record<string, number> = {
  'GET /api/v2/persons': 10,
  'POST /api/v2/persons': 5,
  'GET /api/v2/persons/:id': 1,
  'PATCH /api/v2/persons/:id': 5,
  'DELETE /api/v2/persons/:id': 3,
  'GET /api/v2/persons/search': 20,
  'GET /api/v2/organizations': 10,
  'POST /api/v2/organizations': 5,
  'GET /api/v2/organizations/:id': 1,
  'PATCH /api/v2/organizations/:id': 5,
  'DELETE /api/v2/organizations/:id': 3,
  'GET /api/v2/organizations/search': 20,
  'GET /api/v2/deals': 10,
  'GET /api/v2/deals/search': 20,
  'POST /api/v2/deals': 5,
  'GET /api/v2/deals/:id': 1,
  'PATCH /api/v2/deals/:id': 5,
  'DELETE /api/v2/deals/:id': 3,
  'GET /api/v2/personFields': 10,
  'GET /api/v2/personFields/:field_code': 1,
  'GET /api/v2/organizationFields': 10,
  'GET /api/v2/organizationFields/:field_code': 1,
  'GET /api/v2/dealFields': 10,
  'GET /api/v2/dealFields/:field_code': 1,
  'GET /v1/webhooks': 10,
  'POST /v1/webhooks': 10,
  'DELETE /v1/webhooks/:id': 6,
  'GET /v1/recents': 20,
  'GET /v1/users/me': 2,
};

/** Cost of a route not in the table (the spec's most common v2 read cost). */
const DEFAULT_COST = 10;

export interface PipedriveLimitSettings {
  /** Requests per window per API token. Default 80 (api_token, "Professional"/Growth tier). */
  burst: number;
  /** Window length, ms. Default 2000. */
  windowMs: number;
  /** Search requests per window. Default 10 on all plans. */
  searchBurst: number;
  /** Daily token budget. Default 300,000 (30,000 × 2 Growth × 5 seats, crm-reference §3.5). */
  dailyTokens: number;
}

export const DEFAULT_LIMITS: PipedriveLimitSettings = { burst: 80, windowMs: 2000, searchBurst: 10, dailyTokens: 300_000 };

export interface LimitDecision {
  ok: boolean;
  headers: Record<string, string>;
}

/** What the burst window let through over a span (`GET /_sandbox/pipedrive?since=`): benchmarks' window accounting. */
export interface AcceptedCalls {
  /** Requests the burst window accepted since the given time. */
  calls: number;
  /** When the first and the last of them were accepted, ms since the epoch; null when none. */
  firstAt: number | null;
  lastAt: number | null;
  /** The most of them inside any one rolling window (≤ `burst` while the window is enforced). */
  peakInWindow: number;
}

/** Accepted-request times kept for {@link PipedriveLimits.acceptedSince} (the newest this many). */
const ACCEPTED_LOG = 100_000;

export class PipedriveLimits {
  settings: PipedriveLimitSettings;
  private burst: RollingWindowLimiter;
  private search: RollingWindowLimiter;
  private daily: DailyBudget;
  /** When each request the burst window accepted was taken, ms, oldest first (the last ACCEPTED_LOG). */
  private readonly accepted: number[] = [];

  constructor(settings: Partial<PipedriveLimitSettings> = {}, now = Date.now()) {
    this.settings = { ...DEFAULT_LIMITS, ...settings };
    this.burst = new RollingWindowLimiter(this.settings.burst, this.settings.windowMs);
    this.search = new RollingWindowLimiter(this.settings.searchBurst, this.settings.windowMs);
    this.daily = new DailyBudget(this.settings.dailyTokens, now);
  }

  configure(patch: Partial<PipedriveLimitSettings>): void {
    this.settings = { ...this.settings, ...patch };
    this.burst.limit = this.settings.burst;
    this.burst.windowMs = this.settings.windowMs;
    this.search.limit = this.settings.searchBurst;
    this.search.windowMs = this.settings.windowMs;
    this.daily.limit = this.settings.dailyTokens;
  }

  reset(): void {
    this.accepted.length = 0;
    this.burst.reset();
    this.search.reset();
    this.daily.reset();
  }

  static cost(route: string): number {
    return TOKEN_COSTS[route] ?? DEFAULT_COST;
  }

  /** Takes one request of `route`; the headers go on the answer either way. */
  take(route: string, now: number): LimitDecision {
    const isSearch = route.endsWith('/search');
    const cost = PipedriveLimits.cost(route);
    const dailyLeft = this.daily.remaining(now);
    // A request is let through while any budget is left; the last one may overdraw it to 0.
    let ok = dailyLeft > 0;
    let windowRemaining = this.burst.remaining(now);
    let resetMs = this.burst.resetIn(now);
    let limit = this.settings.burst;
    if (ok && isSearch) {
      const s = this.search.take(now);
      ok = s.ok;
      if (!s.ok) {
        windowRemaining = 0;
        resetMs = s.resetMs;
        limit = this.settings.searchBurst;
      }
    }
    if (ok) {
      const b = this.burst.take(now);
      ok = b.ok;
      windowRemaining = b.remaining;
      resetMs = b.ok ? this.burst.resetIn(now) : b.resetMs;
    }
    if (ok) {
      this.daily.take(now, Math.min(cost, dailyLeft));
      this.accepted.push(now);
      if (this.accepted.length > 2 * ACCEPTED_LOG) this.accepted.splice(0, this.accepted.length - ACCEPTED_LOG);
    }
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, windowRemaining)),
      // Seconds left in the current window (Pipedrive's "Rate limiting" doc).
      'x-ratelimit-reset': String(Math.max(0, Math.ceil(resetMs / 1000))),
      'x-daily-ratelimit-token-limit': String(this.settings.dailyTokens),
      'x-daily-ratelimit-token-remaining': String(this.daily.remaining(now)),
    };
    return { ok, headers };
  }

  /**
   * The requests accepted at or after `since` (ms since the epoch): how many, the first and last
   * acceptance time, and the most inside one rolling window — counted as the limiter counts (a
   * request leaves the window `windowMs` after it was taken).
   */
  acceptedSince(since: number): AcceptedCalls {
    let from = this.accepted.length;
    while (from > 0 && (this.accepted[from - 1] ?? 0) >= since) from--;
    const stamps = this.accepted.slice(from);
    let peak = 0;
    for (let i = 0, j = 0; i < stamps.length; i++) {
      while ((stamps[j] ?? 0) <= (stamps[i] ?? 0) - this.settings.windowMs) j++;
      peak = Math.max(peak, i - j + 1);
    }
    return { calls: stamps.length, firstAt: stamps[0] ?? null, lastAt: stamps.at(-1) ?? null, peakInWindow: peak };
  }

  dailyRemaining(now: number): number {
    return this.daily.remaining(now);
  }
}
