/**
 * What every part of the sync engine shares: the store, the connectors, compiled mappings, the
 * planner, identity resolution, one throttle and one work queue per connection, connection states
 * and the clock. Built once by `SyncEngine`.
 */
import PQueue from 'p-queue';
import type { Redis } from 'ioredis';
import type { Connector, ObjectDeclaration } from '../connector-kit/connector.ts';
import type { ConnectorLogger } from '../connector-kit/connector-module.ts';
import { ConnectionThrottle } from '../queue/connection-throttle.ts';
import type { ProfileStore } from '../store/port.ts';
import type { FieldPlanner, IdentityPort, SyncMappings } from './sync-types.ts';

/**
 * The lost-update guard: before updates of linked records are sent, what a rep changed in the CRM
 * and crmhub has not seen yet (a webhook late or lost) is read and applied through the conflict
 * rules first, so the diff never overwrites it blindly (design.md §4).
 *
 * - `pull` (default): one incremental pull of the object from its saved cursor, unless a pull of it
 *   completed within `readBeforeWriteFreshnessMs` (in any process: the store's pull marker says
 *   when). About one call per push round instead of one per batch. Rep edits made after the last
 *   pull and not yet delivered by webhook are the window's exposure; a push longer than the window
 *   pulls again and reads back its own writes so far (pages the next scheduled pull no longer
 *   reads). Falls back to `ids` for an object that has no saved cursor yet (its first pull would
 *   read everything).
 * - `ids`: one `readByIds` per batch of updates, right before the write (the narrowest window, and
 *   twice the calls of the writes alone).
 * - `off`: no guard; a rep edit the engine has not seen yet can be overwritten.
 */
export type ReadBeforeWrite = 'pull' | 'ids' | 'off';

export const READ_BEFORE_WRITE_KINDS: readonly ReadBeforeWrite[] = ['pull', 'ids', 'off'];

/** Default freshness of the `pull` guard, ms. */
export const DEFAULT_READ_BEFORE_WRITE_FRESHNESS_MS = 60_000;

/** Pause state of a connection (design.md §7: `auth` → needs_reauth, `config` → paused). */
export interface ConnectionState {
  status: 'ok' | 'paused' | 'needs_reauth';
  /** ms epoch until which the connection is paused. */
  until: number;
  reason: string | null;
}

export interface RetryPolicy {
  /** Counted attempts before a transient failure dead-letters. Default 6. */
  maxAttempts: number;
  /** First backoff in ms. Default 1 000. */
  baseMs: number;
  /** Backoff ceiling in ms. Default 300 000. */
  maxMs: number;
}

export interface EngineContext {
  store: ProfileStore;
  connectors: Map<string, Connector>;
  mappings: SyncMappings;
  planner: FieldPlanner;
  identity: IdentityPort;
  retry: RetryPolicy;
  /** Outbox lease length in ms. */
  leaseMs: number;
  /** The lost-update guard run before updates are sent (see {@link ReadBeforeWrite}). */
  readBeforeWrite: ReadBeforeWrite;
  /** `pull` guard: a pull of the object that completed this recently (ms) is fresh enough. */
  readBeforeWriteFreshnessMs: number;
  /**
   * Hold creates for an object until one pull of it has completed, so records the CRM already has
   * get linked (by the inbound join keys) before crmhub would create them again. Default false.
   */
  holdCreatesUntilPulled: boolean;
  /** How long an `auth`/`config` failure pauses a connection before the next try, in ms. */
  pauseMs: number;
  now(): number;
  random(): number;
  logger: ConnectorLogger | undefined;
  throttle(slug: string): ConnectionThrottle;
  /** Bounds in-process work per connection: one slow CRM never stalls another's queue. */
  workQueue(slug: string): PQueue;
  states: Map<string, ConnectionState>;
  connector(slug: string): Connector;
  declaration(slug: string, object: string): ObjectDeclaration;
}

export interface ContextOptions {
  store: ProfileStore;
  connectors: Map<string, Connector>;
  mappings: SyncMappings;
  planner: FieldPlanner;
  identity: IdentityPort;
  retry?: Partial<RetryPolicy>;
  leaseMs?: number;
  /**
   * Default `pull`. `true` means the default guard, `false` means `off` (the boolean form is kept
   * for callers written before the guard had kinds).
   */
  readBeforeWrite?: ReadBeforeWrite | boolean;
  /** How recent a pull must be for the `pull` guard to skip its own, ms. Default 60 000. */
  readBeforeWriteFreshnessMs?: number;
  /** Default false; `crmhub serve` turns it on (workers and the first scheduled pull race). */
  holdCreatesUntilPulled?: boolean;
  pauseMs?: number;
  now?: () => number;
  random?: () => number;
  logger?: ConnectorLogger;
  /** Clustered limiters share one budget per connection across processes. */
  redis?: Redis;
  /** Redis key namespace for limiters. Default `crmhub`. */
  redisNamespace?: string;
}

export function createEngineContext(options: ContextOptions): EngineContext & { closeThrottles(): Promise<void> } {
  const throttles = new Map<string, ConnectionThrottle>();
  const queues = new Map<string, PQueue>();
  const now = options.now ?? Date.now;
  const ctx: EngineContext & { closeThrottles(): Promise<void> } = {
    store: options.store,
    connectors: options.connectors,
    mappings: options.mappings,
    planner: options.planner,
    identity: options.identity,
    retry: { maxAttempts: 6, baseMs: 1_000, maxMs: 300_000, ...options.retry },
    leaseMs: options.leaseMs ?? 60_000,
    readBeforeWrite: options.readBeforeWrite === true || options.readBeforeWrite === undefined ? 'pull' : options.readBeforeWrite === false ? 'off' : options.readBeforeWrite,
    readBeforeWriteFreshnessMs: options.readBeforeWriteFreshnessMs ?? DEFAULT_READ_BEFORE_WRITE_FRESHNESS_MS,
    holdCreatesUntilPulled: options.holdCreatesUntilPulled ?? false,
    pauseMs: options.pauseMs ?? 300_000,
    now,
    random: options.random ?? Math.random,
    logger: options.logger,
    states: new Map(),
    connector(slug) {
      const c = options.connectors.get(slug);
      if (!c) throw new TypeError(`connector ${slug} is not configured`);
      return c;
    },
    declaration(slug, object) {
      const d = ctx.connector(slug).declaration.objects.find((o) => o.name === object);
      if (!d) throw new TypeError(`connector ${slug} declares no object ${object}`);
      return d;
    },
    throttle(slug) {
      let t = throttles.get(slug);
      if (!t) {
        t = new ConnectionThrottle({
          id: slug,
          limits: ctx.connector(slug).declaration.limits,
          now,
          ...(options.redis ? { redis: options.redis } : {}),
          ...(options.redisNamespace ? { namespace: options.redisNamespace } : {}),
        });
        throttles.set(slug, t);
      }
      return t;
    },
    workQueue(slug) {
      let q = queues.get(slug);
      if (!q) {
        q = new PQueue({ concurrency: ctx.connector(slug).declaration.limits.maxConcurrent });
        queues.set(slug, q);
      }
      return q;
    },
    async closeThrottles() {
      for (const q of queues.values()) await q.onIdle();
      await Promise.all([...throttles.values()].map((t) => t.close()));
      throttles.clear();
    },
  };
  return ctx;
}

/** ISO time of the context clock. */
export function isoNow(ctx: Pick<EngineContext, 'now'>, plusMs = 0): string {
  return new Date(ctx.now() + plusMs).toISOString();
}

/**
 * Cursor key that marks "one pull of this object ran to the end". Kept in the cursors table under a
 * name no CRM object can have, so no migration is needed for one flag.
 */
export function pulledMarker(object: string): string {
  return `${object}#pulled`;
}
