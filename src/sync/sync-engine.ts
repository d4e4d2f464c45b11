/**
 * The sync engine (design.md §3, §4, §7): pulls by cursor (the cursor saved only after its page is
 * applied), full reconciliation passes that find missed changes and deletes (never deleting good
 * records when a pull fails halfway), webhook intake (verify → dedupe by delivery id → fast reply →
 * process after), the outbox workers, one-off runs recorded in `sync_runs`, and the hook the ingest
 * path calls when profiles change.
 */
import { randomUUID } from 'node:crypto';
import type { ProfileId } from '../core/types.ts';
import type { RemoteRecord, WebhookRequest } from '../connector-kit/connector.ts';
import { toCrmhubError } from '../connector-kit/errors.ts';
import type { StoreTx } from '../store/port.ts';
import { applyRemoteChanges, emptyApplyCounts, type ApplyCounts, type ApplyOptions } from './apply-remote-changes.ts';
import { basicIdentity } from './basic-identity.ts';
import { basicMerge } from './basic-merge.ts';
import { createEngineContext, isoNow, pulledMarker, type ContextOptions, type EngineContext } from './engine-context.ts';
import { inboundJoinKeys } from './inbound-join-keys.ts';
import { enqueueProfileChanges } from './outbox-enqueue.ts';
import { backoffMs, emptyDrainCounts, OutboxWorker, type DrainCounts, type DrainOptions } from './outbox-worker.ts';

/** Longest a pull waits for one page before giving the run up (a daily quota is longer), ms. */
const MAX_READ_WAIT_MS = 60_000;
/** Rate-limited reads of one page before the run gives up (they are not counted as attempts). */
const MAX_RATE_LIMITED_READS = 20;
import type { FieldPlanner, IdentityPort } from './sync-types.ts';
import { WebhookInbox, type ReceiveOptions, type ReceiveResult } from './webhook-inbox.ts';

/**
 * Engine settings: everything of `ContextOptions` (store, connectors, mappings, retry policy,
 * `leaseMs` default 60 000, `readBeforeWrite` default `pull` — before updates are sent, one
 * incremental pull of the object per `readBeforeWriteFreshnessMs` (default 60 000) so undelivered
 * rep edits meet the conflict rules; `ids` reads the linked records per batch instead —,
 * `pauseMs` default 300 000, clock, logger,
 * `redis` to share each connection's budget across processes) with the planner and identity
 * optional.
 */
export interface SyncEngineOptions extends Omit<ContextOptions, 'planner' | 'identity'> {
  /** Default: the engine's fallback three-way merge (`threeWayPlanner` is the real one). */
  planner?: FieldPlanner;
  /** Default: the engine's fallback resolver (first known identifier, else create). */
  identity?: IdentityPort;
  /** Worker id for leases; default a random one per engine. */
  owner?: string;
  /** Page size for pulls. Default 100. */
  pageSize?: number;
  /** How long processed webhook receipts are kept for dedupe before pruning, ms. Default 7 days. */
  webhookRetentionMs?: number;
}

export type SyncDirection = 'pull' | 'push' | 'both';

export interface RunOnceOptions {
  connector?: string;
  object?: string;
  /** Default `both`. */
  direction?: SyncDirection;
  /** Reconciliation pass: read everything, find missed changes and deletes. */
  full?: boolean;
  /** Plan only: nothing is written anywhere. */
  dryRun?: boolean;
  /** `cli`, `cron`, `admin`. Default `manual`. */
  trigger?: string;
  /** Progress callback (records applied or sent so far for one connector object). */
  onProgress?: (event: { connector: string; object: string; phase: 'pull' | 'push'; done: number; total: number | null }) => void;
  /** Receives each planned record in dry runs. */
  onPlan?: ApplyOptions['onPlan'];
}

export interface ObjectRunSummary {
  connector: string;
  object: string;
  runId: string | null;
  status: 'succeeded' | 'failed' | 'partial';
  created: number;
  updated: number;
  skipped: number;
  failed: number;
  deleted: number;
  conflicts: number;
  apiCalls: number;
  /** Outbox rows pending for this connector after the run (dry runs: what would be sent). */
  pending: number;
  durationMs: number;
  mappingVersion: string | null;
  error: string | null;
}

/** One object's run while `runOnce` moves through its phases. */
interface ObjectRun {
  out: ObjectRunSummary;
  /** ms epoch the object's run started. */
  startedAt: number;
}

export interface RunSummary {
  dryRun: boolean;
  direction: SyncDirection;
  full: boolean;
  objects: ObjectRunSummary[];
  durationMs: number;
}

export class SyncEngine {
  readonly ctx: EngineContext;
  readonly owner: string;
  private readonly worker: OutboxWorker;
  private readonly closeThrottles: () => Promise<void>;
  private readonly pageSize: number;
  private readonly inbox: WebhookInbox;
  private loops: { stop: () => void; done: Promise<void> }[] = [];

  constructor(options: SyncEngineOptions) {
    const ctx = createEngineContext({ ...options, planner: options.planner ?? basicMerge, identity: options.identity ?? basicIdentity });
    this.ctx = ctx;
    this.closeThrottles = () => ctx.closeThrottles();
    this.owner = options.owner ?? `worker-${randomUUID()}`;
    // The `pull` lost-update guard runs the engine's own incremental pull (cursor, paging, retries).
    this.worker = new OutboxWorker(ctx, { pull: (connector, object) => this.pull(connector, object, { trigger: `guard:${connector}.${object}` }) });
    this.pageSize = options.pageSize ?? 100;
    this.inbox = new WebhookInbox(ctx, { owner: this.owner, ...(options.webhookRetentionMs !== undefined ? { retentionMs: options.webhookRetentionMs } : {}) });
  }

  /** Whether a connector with this slug is configured. */
  has(slug: string): boolean {
    return this.ctx.connectors.has(slug);
  }

  /** Connector objects that are both configured and mapped, optionally filtered. */
  targets(filter: { connector?: string; object?: string } = {}): { connector: string; object: string }[] {
    return this.ctx.mappings
      .list()
      .filter((m) => this.ctx.connectors.has(m.connector) && this.ctx.connectors.get(m.connector)!.declaration.objects.some((o) => o.name === m.object))
      .filter((m) => (filter.connector ? m.connector === filter.connector : true) && (filter.object ? m.object === filter.object : true))
      .map((m) => ({ connector: m.connector, object: m.object }));
  }

  // ---- inbound ---------------------------------------------------------------------------------

  /** Applies remote records of one connector object (see `apply-remote-changes.ts`). */
  applyRemoteChanges(connector: string, object: string, records: RemoteRecord[], options: Partial<ApplyOptions> = {}): Promise<ApplyCounts> {
    return applyRemoteChanges(this.ctx, connector, object, records, { trigger: options.trigger ?? 'apply', ...options });
  }

  /**
   * Pulls one connector object. Incremental: from the stored cursor, page by page, each page applied
   * before its cursor is saved (a crash re-reads at most one page; applying is idempotent). Full:
   * everything from the start; only when every page was read are shadows the CRM no longer returns
   * marked deleted — a pull that fails halfway deletes nothing.
   */
  async pull(connector: string, object: string, options: { full?: boolean; dryRun?: boolean; trigger?: string; onPlan?: ApplyOptions['onPlan']; onProgress?: (done: number) => void } = {}): Promise<ApplyCounts & { apiCalls: number }> {
    const { ctx } = this;
    const c = ctx.connector(connector);
    const throttle = ctx.throttle(connector);
    const mapping = ctx.mappings.get(connector, object);
    const fields = mapping ? [...new Set(mapping.fields.map((f) => f.remoteField).concat(inboundJoinKeys(mapping).map((m) => m.remote)))] : undefined;
    const counts = { ...emptyApplyCounts(), apiCalls: 0 };
    const seen = new Set<string>();
    let cursor = options.full ? null : ((await ctx.store.read().getCursor(connector, object))?.value ?? null);
    let done = 0;
    for (let pages = 0; pages < 1_000_000; pages++) {
      const at = cursor;
      const page = await this.readPage(connector, object, counts, () =>
        throttle.schedule(() => c.readChanges(object, at, { pageSize: this.pageSize, ...(fields ? { fields } : {}), ...(options.full ? { full: true } : {}) }), { search: throttle.usesSearch('readChanges') }),
      );
      throttle.observeQuota(c.quota?.());
      const applied = await this.applyRemoteChanges(connector, object, page.records, {
        trigger: options.trigger ?? `pull:${connector}.${object}`,
        ...(options.dryRun ? { dryRun: true } : {}),
        ...(options.onPlan ? { onPlan: options.onPlan } : {}),
      });
      for (const k of Object.keys(applied) as (keyof ApplyCounts)[]) counts[k] += applied[k];
      for (const r of page.records) if (!r.deleted) seen.add(r.id);
      done += page.records.length;
      options.onProgress?.(done);
      if (page.nextCursor !== null) {
        cursor = page.nextCursor;
        if (!options.full && !options.dryRun) {
          const value = page.nextCursor;
          await ctx.store.transaction((tx) => tx.setCursor(connector, object, value, isoNow(ctx)));
        }
      }
      if (page.done) break;
    }
    if (!options.dryRun) {
      const at = isoNow(ctx);
      await ctx.store.transaction((tx) => tx.setCursor(connector, pulledMarker(object), at, at));
    }
    if (options.full) counts.deleted += await this.reconcileDeletes(connector, object, seen, options.dryRun ?? false);
    return counts;
  }

  /**
   * Reads one page, retrying what the taxonomy calls retryable (design.md §7): a transient failure
   * (5xx, timeout, reset) backs off with jitter and counts towards `retry.maxAttempts`; a rate-limited
   * one waits for its reset and is not counted, unless the wait is longer than a pull should block
   * (a spent daily quota), when the run fails and the next run resumes from the saved cursor.
   */
  private async readPage<T>(connector: string, object: string, counts: { apiCalls: number }, read: () => Promise<T>): Promise<T> {
    const { ctx } = this;
    let attempts = 0;
    let rateLimited = 0;
    for (;;) {
      counts.apiCalls++;
      try {
        return await read();
      } catch (error) {
        const e = toCrmhubError(error, { connector, object });
        if (!e.retryable) throw e;
        if (e.countsAsAttempt) attempts++;
        else rateLimited++;
        if (attempts >= ctx.retry.maxAttempts || rateLimited > MAX_RATE_LIMITED_READS || (e.retryAfterMs ?? 0) > MAX_READ_WAIT_MS) throw e;
        const waitMs = Math.min(MAX_READ_WAIT_MS, backoffMs(ctx, Math.max(1, attempts), e.retryAfterMs));
        ctx.logger?.warn({ connector, object, kind: e.kind, code: e.code, attempts, waitMs }, 'pull page failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  /** After a complete full read: shadows not seen are gone at the CRM. */
  private async reconcileDeletes(connector: string, object: string, seen: Set<string>, dryRun: boolean): Promise<number> {
    const read = this.ctx.store.read();
    if (!read.listRemoteRecords) return 0;
    let after: string | undefined;
    let deleted = 0;
    for (;;) {
      const page = await read.listRemoteRecords(connector, object, { limit: 500, ...(after === undefined ? {} : { afterRemoteId: after }) });
      if (page.length === 0) break;
      for (const row of page) {
        if (row.deleted || seen.has(row.remoteId)) continue;
        deleted++;
        if (!dryRun) await this.ctx.store.transaction((tx) => tx.upsertRemoteRecord({ ...row, deleted: true, syncedAt: isoNow(this.ctx) }));
      }
      after = page[page.length - 1]!.remoteId;
    }
    return deleted;
  }

  /**
   * Webhook intake (the durable inbox, `webhook-inbox.ts`). Verifies (the connector rejects with
   * `auth`), stores each new change with its delivery receipt in one transaction (duplicates by
   * delivery id store nothing), and returns the reply at once; the changes are applied after
   * (`settled()` waits for that) and their receipts marked processed. Receipts left unprocessed by a
   * crash are applied by `processPendingWebhooks()`.
   */
  receiveWebhook(slug: string, request: WebhookRequest, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    return this.inbox.receive(slug, request, options);
  }

  /** Waits for webhook processing started so far. */
  settled(): Promise<void> {
    return this.inbox.settled();
  }

  /**
   * Applies webhook receipts left unprocessed (the process died after answering, or applying failed
   * and its retry time has come), oldest change first; receipts another live engine holds a lease
   * on are left to it. Call at start-up; `startWebhookInbox()` also runs it periodically.
   * @returns receipts claimed.
   */
  processPendingWebhooks(options: { connectors?: readonly string[] } = {}): Promise<number> {
    return this.inbox.processPending(options);
  }

  /** Deletes processed webhook receipts older than the retention (`webhookRetentionMs`). */
  pruneWebhookReceipts(): Promise<number> {
    return this.inbox.prune();
  }

  /**
   * Starts the inbox sweep: pending receipts are applied now and every `pollMs` (default 30 000),
   * old processed receipts pruned hourly. Stopped by `close()`.
   */
  startWebhookInbox(options: { pollMs?: number } = {}): void {
    this.inbox.start(options);
  }

  // ---- outbound --------------------------------------------------------------------------------

  /**
   * Hook for the ingest path, called INSIDE its transaction: enqueues outbox rows for every mapped
   * connector object whose mapping has `to_remote` fields (the worker sends only what differs).
   */
  async onProfilesChanged(tx: StoreTx, profileIds: ProfileId[], changedKeys?: ReadonlySet<string>): Promise<number> {
    let rows = 0;
    const target = { mappings: this.ctx.mappings, enabled: new Set(this.ctx.connectors.keys()) };
    for (const id of new Set(profileIds)) {
      const profile = await tx.resolveProfile(id);
      if (!profile) continue;
      rows += await enqueueProfileChanges(tx, target, profile.id, profile.kind, changedKeys ?? null, null);
    }
    return rows;
  }

  /** `onProfilesChanged` in the ingest path's hook shape (`ProfilesChangedHook`): pass it as is. */
  readonly profilesChangedHook = async (tx: StoreTx, profileIds: ProfileId[]): Promise<void> => {
    await this.onProfilesChanged(tx, profileIds);
  };

  /** Sends due outbox rows of one connector until none are due. */
  push(connector: string, options: Partial<DrainOptions> = {}): Promise<DrainCounts> {
    return this.worker.drain({ owner: this.owner, connector, ...options });
  }

  /** One claim round (tests drive crashes between steps with `step`). */
  pushOnce(connector: string, options: Partial<DrainOptions> = {}): Promise<DrainCounts> {
    return this.worker.drainOnce({ owner: this.owner, connector, ...options });
  }

  /**
   * Starts one drain loop per connector (separate loops: one slow CRM never stalls the others).
   * Each loop sleeps `pollMs` when nothing is due.
   */
  startWorkers(options: { pollMs?: number } = {}): void {
    const pollMs = options.pollMs ?? 1_000;
    for (const slug of this.ctx.connectors.keys()) {
      let stopped = false;
      let wake: (() => void) | null = null;
      const done = (async () => {
        while (!stopped) {
          let claimed = 0;
          try {
            // Rounds side by side (drain), so claims and diffs overlap the calls in flight.
            claimed = (await this.worker.drain({ owner: this.owner, connector: slug, stop: () => stopped })).claimed;
          } catch (error) {
            this.ctx.logger?.error({ err: toCrmhubError(error, { connector: slug }).toJSON() }, 'outbox worker round failed');
          }
          if (claimed === 0 && !stopped) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, pollMs).unref();
            });
          }
        }
      })();
      this.loops.push({ stop: () => ((stopped = true), wake?.()), done });
    }
  }

  async stopWorkers(): Promise<void> {
    for (const l of this.loops) l.stop();
    await Promise.all(this.loops.map((l) => l.done));
    this.loops = [];
  }

  /** Connection pause states (`needs_reauth`, `paused`), for admin and readiness. */
  connectionStates(): Record<string, { status: string; until: string | null; reason: string | null }> {
    const out: Record<string, { status: string; until: string | null; reason: string | null }> = {};
    for (const slug of this.ctx.connectors.keys()) {
      const s = this.ctx.states.get(slug);
      const active = s && s.until > this.ctx.now();
      out[slug] = { status: active ? s.status : 'ok', until: active ? new Date(s.until).toISOString() : null, reason: active ? s.reason : null };
    }
    return out;
  }

  // ---- runs ------------------------------------------------------------------------------------

  /** One sync run over the selected connector objects, each recorded in `sync_runs`. */
  async runOnce(options: RunOnceOptions = {}): Promise<RunSummary> {
    const started = Date.now();
    const direction = options.direction ?? 'both';
    const summary: RunSummary = { dryRun: options.dryRun ?? false, direction, full: options.full ?? false, objects: [], durationMs: 0 };
    const filter = { ...(options.connector ? { connector: options.connector } : {}), ...(options.object ? { object: options.object } : {}) };
    const runs: ObjectRun[] = [];
    for (const target of this.targets(filter)) runs.push(await this.startObjectRun(target.connector, target.object, options));
    // Webhook changes a crashed process acknowledged but never applied go first: they are older
    // than anything the pulls below read. A failure here is logged; the pulls cover the changes.
    if (direction !== 'push' && !options.dryRun && runs.length > 0) {
      await this.processPendingWebhooks({ connectors: [...new Set(runs.map((r) => r.out.connector))] }).catch((error: unknown) => {
        this.ctx.logger?.error({ err: toCrmhubError(error).toJSON() }, 'pending webhook receipts not processed');
      });
    }
    // Every pull before any push: a pull of one CRM enqueues writes for the others, and pushing an
    // object before the later pulls ran would leave those writes for the next run.
    if (direction !== 'push') for (const run of runs) await this.pullPhase(run, options);
    if (direction !== 'pull' && !options.dryRun) for (const run of runs) await this.pushPhase(run, options);
    for (const run of runs) summary.objects.push(await this.finishObjectRun(run));
    summary.durationMs = Date.now() - started;
    return summary;
  }

  private async startObjectRun(connector: string, object: string, options: RunOnceOptions): Promise<ObjectRun> {
    const { ctx } = this;
    const mappingVersion = ctx.mappings.get(connector, object)?.version ?? null;
    const out: ObjectRunSummary = { connector, object, runId: null, status: 'succeeded', created: 0, updated: 0, skipped: 0, failed: 0, deleted: 0, conflicts: 0, apiCalls: 0, pending: 0, durationMs: 0, mappingVersion, error: null };
    const direction = options.direction ?? 'both';
    const run = options.dryRun ? null : await ctx.store.startSyncRun({ connector, object, direction, trigger: options.trigger ?? 'manual', startedAt: isoNow(ctx), counts: {}, mappingVersion });
    out.runId = run?.id ?? null;
    return { out, startedAt: Date.now() };
  }

  private async pullPhase(run: ObjectRun, options: RunOnceOptions): Promise<void> {
    const { out } = run;
    const { connector, object } = out;
    try {
      const pulled = await this.pull(connector, object, {
        ...(options.full ? { full: true } : {}),
        ...(options.dryRun ? { dryRun: true } : {}),
        trigger: `run:${out.runId ?? 'dry'}`,
        ...(options.onPlan ? { onPlan: options.onPlan } : {}),
        onProgress: (done) => options.onProgress?.({ connector, object, phase: 'pull', done, total: null }),
      });
      out.created += pulled.created;
      out.updated += pulled.updated;
      out.skipped += pulled.skipped;
      out.failed += pulled.failed;
      out.deleted += pulled.deleted;
      out.conflicts += pulled.conflicts;
      out.apiCalls += pulled.apiCalls;
    } catch (error) {
      this.failRun(run, error);
    }
  }

  private async pushPhase(run: ObjectRun, options: RunOnceOptions): Promise<void> {
    const { out } = run;
    const { connector, object } = out;
    try {
      const pushed = await this.push(connector, { object });
      out.created += pushed.created;
      out.updated += pushed.updated;
      out.skipped += pushed.skipped;
      out.failed += pushed.deadLettered;
      out.apiCalls += pushed.apiCalls;
      options.onProgress?.({ connector, object, phase: 'push', done: pushed.created + pushed.updated + pushed.skipped, total: pushed.claimed });
    } catch (error) {
      this.failRun(run, error);
    }
  }

  private failRun(run: ObjectRun, error: unknown): void {
    const e = toCrmhubError(error, { connector: run.out.connector, object: run.out.object });
    run.out.status = 'failed';
    run.out.error = run.out.error ? `${run.out.error}; ${e.kind}:${e.code} ${e.message}` : `${e.kind}:${e.code} ${e.message}`;
  }

  private async finishObjectRun(run: ObjectRun): Promise<ObjectRunSummary> {
    const { ctx } = this;
    const { out } = run;
    out.pending = await ctx.store.pendingOutboxCount(out.connector);
    if (out.status !== 'failed' && out.failed > 0) out.status = 'partial';
    out.durationMs = Date.now() - run.startedAt;
    if (out.runId) {
      const { created, updated, skipped, failed, deleted, conflicts, apiCalls, pending, durationMs } = out;
      await ctx.store.finishSyncRun(out.runId, {
        status: out.status,
        counts: { created, updated, skipped, failed, deleted, conflicts, apiCalls, pending, durationMs },
        error: out.error,
        finishedAt: isoNow(ctx),
      });
    }
    return out;
  }

  /** Stops workers, waits for webhook work and in-flight calls, releases limiters. */
  async close(): Promise<void> {
    await this.inbox.stop();
    await this.stopWorkers();
    await this.settled();
    await this.closeThrottles();
  }
}

export { emptyDrainCounts };
