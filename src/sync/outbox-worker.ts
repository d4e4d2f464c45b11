/**
 * The outbox worker (design.md §4 "Outbound", §7). Claims due rows with a lease, groups them per
 * connection and object, coalesces rows of the same record (in order; later fields win), computes
 * the `to_remote` values from the profile as it is now, diffs them against the shadow (only changed
 * fields are sent), writes in the connector's largest batch through the connection's throttle, and
 * handles each record's outcome alone:
 *
 * - success → the shadow takes what was written, the CRM id becomes an identifier, rows complete;
 * - `payload`/`conflict` → that record dead-letters with the reason;
 * - `rate_limited` → re-queued after `retryAfterMs`, the attempt not counted, the throttle paused;
 * - `transient`/`internal` → exponential backoff with jitter, dead letter after `maxAttempts`;
 * - `auth`/`config` → the connection pauses (`needs_reauth` for auth), rows wait, nothing is lost.
 *
 * Delivery is at least once; effects are idempotent because updates go to known remote ids and
 * creates use the mapping's native upsert key (the crmhub id or email), never lookup-then-create.
 */
import type { FieldValues, ProfileId } from '../core/types.ts';
import type { WriteItem, WriteOutcome } from '../connector-kit/connector.ts';
import { CrmhubError, toCrmhubError } from '../connector-kit/errors.ts';
import type { OutboxRow, RemoteRecordRow } from '../store/port.ts';
import { isEmptyValue, profileToRemote, sameValue } from './basic-merge.ts';
import { applyRemoteChanges } from './apply-remote-changes.ts';
import { isoNow, pulledMarker, type EngineContext } from './engine-context.ts';

/** How long a held create waits before it checks again for the object's first pull, ms. */
const HOLD_CREATES_MS = 5_000;
import type { SyncObjectMapping } from './sync-types.ts';

export interface DrainCounts {
  claimed: number;
  created: number;
  updated: number;
  /** Rows completed without a call (nothing differed from the shadow). */
  skipped: number;
  deadLettered: number;
  retried: number;
  rateLimited: number;
  apiCalls: number;
}

export function emptyDrainCounts(): DrainCounts {
  return { claimed: 0, created: 0, updated: 0, skipped: 0, deadLettered: 0, retried: 0, rateLimited: 0, apiCalls: 0 };
}

export interface DrainOptions {
  owner: string;
  connector: string;
  object?: string;
  /** Rows claimed per round. Default: 4 × the largest batch of the connector. */
  limit?: number;
  /**
   * Test hook for crash simulation: called between steps; throwing abandons the claimed leases
   * exactly as a dying process would.
   */
  step?: (name: 'claimed' | 'before-write' | 'after-write' | 'after-shadow') => void;
}

/** A coalesced record: every outbox row of one profile for one connector object, oldest first. */
interface PendingRecord {
  ref: string;
  profileId: ProfileId;
  rows: OutboxRow[];
  op: string;
  fields: FieldValues;
}

interface PreparedItem {
  record: PendingRecord;
  item: WriteItem;
  shadow: RemoteRecordRow | null;
  profileId: ProfileId;
}

function coalesce(rows: OutboxRow[]): PendingRecord[] {
  const byProfile = new Map<string, PendingRecord>();
  const sorted = [...rows].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
  for (const row of sorted) {
    const key = `${row.profileId}`;
    const existing = byProfile.get(key);
    if (existing) {
      existing.rows.push(row);
      existing.fields = { ...existing.fields, ...row.fields };
      existing.op = row.op;
    } else byProfile.set(key, { ref: row.id, profileId: row.profileId, rows: [row], op: row.op, fields: { ...row.fields } });
  }
  return [...byProfile.values()];
}

/** Exponential backoff with full jitter in [½, 1] of the step, honouring the CRM's retry-after. */
export function backoffMs(ctx: Pick<EngineContext, 'retry' | 'random'>, attempts: number, retryAfterMs?: number): number {
  const step = Math.min(ctx.retry.maxMs, ctx.retry.baseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = step * (0.5 + ctx.random() * 0.5);
  return Math.max(jittered, retryAfterMs ?? 0);
}

export class OutboxWorker {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * Runs claim rounds for one connector until nothing is due (or the connection pauses). Rounds run
   * `maxConcurrent` at a time so the next claim overlaps the current writes and the throttle never
   * idles between rounds (each round leases its own rows).
   */
  async drain(options: DrainOptions): Promise<DrainCounts> {
    const total = emptyDrainCounts();
    const lanes = Math.max(1, this.ctx.connector(options.connector).declaration.limits.maxConcurrent);
    const lane = async (): Promise<void> => {
      for (let round = 0; round < 100_000; round++) {
        const counts = await this.drainOnce(options);
        for (const k of Object.keys(total) as (keyof DrainCounts)[]) total[k] += counts[k];
        if (counts.claimed === 0 || this.isPaused(options.connector)) return;
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    return total;
  }

  /** One claim round: claims, coalesces, writes, settles. */
  async drainOnce(options: DrainOptions): Promise<DrainCounts> {
    const { ctx } = this;
    const counts = emptyDrainCounts();
    if (this.isPaused(options.connector)) return counts;
    const connector = ctx.connector(options.connector);
    const maxBatch = Math.max(...connector.declaration.objects.map((o) => o.maxBatchSize));
    // A bulk path pays off only if it gets large batches: claim enough rows to fill one.
    const maxBulk = Math.max(0, ...connector.declaration.objects.map((o) => o.bulkBatchSize ?? 0));
    const rows = await ctx.store.claimOutbox({
      owner: options.owner,
      limit: options.limit ?? Math.max(maxBatch * 4, maxBulk),
      leaseMs: ctx.leaseMs,
      now: isoNow(ctx),
      connector: options.connector,
      ...(options.object ? { object: options.object } : {}),
    });
    counts.claimed = rows.length;
    if (rows.length === 0) return counts;
    options.step?.('claimed');
    const byObject = new Map<string, OutboxRow[]>();
    for (const row of rows) byObject.set(row.object, [...(byObject.get(row.object) ?? []), row]);
    for (const [object, objectRows] of byObject) {
      await this.sendObject(options, object, objectRows, counts);
    }
    return counts;
  }

  isPaused(slug: string): boolean {
    const s = this.ctx.states.get(slug);
    return !!s && s.status !== 'ok' && s.until > this.ctx.now();
  }

  private async sendObject(options: DrainOptions, object: string, rows: OutboxRow[], counts: DrainCounts): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    const mapping = ctx.mappings.get(slug, object);
    const declaration = ctx.connector(slug).declaration.objects.find((o) => o.name === object);
    if (!mapping || !declaration) {
      for (const row of rows) {
        await ctx.store.deadLetterOutbox(row.id, options.owner, 'config:NO_MAPPING', `No mapping or object ${slug}.${object}`, isoNow(ctx));
        counts.deadLettered++;
      }
      return;
    }
    // Diff first: records whose profile values already match the shadow cost no API call at all.
    let prepared: PreparedItem[] = [];
    for (const record of coalesce(rows)) {
      const item = await this.prepare(mapping, record);
      if (item === null) {
        await this.completeRows(options.owner, record.rows);
        counts.skipped += record.rows.length;
      } else prepared.push(item);
    }
    const linked = prepared.filter((p) => p.item.remoteId !== undefined);
    if (ctx.readBeforeWrite && linked.length > 0) {
      // Lost-update guard: read the linked records, apply what a rep changed, then diff again.
      if (!(await this.refreshLinked(options, mapping, linked, counts))) {
        prepared = prepared.filter((p) => p.item.remoteId === undefined);
      } else {
        const again: PreparedItem[] = prepared.filter((p) => p.item.remoteId === undefined);
        for (const p of linked) {
          const item = await this.prepare(mapping, p.record);
          if (item === null) {
            await this.completeRows(options.owner, p.record.rows);
            counts.skipped += p.record.rows.length;
          } else again.push(item);
        }
        prepared = again;
      }
    }
    if (ctx.holdCreatesUntilPulled && prepared.some((p) => p.item.remoteId === undefined)) {
      const pulled = await ctx.store.read().getCursor(slug, pulledMarker(object));
      if (!pulled) {
        // The CRM may already hold these people: creating them before the first pull links the
        // existing records would duplicate them (design.md §8.1). Not counted as an attempt.
        const held = prepared.filter((p) => p.item.remoteId === undefined);
        prepared = prepared.filter((p) => p.item.remoteId !== undefined);
        for (const p of held) {
          await this.retryRows(options.owner, p.record.rows, ctx.now() + HOLD_CREATES_MS, `held: waiting for the first pull of ${slug}.${object}`, false, counts);
        }
      }
    }
    const size = declaration.bulkBatchSize !== undefined && prepared.length > declaration.maxBatchSize ? declaration.bulkBatchSize : declaration.maxBatchSize;
    const chunks: PreparedItem[][] = [];
    for (let i = 0; i < prepared.length; i += size) chunks.push(prepared.slice(i, i + size));
    const queue = ctx.workQueue(slug);
    await Promise.all(chunks.map((chunk) => queue.add(() => this.sendChunk(options, object, chunk, counts))));
  }

  /**
   * Reads the linked records' current state (one `readByIds` per batch) and applies it first, so a
   * rep's edit not yet delivered by webhook or pull meets the conflict rules instead of being
   * overwritten (a lost update). False when the read failed; the rows were settled then.
   */
  private async refreshLinked(options: DrainOptions, mapping: SyncObjectMapping, linked: PreparedItem[], counts: DrainCounts): Promise<boolean> {
    const { ctx } = this;
    const slug = options.connector;
    const records = linked.map((p) => p.record);
    const ids = linked.map((p) => p.item.remoteId).filter((id): id is string => id !== undefined);
    if (ids.length === 0) return true;
    const connector = ctx.connector(slug);
    const max = ctx.declaration(slug, mapping.object).maxBatchSize;
    try {
      for (let i = 0; i < ids.length; i += max) {
        const chunk = ids.slice(i, i + max);
        counts.apiCalls++;
        const current = await ctx.throttle(slug).schedule(() => connector.readByIds(mapping.object, chunk));
        const found = new Set(current.map((r) => r.id));
        await applyRemoteChanges(ctx, slug, mapping.object, current, { trigger: `outbox:${options.owner}` });
        // Linked records the CRM no longer has were deleted there: unlink so the next write recreates.
        const gone = chunk.filter((id) => !found.has(id));
        if (gone.length > 0) {
          await applyRemoteChanges(ctx, slug, mapping.object, gone.map((id) => ({ object: mapping.object, id, fields: {}, modifiedAt: isoNow(ctx), deleted: true })), { trigger: `outbox:${options.owner}` });
        }
      }
    } catch (error) {
      const e = toCrmhubError(error, { connector: slug, object: mapping.object });
      for (const record of records) await this.settleFailure(options.owner, slug, record.rows, e, counts);
      return false;
    }
    return true;
  }

  /** The write for one coalesced record, or null when nothing differs from the shadow. */
  private async prepare(mapping: SyncObjectMapping, record: PendingRecord): Promise<PreparedItem | null> {
    const { ctx } = this;
    const read = ctx.store.read();
    const live = await read.resolveProfile(record.profileId);
    if (!live) return null;
    const profileId = live.id;
    const linked = (await read.findRemoteRecordsByProfile(mapping.connector, mapping.object, profileId)).filter((r) => !r.deleted);
    const shadow = linked[0] ?? null;
    if (record.op === 'delete') {
      if (!shadow) return null;
      return { record, shadow, profileId, item: { ref: record.ref, remoteId: shadow.remoteId, fields: {}, delete: true } };
    }
    const traits = new Map((await read.getTraits(profileId)).map((t) => [t.key, t.value]));
    const fields: FieldValues = {};
    for (const f of mapping.fields) {
      // A new record gets every mapped value; an existing one only what the rows name.
      if (!f.toRemote || (shadow && !(f.remoteField in record.fields))) continue;
      // The profile as it is now: an old row re-delivered after a crash can never write a stale value.
      const value = traits.has(f.profileKey) ? profileToRemote(f, traits.get(f.profileKey)) : record.fields[f.remoteField];
      if (value === undefined) continue;
      if (isEmptyValue(value) && f.onEmpty === 'ignore') continue;
      if (shadow && sameValue(value, shadow.shadow[f.remoteField])) continue;
      fields[f.remoteField] = value;
    }
    if (Object.keys(fields).length === 0) return null;
    if (shadow) return { record, shadow, profileId, item: { ref: record.ref, remoteId: shadow.remoteId, fields } };
    if (mapping.onNoMatch === 'skip') return null;
    // The CRM needs these to create a record: without them no record is created (design.md §4).
    if (mapping.fields.some((f) => f.required && f.toRemote && isEmptyValue(fields[f.remoteField]))) return null;
    const upsertKey = await this.upsertKeyFor(mapping, profileId, traits);
    return { record, shadow: null, profileId, item: { ref: record.ref, fields, ...(upsertKey ? { upsertKey } : {}) } };
  }

  private async upsertKeyFor(mapping: SyncObjectMapping, profileId: ProfileId, traits: Map<string, unknown>): Promise<{ field: string; value: string } | null> {
    const identifiers = await this.ctx.store.read().listIdentifiers(profileId);
    for (const key of mapping.match) {
      if (key.identifier === 'profile_id') return { field: key.remote, value: profileId };
      const id = identifiers.find((i) => i.type === key.identifier);
      if (id) return { field: key.remote, value: id.value };
      const trait = traits.get(key.identifier);
      if (typeof trait === 'string' && trait !== '') return { field: key.remote, value: trait };
    }
    return null;
  }

  private async sendChunk(options: DrainOptions, object: string, chunk: PreparedItem[], counts: DrainCounts): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    if (this.isPaused(slug)) {
      for (const p of chunk) await this.retryRows(options.owner, p.record.rows, this.ctx.states.get(slug)?.until ?? ctx.now(), 'connection paused', false, counts);
      return;
    }
    const connector = ctx.connector(slug);
    const throttle = ctx.throttle(slug);
    options.step?.('before-write');
    let outcomes: WriteOutcome[];
    try {
      counts.apiCalls++;
      outcomes = await throttle.schedule(() => connector.write(object, chunk.map((p) => p.item)));
      throttle.observeQuota(connector.quota?.());
    } catch (error) {
      const e = toCrmhubError(error, { connector: slug, object });
      for (const p of chunk) await this.settleFailure(options.owner, slug, p.record.rows, e, counts);
      return;
    }
    options.step?.('after-write');
    const byRef = new Map(outcomes.map((o) => [o.ref, o]));
    const succeeded: { p: PreparedItem; outcome: Extract<WriteOutcome, { ok: true }> }[] = [];
    for (const p of chunk) {
      const outcome = byRef.get(p.item.ref);
      if (!outcome) {
        await this.settleFailure(options.owner, slug, p.record.rows, new CrmhubError('transient', 'The connector returned no outcome for this record', { code: 'MISSING_OUTCOME', context: { connector: slug, object, record: p.item.ref } }), counts);
      } else if (outcome.ok) {
        succeeded.push({ p, outcome });
      } else {
        await this.settleFailure(options.owner, slug, p.record.rows, outcome.error, counts);
      }
    }
    if (succeeded.length > 0) await this.settleSuccesses(options, object, succeeded, counts);
  }

  /** Shadows and CRM-id identifiers of a whole batch in one transaction, then the rows complete. */
  private async settleSuccesses(options: DrainOptions, object: string, succeeded: { p: PreparedItem; outcome: Extract<WriteOutcome, { ok: true }> }[], counts: DrainCounts): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    const identifierType = ctx.declaration(slug, object).identifierType;
    const now = isoNow(ctx);
    await ctx.store.transaction(async (tx) => {
      for (const { p, outcome } of succeeded) {
        if (outcome.movedFrom && p.shadow && outcome.movedFrom !== outcome.remoteId) await tx.moveRemoteRecord(slug, object, outcome.movedFrom, outcome.remoteId);
        if (p.item.delete) {
          if (p.shadow) await tx.upsertRemoteRecord({ ...p.shadow, deleted: true, syncedAt: now });
          continue;
        }
        const current = (await tx.getRemoteRecord(slug, object, outcome.remoteId)) ?? p.shadow;
        const written: FieldValues = { ...p.item.fields };
        if (p.item.upsertKey) written[p.item.upsertKey.field] = p.item.upsertKey.value;
        const fieldChangedAt = { ...(current?.fieldChangedAt ?? {}) };
        if (outcome.modifiedAt) for (const k of Object.keys(written)) fieldChangedAt[k] = outcome.modifiedAt;
        await tx.upsertRemoteRecord({
          connector: slug,
          object,
          remoteId: outcome.remoteId,
          profileId: p.profileId,
          shadow: { ...(current && !current.deleted ? current.shadow : {}), ...written },
          remoteChangedAt: outcome.modifiedAt ?? current?.remoteChangedAt ?? null,
          fieldChangedAt,
          syncedAt: now,
          deleted: false,
        });
        await tx.addIdentifier({ type: identifierType, value: outcome.remoteId, profileId: p.profileId, source: slug, at: now });
      }
    });
    options.step?.('after-shadow');
    for (const { p, outcome } of succeeded) {
      await this.completeRows(options.owner, p.record.rows);
      if (outcome.created) counts.created++;
      else counts.updated++;
    }
  }

  private async settleFailure(owner: string, slug: string, rows: OutboxRow[], error: CrmhubError, counts: DrainCounts): Promise<void> {
    const { ctx } = this;
    const message = JSON.stringify(error.toJSON());
    const reason = `${error.kind}:${error.code}`;
    switch (error.kind) {
      case 'rate_limited': {
        counts.rateLimited++;
        ctx.throttle(slug).onRateLimited(error.retryAfterMs);
        await this.retryRows(owner, rows, ctx.now() + (error.retryAfterMs ?? ctx.connector(slug).declaration.limits.windowMs), message, false, counts);
        return;
      }
      case 'auth':
      case 'config': {
        ctx.states.set(slug, { status: error.kind === 'auth' ? 'needs_reauth' : 'paused', until: ctx.now() + ctx.pauseMs, reason });
        ctx.logger?.error({ err: error.toJSON() }, `connection ${slug} paused`);
        await this.retryRows(owner, rows, ctx.now() + ctx.pauseMs, message, false, counts);
        return;
      }
      case 'payload':
      case 'conflict': {
        for (const row of rows) {
          await ctx.store.deadLetterOutbox(row.id, owner, reason, message, isoNow(ctx));
          counts.deadLettered++;
        }
        return;
      }
      case 'transient':
      case 'internal': {
        const attempts = Math.max(...rows.map((r) => r.attempts)) + 1;
        if (attempts >= ctx.retry.maxAttempts) {
          for (const row of rows) {
            await ctx.store.deadLetterOutbox(row.id, owner, reason, message, isoNow(ctx));
            counts.deadLettered++;
          }
          return;
        }
        await this.retryRows(owner, rows, ctx.now() + backoffMs(ctx, attempts, error.retryAfterMs), message, true, counts);
        return;
      }
    }
  }

  private async retryRows(owner: string, rows: OutboxRow[], atMs: number, error: string, countAttempt: boolean, counts: DrainCounts): Promise<void> {
    const nextAt = new Date(atMs).toISOString();
    for (const row of rows) {
      await this.ctx.store.retryOutbox(row.id, owner, nextAt, error, countAttempt);
      counts.retried++;
    }
  }

  private async completeRows(owner: string, rows: OutboxRow[]): Promise<void> {
    for (const row of rows) await this.ctx.store.completeOutbox(row.id, owner);
  }
}
