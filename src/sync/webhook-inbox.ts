/**
 * The durable webhook inbox (design.md §4 "Inbound", issue 5): verify → store each change with its
 * delivery receipt in ONE transaction (the receipt dedupes; the stored change survives a crash) →
 * answer the CRM → apply → mark the receipt processed. Receipts left unprocessed — the process died
 * after answering, or applying failed — are claimed again under a lease and applied oldest change
 * first; processed receipts are pruned after a retention period.
 *
 * Why store the change and not only the delivery id: the CRM will not resend a delivery we
 * acknowledged (and a resend would be deduped), so a change held only in memory is lost with the
 * process.
 */
import { z } from 'zod';
import type { JsonObject } from '../core/types.ts';
import type { RemoteRecord, WebhookChange, WebhookRequest } from '../connector-kit/connector.ts';
import { CrmhubError, toCrmhubError } from '../connector-kit/errors.ts';
import type { WebhookReceiptRow } from '../store/port.ts';
import { applyRemoteChanges } from './apply-remote-changes.ts';
import { isoNow, type EngineContext } from './engine-context.ts';

/** How long processed receipts are kept for dedupe before pruning: 7 days (CRMs retry for ≤ 24 h). */
export const DEFAULT_WEBHOOK_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** How often the sweep looks for receipts left unprocessed: 30 s. */
export const DEFAULT_WEBHOOK_SWEEP_MS = 30_000;
/** Receipts claimed per sweep round. */
const CLAIM_BATCH = 200;
/** Pruning runs at most this often (ms): the delete is cheap, but not worth every sweep tick. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/** Where a test may stop the intake (`receiveWebhook(…, { step })`) to simulate a crash. */
export type WebhookStep = 'stored';

export interface ReceiveOptions {
  /**
   * Called after the receipts are committed and before the changes are applied. A throw (or
   * rejection) here stops processing without touching the receipts — what a process dying right
   * after its 2xx leaves behind. For tests.
   */
  step?: (step: WebhookStep) => void | Promise<void>;
}

export interface ReceiveResult {
  status: number;
  contentType: string;
  body: string;
  /** Changes stored and being applied. */
  accepted: number;
  /** Changes whose delivery id was seen before (nothing stored). */
  duplicates: number;
}

export interface InboxOptions {
  /** Lease owner id of this engine. */
  owner: string;
  /** How long processed receipts are kept for dedupe, ms. Default 7 days. */
  retentionMs?: number;
}

/** A stored change as the engine reads it back (zod: the column outlives the code that wrote it). */
const storedChangeSchema = z.object({
  object: z.string(),
  id: z.string(),
  deliveryId: z.string(),
  changedAt: z.string(),
  kind: z.enum(['upsert', 'delete', 'merge', 'association']),
  fields: z.record(z.string(), z.json()).optional(),
  changedFields: z.array(z.string()).optional(),
  mergedIntoId: z.string().optional(),
  origin: z.enum(['self', 'other', 'unknown']).optional(),
});

/** The change as stored JSON (undefined members left out). */
function toPayload(change: WebhookChange): JsonObject {
  const out: JsonObject = {
    object: change.object,
    id: change.id,
    deliveryId: change.deliveryId,
    changedAt: change.changedAt,
    kind: change.kind,
  };
  if (change.fields !== undefined) out['fields'] = change.fields;
  if (change.changedFields !== undefined) out['changedFields'] = change.changedFields;
  if (change.mergedIntoId !== undefined) out['mergedIntoId'] = change.mergedIntoId;
  if (change.origin !== undefined) out['origin'] = change.origin;
  return out;
}

function fromPayload(payload: JsonObject | null): WebhookChange | null {
  const parsed = storedChangeSchema.safeParse(payload);
  if (!parsed.success) return null;
  const { fields, changedFields, mergedIntoId, origin, ...rest } = parsed.data;
  return {
    ...rest,
    ...(fields !== undefined ? { fields } : {}),
    ...(changedFields !== undefined ? { changedFields } : {}),
    ...(mergedIntoId !== undefined ? { mergedIntoId } : {}),
    ...(origin !== undefined ? { origin } : {}),
  };
}

/** `changedAt` in canonical ISO form; an unreadable one counts as "now" (it only orders the inbox). */
function changeTime(change: WebhookChange, fallback: string): string {
  const ms = Date.parse(change.changedAt);
  return Number.isNaN(ms) ? fallback : new Date(ms).toISOString();
}

export class WebhookInbox {
  private readonly owner: string;
  private readonly retentionMs: number;
  private readonly work = new Set<Promise<void>>();
  private sweeper: { stop: () => void; done: Promise<void> } | null = null;
  private lastPruneAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ctx: EngineContext,
    options: InboxOptions,
  ) {
    this.owner = options.owner;
    this.retentionMs = options.retentionMs ?? DEFAULT_WEBHOOK_RETENTION_MS;
  }

  /**
   * Verifies (the connector rejects with `auth`), stores each new change with its receipt in one
   * transaction, and returns the reply at once; the changes are applied after (`settled()` waits).
   */
  async receive(slug: string, request: WebhookRequest, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    const { ctx } = this;
    const result = await ctx.connector(slug).handleWebhook(request);
    const at = isoNow(ctx);
    const leaseUntil = isoNow(ctx, ctx.leaseMs);
    const stored =
      result.changes.length === 0
        ? []
        : await ctx.store.transaction((tx) =>
            tx.insertWebhookReceipts(
              result.changes.map((c) => ({
                source: slug,
                deliveryId: c.deliveryId,
                receivedAt: at,
                changedAt: changeTime(c, at),
                payload: toPayload(c),
                leaseOwner: this.owner,
                leaseUntil,
              })),
            ),
          );
    const fresh = result.changes.filter((_, i) => stored[i] === true);
    if (fresh.length > 0) {
      this.track(
        (async () => {
          await options.step?.('stored');
          await this.processBatch(
            slug,
            fresh.map((change) => ({ change, attempts: 0 })),
          );
        })(),
        slug,
      );
    }
    const reply = result.reply ?? { status: 200, contentType: 'application/json', body: '{}' };
    return { ...reply, accepted: fresh.length, duplicates: result.changes.length - fresh.length };
  }

  /** Waits for webhook processing started so far (intake and sweeps). */
  async settled(): Promise<void> {
    while (this.work.size > 0) await Promise.all([...this.work]);
  }

  /**
   * Applies receipts left unprocessed (a crash after the reply, a failed attempt whose retry time
   * has come), oldest change first, for the given connectors (default: every configured one).
   * Receipts leased by another engine are left to it until its lease runs out.
   * @returns receipts claimed.
   */
  async processPending(options: { connectors?: readonly string[] } = {}): Promise<number> {
    const { ctx } = this;
    const sources = (options.connectors ?? [...ctx.connectors.keys()]).filter((s) => ctx.connectors.has(s));
    if (sources.length === 0) return 0;
    let claimed = 0;
    for (;;) {
      const rows = await ctx.store.claimWebhookReceipts({
        owner: this.owner,
        limit: CLAIM_BATCH,
        leaseMs: ctx.leaseMs,
        now: isoNow(ctx),
        sources,
      });
      if (rows.length === 0) break;
      claimed += rows.length;
      // Failed receipts get a later retry time, so the next claim does not return them again.
      const bySource = new Map<string, WebhookReceiptRow[]>();
      for (const r of rows) bySource.set(r.source, [...(bySource.get(r.source) ?? []), r]);
      for (const [slug, list] of bySource) {
        const unreadable = list.filter((r) => fromPayload(r.payload) === null);
        if (unreadable.length > 0) {
          ctx.logger?.error(
            { connector: slug, deliveryIds: unreadable.map((r) => r.deliveryId) },
            'stored webhook change unreadable; dropped',
          );
          await ctx.store.finishWebhookReceipts(
            slug,
            unreadable.map((r) => r.deliveryId),
            isoNow(ctx),
            'internal:UNREADABLE_PAYLOAD',
          );
        }
        const batch = list.flatMap((r) => {
          const change = fromPayload(r.payload);
          return change ? [{ change, attempts: r.attempts }] : [];
        });
        if (batch.length > 0) await this.processBatch(slug, batch);
      }
      if (rows.length < CLAIM_BATCH) break;
    }
    return claimed;
  }

  /** Deletes receipts processed longer than the retention ago; returns how many. */
  prune(): Promise<number> {
    this.lastPruneAt = this.ctx.now();
    return this.ctx.store.pruneWebhookReceipts(isoNow(this.ctx, -this.retentionMs));
  }

  /**
   * Sweeps now and then every `pollMs` (default 30 s): applies receipts left unprocessed and prunes
   * old processed ones (at most hourly). `crmhub serve` runs it; `stop()` (or the engine's `close()`)
   * ends it.
   */
  start(options: { pollMs?: number } = {}): void {
    if (this.sweeper) return;
    const pollMs = options.pollMs ?? DEFAULT_WEBHOOK_SWEEP_MS;
    let stopped = false;
    let wake: (() => void) | null = null;
    const done = (async () => {
      while (!stopped) {
        try {
          await this.processPending();
          if (this.ctx.now() - this.lastPruneAt >= PRUNE_EVERY_MS) await this.prune();
        } catch (error) {
          this.ctx.logger?.error({ err: toCrmhubError(error).toJSON() }, 'webhook inbox sweep failed');
        }
        if (stopped) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, pollMs).unref();
        });
      }
    })();
    this.sweeper = { stop: () => ((stopped = true), wake?.()), done };
  }

  async stop(): Promise<void> {
    const s = this.sweeper;
    if (!s) return;
    this.sweeper = null;
    s.stop();
    await s.done;
  }

  private track(work: Promise<void>, slug: string): void {
    const p = work.catch((error: unknown) => {
      this.ctx.logger?.error(
        { err: toCrmhubError(error, { connector: slug }).toJSON() },
        'webhook processing failed',
      );
    });
    this.work.add(p);
    void p.finally(() => this.work.delete(p));
  }

  /**
   * Applies one connector's changes and marks their receipts processed; on failure, schedules a
   * retry (or gives up once the retry budget is spent — the next pull still finds the change).
   */
  private async processBatch(
    slug: string,
    batch: { change: WebhookChange; attempts: number }[],
  ): Promise<void> {
    const { ctx } = this;
    const ids = batch.map((b) => b.change.deliveryId);
    try {
      await this.apply(
        slug,
        batch.map((b) => b.change),
      );
    } catch (error) {
      await this.failed(slug, batch, toCrmhubError(error, { connector: slug }));
      return;
    }
    await ctx.store.finishWebhookReceipts(slug, ids, isoNow(ctx));
  }

  private async failed(
    slug: string,
    batch: { change: WebhookChange; attempts: number }[],
    e: CrmhubError,
  ): Promise<void> {
    const { ctx } = this;
    const reason = `${e.kind}:${e.code} ${e.message}`.slice(0, 1_000);
    // A paused connection (auth, config) waits for the fix without using up the budget; so does a
    // rate limit (design.md §7). A transient failure backs off and counts.
    const counted = e.kind === 'transient' || e.kind === 'internal' || e.kind === 'payload';
    const waitMs =
      e.kind === 'auth' || e.kind === 'config'
        ? ctx.pauseMs
        : Math.max(e.retryAfterMs ?? 0, retryDelayMs(ctx, Math.max(...batch.map((b) => b.attempts)) + 1));
    const giveUp = counted
      ? batch.filter((b) => b.attempts + 1 >= ctx.retry.maxAttempts).map((b) => b.change.deliveryId)
      : [];
    const retry = batch.map((b) => b.change.deliveryId).filter((id) => !giveUp.includes(id));
    ctx.logger?.warn(
      { connector: slug, kind: e.kind, code: e.code, retrying: retry.length, givenUp: giveUp.length, waitMs },
      'webhook changes not applied',
    );
    if (giveUp.length > 0) {
      ctx.logger?.error(
        { connector: slug, deliveryIds: giveUp, error: reason },
        'webhook changes given up after the retry budget; the next pull picks them up',
      );
      await ctx.store.finishWebhookReceipts(slug, giveUp, isoNow(ctx), reason);
    }
    await ctx.store.retryWebhookReceipts(slug, retry, isoNow(ctx, waitMs), reason, counted);
  }

  /** Turns changes into remote records (thin payloads: read once per id) and applies them. */
  private async apply(slug: string, changes: WebhookChange[]): Promise<void> {
    const { ctx } = this;
    const connector = ctx.connector(slug);
    const throttle = ctx.throttle(slug);
    let failed = 0;
    const byObject = new Map<string, WebhookChange[]>();
    for (const c of changes) byObject.set(c.object, [...(byObject.get(c.object) ?? []), c]);
    for (const [object, list] of byObject) {
      if (!ctx.mappings.get(slug, object)) continue;
      const records: RemoteRecord[] = [];
      for (const d of list.filter((c) => c.kind === 'delete')) {
        records.push({
          object,
          id: d.id,
          fields: {},
          modifiedAt: d.changedAt,
          deleted: true,
          ...(d.origin ? { origin: d.origin } : {}),
        });
      }
      // Thin payloads: read the current state once per id (the newest state wins anyway).
      const ids = [...new Set(list.filter((c) => c.kind !== 'delete').map((c) => c.id))];
      const maxBatch = Math.max(1, ctx.declaration(slug, object).maxBatchSize);
      for (let i = 0; i < ids.length; i += maxBatch) {
        const chunk = ids.slice(i, i + maxBatch);
        records.push(
          ...(await throttle.schedule(() => connector.readByIds(object, chunk), {
            search: throttle.usesSearch('readByIds'),
          })),
        );
      }
      // Oldest change first; applyRemoteChanges orders by modified time and skips stale states.
      const counts = await applyRemoteChanges(ctx, slug, object, records, {
        trigger: `webhook:${list[0]?.deliveryId ?? ''}`,
      });
      failed += counts.failed;
    }
    // A record that failed to apply (logged by applyRemoteChanges) keeps its receipts open for a
    // retry: applying again is idempotent for the records that did go through.
    if (failed > 0)
      throw new CrmhubError('transient', `${failed} webhook record(s) failed to apply`, {
        code: 'WEBHOOK_APPLY_FAILED',
        context: { connector: slug },
      });
  }
}

/** Exponential backoff with jitter from the engine's retry policy, ms. */
function retryDelayMs(ctx: Pick<EngineContext, 'retry' | 'random'>, attempts: number): number {
  const step = Math.min(ctx.retry.maxMs, ctx.retry.baseMs * 2 ** Math.max(0, attempts - 1));
  return step * (0.5 + ctx.random() * 0.5);
}
