/**
 * One throttle per CRM connection (design.md §2 "queue / limits", §7 `rate_limited`). A `bottleneck`
 * limiter is configured from the connector's declared limits: a reservoir of `requestsPerWindow`
 * refilled every `windowMs`, `maxConcurrent` in flight, and an even spacing (`minTime`) so a rolling
 * window at the CRM never sees two full reservoirs back to back across a refresh boundary. When the
 * CRM says it is over (429, `REQUEST_LIMIT_EXCEEDED`) the throttle pauses until the reset time; a
 * daily quota at zero stops the connection cleanly until it resets.
 *
 * Search budget: where the connector declares one (`limits.search`, e.g. HubSpot 5 searches/s apart
 * from its 10-second window), calls scheduled with `{ search: true }` also pass a second limiter
 * built from it — they spend both budgets — while other calls never wait for it. A 429 on a search
 * call pauses only searches.
 *
 * With a Redis connection (CRMHUB_REDIS_URL) the limiters are clustered: every process builds its
 * limiters with the same `id`, so they share one budget. A clustered bottleneck refills its reservoir
 * only on its heartbeat (default 5 s), which stalled a 10 req/s budget to ~2.4 req/s in issue 5's
 * measurement; `heartbeatInterval: 100` keeps the refill close to the window.
 */
import Bottleneck from 'bottleneck';
import type { Redis } from 'ioredis';
import type { ConnectorLimits, QuotaState, SearchCall } from '../connector-kit/connector.ts';
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

export interface ScheduleOptions {
  /**
   * The call runs a CRM search: it also waits for the declared search budget (`limits.search`).
   * Ignored when the connector declares none. Default false.
   */
  search?: boolean;
}

/** ms added to the shared window: the reply's latency between Redis' stamp and the actual call. */
const SHARED_WINDOW_MARGIN_MS = 10;
/** ms added to the in-process window (measured: 1 429 in 604 calls without it). */
const LOCAL_WINDOW_MARGIN_MS = 2;

/**
 * Sliding window in a sorted set, on Redis' clock: drop stamps older than the window; below the
 * limit → stamp and go (`{0, stamp}`); else → `{ms until the oldest stamp leaves the window, 0}`.
 * With an empty member it only looks: `{0, 0}` when a slot is free, nothing stamped.
 */
const SHARED_WINDOW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  if ARGV[3] == '' then
    return {0, 0}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return {0, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tonumber(oldest[2]) + window - now + 1, 0}
`;

/** bottleneck reads `heartbeatInterval` but its typings omit it. */
type LimiterOptions = Bottleneck.ConstructorOptions & { heartbeatInterval?: number };

/** One budget: its limiter, its rolling-window guard and its pause. */
interface Lane {
  /** `general` or `search` (log and key names). */
  name: string;
  requestsPerWindow: number;
  windowMs: number;
  limiter: Bottleneck;
  /** Times of the calls made in the current window (ms epoch), oldest first (in-process guard). */
  callTimes: number[];
  /** Redis keys of the shared window and pause. */
  windowKey: string;
  pauseKey: string;
  pausedUntilMs: number;
}

/** A granted window slot, to move to the real call time when the call went out later. */
type Slot =
  { kind: 'local'; at: number } | { kind: 'shared'; member: string; stamp: number; grantedAt: number };

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
  private readonly general: Lane;
  /** The declared search budget's lane; null when the connector declares none. */
  private readonly search: Lane | null;
  private readonly clock: () => number;
  private readonly redis: Redis | undefined;
  private stoppedUntilMs = 0;
  /** Calls that went through the limiter. */
  scheduled = 0;
  /** Of those, calls that also spent the search budget. */
  searchScheduled = 0;
  /** Times the CRM said we were over. */
  rateLimitedCount = 0;

  constructor(options: ConnectionThrottleOptions) {
    this.id = options.id;
    this.limits = options.limits;
    this.clock = options.now ?? Date.now;
    this.redis = options.redis;
    const namespace = options.namespace ?? 'crmhub';
    const { requestsPerWindow, windowMs, maxConcurrent } = options.limits;
    this.general = this.lane(options, 'general', `${namespace}:${options.id}`, {
      requestsPerWindow,
      windowMs,
      maxConcurrent,
    });
    const search = options.limits.search;
    this.search = search
      ? this.lane(options, 'search', `${namespace}:${options.id}:search`, {
          requestsPerWindow: search.requestsPerWindow,
          windowMs: search.windowMs,
          maxConcurrent,
        })
      : null;
  }

  /** Builds one lane; the general lane keeps the key names of earlier versions (shared with them in Redis). */
  private lane(
    options: ConnectionThrottleOptions,
    name: string,
    prefix: string,
    limits: { requestsPerWindow: number; windowMs: number; maxConcurrent: number },
  ): Lane {
    const { requestsPerWindow, windowMs, maxConcurrent } = limits;
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
          id: prefix,
          datastore: 'ioredis',
          connection: new Bottleneck.IORedisConnection({ client: options.redis }),
          clearDatastore: false,
          heartbeatInterval: 100,
          // A crashed process's running jobs free their slots after this long (ms).
          timeout: 60_000,
        }
      : local;
    const limiter = new Bottleneck(settings);
    // Limiter errors (Redis hiccups) surface through the job promises; the event is only logged.
    limiter.on('error', () => undefined);
    return {
      name,
      requestsPerWindow,
      windowMs,
      limiter,
      callTimes: [],
      windowKey: `${prefix}:window`,
      pauseKey: `${prefix}:paused-until`,
      pausedUntilMs: 0,
    };
  }

  /** Whether the connector declared that `call` runs searches (`limits.search.usedBy`). */
  usesSearch(call: SearchCall): boolean {
    return this.search !== null && (this.limits.search?.usedBy?.includes(call) ?? false);
  }

  /** Whether the connection is stopped for its daily quota, and until when (ms epoch). */
  get stoppedUntil(): number | null {
    return this.stoppedUntilMs > this.clock() ? this.stoppedUntilMs : null;
  }

  /** Whether a call would wait for a pause (429 reset) right now. */
  get pausedUntil(): number | null {
    return this.general.pausedUntilMs > this.clock() ? this.general.pausedUntilMs : null;
  }

  /** Whether a search call would wait for a search pause (a search 429's reset) right now. */
  get searchPausedUntil(): number | null {
    const until = this.search?.pausedUntilMs ?? 0;
    return until > this.clock() ? until : null;
  }

  /**
   * Runs `fn` within the budget — and within the search budget too with `{ search: true }`. Waits
   * out any pause; rejects with a `rate_limited` error without calling when the daily quota is
   * spent (the caller re-queues without counting the attempt).
   */
  async schedule<T>(fn: () => Promise<T>, options: ScheduleOptions = {}): Promise<T> {
    this.assertNotStopped();
    const search = options.search === true ? this.search : null;
    const run = (): Promise<T> =>
      this.general.limiter.schedule(async () => {
        await this.waitOutPause(this.general);
        const slot = await this.waitForWindowSlot(this.general);
        if (search) {
          await this.waitOutPause(search);
          // The search slot is the last wait, so its stamp is the call's real time; a general stamp
          // taken before a search wait is moved to that time too.
          const waited = await this.waitForWindowSlot(search);
          if (waited.waitedMs > 0) await this.restamp(this.general, slot.slot);
        }
        this.assertNotStopped();
        this.scheduled++;
        if (search) this.searchScheduled++;
        try {
          return await fn();
        } catch (error) {
          if (error instanceof CrmhubError && error.kind === 'rate_limited')
            this.pause(search ?? this.general, error.retryAfterMs);
          throw error;
        }
      });
    if (!search) return run();
    // Searches queue in their own limiter first and wait there for a search pause to end and for a
    // free slot of the search window: while they wait for the search budget they hold no slot of
    // the general limiter, so other calls are not held up behind them. (The slot is taken inside,
    // right before the call; it is rarely gone by then.)
    return search.limiter.schedule(async () => {
      await this.waitOutPause(search);
      for (let wait = await this.windowFreeInMs(search); wait > 0; wait = await this.windowFreeInMs(search))
        await sleep(wait);
      return run();
    });
  }

  /** The CRM said we were over: pause every caller of this connection until the reset. */
  onRateLimited(retryAfterMs: number | undefined): void {
    this.pause(this.general, retryAfterMs);
  }

  private pause(lane: Lane, retryAfterMs: number | undefined): void {
    this.rateLimitedCount++;
    const ms = retryAfterMs ?? lane.windowMs;
    lane.pausedUntilMs = Math.max(lane.pausedUntilMs, this.clock() + ms);
    // Other processes sharing the budget see the pause through Redis (a key that expires at reset).
    if (this.redis)
      void this.redis
        .set(lane.pauseKey, String(lane.pausedUntilMs), 'PX', Math.max(1, ms))
        .catch(() => undefined);
  }

  /** Feeds the connector's header-derived quota figures in; a spent daily quota stops the connection. */
  observeQuota(quota: QuotaState | undefined): void {
    if (!quota) return;
    if (quota.dailyRemaining !== undefined && quota.dailyRemaining <= 0) {
      this.stoppedUntilMs = this.clock() + (quota.dailyResetMs ?? msUntilUtcMidnight(this.clock()));
    }
    if (
      quota.windowRemaining !== undefined &&
      quota.windowRemaining <= 0 &&
      quota.windowResetMs !== undefined
    ) {
      this.general.pausedUntilMs = Math.max(this.general.pausedUntilMs, this.clock() + quota.windowResetMs);
    }
  }

  /** Jobs queued or running in this process (general limiter; searches waiting for their budget are in `searchCounts`). */
  counts(): Bottleneck.Counts {
    return this.general.limiter.counts();
  }

  /** Search jobs queued or running in this process (all zero without a search budget). */
  searchCounts(): Bottleneck.Counts | null {
    return this.search?.limiter.counts() ?? null;
  }

  async close(): Promise<void> {
    for (const lane of this.search ? [this.search, this.general] : [this.general]) {
      await lane.limiter.stop({ dropWaitingJobs: false }).catch(() => undefined);
      // Local limiters return nothing from disconnect; clustered ones a promise. The shared ioredis
      // client stays open: its owner closes it.
      await Promise.resolve(lane.limiter.disconnect(false)).catch(() => undefined);
    }
  }

  /**
   * bottleneck spaces job *starts* by `minTime` from when it planned them, so a start delayed by a
   * busy event loop (or, clustered, by a Redis round trip) lets the next one follow closer than
   * `minTime`, and a rolling window at the CRM can see one call too many (a 429; measured 1–3 of 40
   * calls with two engines sharing Redis). This guard counts the calls actually made in the last window and
   * waits for a free slot: in process memory, or — clustered — in a Redis sorted set shared by every
   * process, stamped with Redis' own clock and a small margin for the reply's latency.
   */
  private async waitForWindowSlot(lane: Lane): Promise<{ slot: Slot; waitedMs: number }> {
    let waitedMs = 0;
    for (;;) {
      const granted = this.redis ? await this.sharedWindowSlot(lane) : this.localWindowSlot(lane);
      if (typeof granted !== 'number') return { slot: granted, waitedMs };
      await sleep(granted);
      waitedMs += granted;
    }
  }

  /** ms until the lane's window has a free slot (0 = now), without taking it. */
  private async windowFreeInMs(lane: Lane): Promise<number> {
    if (this.redis) {
      const result = await this.redis.eval(
        SHARED_WINDOW_SCRIPT,
        1,
        lane.windowKey,
        lane.requestsPerWindow,
        lane.windowMs + SHARED_WINDOW_MARGIN_MS,
        '',
      );
      const wait = Number(Array.isArray(result) ? (result as unknown[])[0] : 0);
      return Number.isFinite(wait) ? wait : 0;
    }
    const wait = this.localWindowSlot(lane, false);
    return typeof wait === 'number' ? wait : 0;
  }

  /** A slot (stamped now; with `take` false only 0 = free), or the ms to wait for one. */
  private localWindowSlot(lane: Lane, take = true): Slot | number {
    const now = this.clock();
    // The call reaches the CRM a little after its stamp (a clock tick can pass): keep a margin.
    const window = lane.windowMs + LOCAL_WINDOW_MARGIN_MS;
    const times = lane.callTimes;
    while (times.length > 0 && (times[0] ?? 0) <= now - window) times.shift();
    if (times.length < lane.requestsPerWindow) {
      if (!take) return 0;
      times.push(now);
      return { kind: 'local', at: now };
    }
    return (times[0] ?? now) + window - now + 1;
  }

  private async sharedWindowSlot(lane: Lane): Promise<Slot | number> {
    const redis = this.redis;
    if (!redis) return 0;
    const member = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const result = await redis.eval(
      SHARED_WINDOW_SCRIPT,
      1,
      lane.windowKey,
      lane.requestsPerWindow,
      lane.windowMs + SHARED_WINDOW_MARGIN_MS,
      member,
    );
    const [waitRaw, stampRaw] = Array.isArray(result) ? (result as unknown[]) : [0, 0];
    const wait = Number(waitRaw);
    if (Number.isFinite(wait) && wait > 0) return wait;
    // Granted. If this process resumed late (a busy event loop left the reply in the socket), the
    // call really happens later than its stamp: move the stamp to now so other processes count the
    // real time. Sent without waiting so it lands before any later grant.
    const stamp = Number(stampRaw);
    const late = Date.now() - stamp;
    const moved = stamp > 0 && late > 1 && late < lane.windowMs;
    if (moved) void redis.zadd(lane.windowKey, 'XX', stamp + late, member).catch(() => undefined);
    return { kind: 'shared', member, stamp: moved ? stamp + late : stamp, grantedAt: Date.now() };
  }

  /** Moves a granted slot's stamp to now: the call goes out later than it was stamped. */
  private async restamp(lane: Lane, slot: Slot): Promise<void> {
    if (slot.kind === 'local') {
      const i = lane.callTimes.indexOf(slot.at);
      if (i >= 0) lane.callTimes.splice(i, 1);
      // Now is the newest time in the window, so the list stays in order.
      lane.callTimes.push(this.clock());
      return;
    }
    const later = slot.stamp + (Date.now() - slot.grantedAt);
    await this.redis?.zadd(lane.windowKey, 'XX', later, slot.member).catch(() => undefined);
  }

  private async waitOutPause(lane: Lane): Promise<void> {
    if (this.redis) {
      const shared = await this.redis.get(lane.pauseKey).catch(() => null);
      if (shared !== null) lane.pausedUntilMs = Math.max(lane.pausedUntilMs, Number(shared) || 0);
    }
    const wait = lane.pausedUntilMs - this.clock();
    if (wait > 0) await sleep(wait);
  }

  private assertNotStopped(): void {
    const until = this.stoppedUntil;
    if (until !== null) {
      throw new CrmhubError(
        'rate_limited',
        `Daily quota of ${this.id} spent until ${new Date(until).toISOString()}`,
        {
          code: 'DAILY_QUOTA_EXHAUSTED',
          context: { connection: this.id },
          retryAfterMs: until - this.clock(),
        },
      );
    }
  }
}
