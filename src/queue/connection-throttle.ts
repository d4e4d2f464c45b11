/**
 * One throttle per CRM connection (design.md §2 "queue / limits", §7 `rate_limited`). A `bottleneck`
 * limiter is configured from the connector's declared limits: a reservoir of `requestsPerWindow`
 * refilled every `windowMs`, `maxConcurrent` in flight, and an even spacing (`minTime`) so a rolling
 * window at the CRM never sees two full reservoirs back to back across a refresh boundary. When the
 * CRM says it is over (429, `REQUEST_LIMIT_EXCEEDED`) the throttle pauses until the reset time; a
 * daily quota at zero stops the connection cleanly until it resets.
 *
 * With a Redis connection (CRMHUB_REDIS_URL) the limiter is clustered: every process builds its
 * limiter with the same `id`, so they share one budget. A clustered bottleneck refills its reservoir
 * only on its heartbeat (default 5 s), which stalled a 10 req/s budget to ~2.4 req/s in issue 5's
 * measurement; `heartbeatInterval: 100` keeps the refill close to the window.
 */
import Bottleneck from 'bottleneck';
import type { Redis } from 'ioredis';
import type { ConnectorLimits, QuotaState } from '../connector-kit/connector.ts';
import { CrmhubError } from '../connector-kit/errors.ts';

export interface ConnectionThrottleOptions {
  /** Connection id shared by every process (e.g. `hubspot`); the Redis key prefix derives from it. */
  id: string;
  limits: ConnectorLimits;
  /** Shared ioredis client: limiters become clustered (one budget across processes). */
  redis?: Redis;
  /** Key namespace in Redis; default `crmhub`. Tests use a unique one. */
  namespace?: string;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** ms added to the shared window: the reply's latency between Redis' stamp and the actual call. */
const SHARED_WINDOW_MARGIN_MS = 10;
/** ms added to the in-process window (measured: 1 429 in 604 calls without it). */
const LOCAL_WINDOW_MARGIN_MS = 2;

/**
 * Sliding window in a sorted set, on Redis' clock: drop stamps older than the window; below the
 * limit → stamp and go (`{0, stamp}`); else → `{ms until the oldest stamp leaves the window, 0}`.
 */
const SHARED_WINDOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return {0, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tonumber(oldest[2]) + window - now + 1, 0}
`;

/** bottleneck reads `heartbeatInterval` but its typings omit it. */
type LimiterOptions = Bottleneck.ConstructorOptions & { heartbeatInterval?: number };

/** ms until the next UTC midnight: the usual daily-quota reset when the CRM does not say. */
function msUntilUtcMidnight(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - now;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class ConnectionThrottle {
  readonly id: string;
  readonly limits: ConnectorLimits;
  private readonly limiter: Bottleneck;
  private readonly clock: () => number;
  private readonly redis: Redis | undefined;
  private readonly pauseKey: string;
  private readonly windowKey: string;
  private pausedUntilMs = 0;
  /** Times of the calls made in the current window (ms epoch), oldest first. */
  private readonly callTimes: number[] = [];
  private stoppedUntilMs = 0;
  /** Calls that went through the limiter. */
  scheduled = 0;
  /** Times the CRM said we were over. */
  rateLimitedCount = 0;

  constructor(options: ConnectionThrottleOptions) {
    this.id = options.id;
    this.limits = options.limits;
    this.clock = options.now ?? Date.now;
    this.redis = options.redis;
    this.pauseKey = `${options.namespace ?? 'crmhub'}:${options.id}:paused-until`;
    this.windowKey = `${options.namespace ?? 'crmhub'}:${options.id}:window`;
    const { requestsPerWindow, windowMs, maxConcurrent } = options.limits;
    const local: LimiterOptions = {
      maxConcurrent,
      minTime: Math.floor(windowMs / requestsPerWindow),
      reservoir: requestsPerWindow,
      reservoirRefreshInterval: windowMs,
      reservoirRefreshAmount: requestsPerWindow,
    };
    const settings: LimiterOptions = options.redis
      ? {
          ...local,
          id: `${options.namespace ?? 'crmhub'}:${options.id}`,
          datastore: 'ioredis',
          connection: new Bottleneck.IORedisConnection({ client: options.redis }),
          clearDatastore: false,
          heartbeatInterval: 100,
          // A crashed process's running jobs free their slots after this long (ms).
          timeout: 60_000,
        }
      : local;
    this.limiter = new Bottleneck(settings);
    // Limiter errors (Redis hiccups) surface through the job promises; the event is only logged.
    this.limiter.on('error', () => undefined);
  }

  /** Whether the connection is stopped for its daily quota, and until when (ms epoch). */
  get stoppedUntil(): number | null {
    return this.stoppedUntilMs > this.clock() ? this.stoppedUntilMs : null;
  }

  /** Whether a call would wait for a pause (429 reset) right now. */
  get pausedUntil(): number | null {
    return this.pausedUntilMs > this.clock() ? this.pausedUntilMs : null;
  }

  /**
   * Runs `fn` within the budget. Waits out any pause; rejects with a `rate_limited` error without
   * calling when the daily quota is spent (the caller re-queues without counting the attempt).
   */
  async schedule<T>(fn: () => Promise<T>): Promise<T> {
    this.assertNotStopped();
    return this.limiter.schedule(async () => {
      await this.waitOutPause();
      await this.waitForWindowSlot();
      this.assertNotStopped();
      this.scheduled++;
      try {
        return await fn();
      } catch (error) {
        if (error instanceof CrmhubError && error.kind === 'rate_limited') this.onRateLimited(error.retryAfterMs);
        throw error;
      }
    });
  }

  /** The CRM said we were over: pause every caller of this connection until the reset. */
  onRateLimited(retryAfterMs: number | undefined): void {
    this.rateLimitedCount++;
    const ms = retryAfterMs ?? this.limits.windowMs;
    this.pausedUntilMs = Math.max(this.pausedUntilMs, this.clock() + ms);
    // Other processes sharing the budget see the pause through Redis (a key that expires at reset).
    if (this.redis) void this.redis.set(this.pauseKey, String(this.pausedUntilMs), 'PX', Math.max(1, ms)).catch(() => undefined);
  }

  /** Feeds the connector's header-derived quota figures in; a spent daily quota stops the connection. */
  observeQuota(quota: QuotaState | undefined): void {
    if (!quota) return;
    if (quota.dailyRemaining !== undefined && quota.dailyRemaining <= 0) {
      this.stoppedUntilMs = this.clock() + (quota.dailyResetMs ?? msUntilUtcMidnight(this.clock()));
    }
    if (quota.windowRemaining !== undefined && quota.windowRemaining <= 0 && quota.windowResetMs !== undefined) {
      this.pausedUntilMs = Math.max(this.pausedUntilMs, this.clock() + quota.windowResetMs);
    }
  }

  /** Jobs queued or running in this process. */
  counts(): Bottleneck.Counts {
    return this.limiter.counts();
  }

  async close(): Promise<void> {
    await this.limiter.stop({ dropWaitingJobs: false }).catch(() => undefined);
    // Local limiters return nothing from disconnect; clustered ones a promise. The shared ioredis
    // client stays open: its owner closes it.
    await Promise.resolve(this.limiter.disconnect(false)).catch(() => undefined);
  }

  /**
   * bottleneck spaces job *starts* by `minTime` from when it planned them, so a start delayed by a
   * busy event loop (or, clustered, by a Redis round trip) lets the next one follow closer than
   * `minTime`, and a rolling window at the CRM can see one call too many (a 429; measured 1–3 of 40
   * calls with two engines sharing Redis). This guard counts the calls actually made in the last window and
   * waits for a free slot: in process memory, or — clustered — in a Redis sorted set shared by every
   * process, stamped with Redis' own clock and a small margin for the reply's latency.
   */
  private async waitForWindowSlot(): Promise<void> {
    const { requestsPerWindow, windowMs } = this.limits;
    for (;;) {
      const wait = this.redis ? await this.sharedWindowWait() : this.localWindowWait(requestsPerWindow, windowMs);
      if (wait <= 0) return;
      await sleep(wait);
    }
  }

  private localWindowWait(requestsPerWindow: number, windowMs: number): number {
    const now = this.clock();
    // The call reaches the CRM a little after its stamp (a clock tick can pass): keep a margin.
    const window = windowMs + LOCAL_WINDOW_MARGIN_MS;
    while (this.callTimes.length > 0 && (this.callTimes[0] ?? 0) <= now - window) this.callTimes.shift();
    if (this.callTimes.length < requestsPerWindow) {
      this.callTimes.push(now);
      return 0;
    }
    return (this.callTimes[0] ?? now) + window - now + 1;
  }

  private async sharedWindowWait(): Promise<number> {
    const redis = this.redis;
    if (!redis) return 0;
    const { requestsPerWindow, windowMs } = this.limits;
    const member = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const result = await redis.eval(SHARED_WINDOW_SCRIPT, 1, this.windowKey, requestsPerWindow, windowMs + SHARED_WINDOW_MARGIN_MS, member);
    const [waitRaw, stampRaw] = Array.isArray(result) ? (result as unknown[]) : [0, 0];
    const wait = Number(waitRaw);
    if (Number.isFinite(wait) && wait > 0) return wait;
    // Granted. If this process resumed late (a busy event loop left the reply in the socket), the
    // call really happens later than its stamp: move the stamp to now so other processes count the
    // real time. Sent without waiting so it lands before any later grant.
    const stamp = Number(stampRaw);
    const late = Date.now() - stamp;
    if (stamp > 0 && late > 1 && late < windowMs) void redis.zadd(this.windowKey, 'XX', stamp + late, member).catch(() => undefined);
    return 0;
  }

  private async waitOutPause(): Promise<void> {
    if (this.redis) {
      const shared = await this.redis.get(this.pauseKey).catch(() => null);
      if (shared !== null) this.pausedUntilMs = Math.max(this.pausedUntilMs, Number(shared) || 0);
    }
    const wait = this.pausedUntilMs - this.clock();
    if (wait > 0) await sleep(wait);
  }

  private assertNotStopped(): void {
    const until = this.stoppedUntil;
    if (until !== null) {
      throw new CrmhubError('rate_limited', `Daily quota of ${this.id} spent until ${new Date(until).toISOString()}`, {
        code: 'DAILY_QUOTA_EXHAUSTED',
        context: { connection: this.id },
        retryAfterMs: until - this.clock(),
      });
    }
  }
}
