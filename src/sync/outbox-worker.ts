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
 * Before updates are sent, the lost-update guard (`readBeforeWrite`, see engine-context.ts) applies
 * what a rep changed in the CRM and crmhub has not seen yet: one incremental pull per freshness
 * window (`pull`), or one `readByIds` per batch (`ids`).
 *
 * Store work is per batch, not per record: the reads behind the diff are a handful of bulk
 * statements per claim round, shadows of a batch are one transaction, and its outcomes are settled
 * in one transaction each for completions, retries and dead letters. With better-sqlite3 the store
 * runs on the event loop, and per-record statements and commits left the throttle idle.
 *
 * Delivery is at least once; effects are idempotent because updates go to known remote ids and
 * creates use the mapping's native upsert key (the crmhub id or email), never lookup-then-create.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FieldValues, JsonValue, ProfileId } from '../core/types.ts';
import type { WriteItem, WriteOutcome } from '../connector-kit/connector.ts';
import { CrmhubError, toCrmhubError } from '../connector-kit/errors.ts';
import type {
  IdentifierRow,
  OutboxDeadLetter,
  OutboxRetry,
  OutboxRow,
  ProfileRow,
  RemoteRecordRow,
  StoreTx,
} from '../store/port.ts';
import { isEmptyValue, profileToRemote, sameValue } from './basic-merge.ts';
import { applyRemoteChanges, type ApplyCounts } from './apply-remote-changes.ts';
import { isoNow, pulledMarker, type EngineContext } from './engine-context.ts';
import type { SyncObjectMapping } from './sync-types.ts';

/** How long a held create waits before it checks again for the object's first pull, ms. */
const HOLD_CREATES_MS = 5_000;

export interface DrainCounts {
  claimed: number;
  created: number;
  updated: number;
  /** Rows completed without a call (nothing differed from the shadow). */
  skipped: number;
  deadLettered: number;
  retried: number;
  /** Calls the CRM (or the daily quota) refused with a rate limit. */
  rateLimited: number;
  /** Calls made: writes, and the lost-update guard's reads (`readByIds` batches or pull pages). */
  apiCalls: number;
}

export function emptyDrainCounts(): DrainCounts {
  return {
    claimed: 0,
    created: 0,
    updated: 0,
    skipped: 0,
    deadLettered: 0,
    retried: 0,
    rateLimited: 0,
    apiCalls: 0,
  };
}

export interface DrainOptions {
  owner: string;
  connector: string;
  object?: string;
  /** Rows claimed per round. Default: 2 × the largest batch of the connector (its bulk batch where it has one). */
  limit?: number;
  /** `drain` only: checked before each round; true ends the drain once the rounds in flight are done. */
  stop?: () => boolean;
  /**
   * Test hook for crash simulation: called between steps; throwing abandons the claimed leases
   * exactly as a dying process would.
   */
  step?: (name: 'claimed' | 'before-write' | 'after-write' | 'after-shadow') => void;
}

/** What the worker needs from the engine beyond the context. */
export interface OutboxWorkerHooks {
  /**
   * The engine's incremental pull of one object (from the saved cursor, page by page, through the
   * conflict rules; `SyncEngine.pull`). The `pull` lost-update guard runs it; without it the guard
   * falls back to `ids`.
   */
  pull?: (connector: string, object: string) => Promise<ApplyCounts & { apiCalls: number }>;
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

type Succeeded = { p: PreparedItem; outcome: Extract<WriteOutcome, { ok: true }> };

/** Outcomes gathered while a batch is handled, written in one transaction per kind. */
interface Settlement {
  done: string[];
  retries: OutboxRetry[];
  dead: OutboxDeadLetter[];
}

function emptySettlement(): Settlement {
  return { done: [], retries: [], dead: [] };
}

/** What became of one batch's write call. */
type ChunkCall =
  { kind: 'paused' } | { kind: 'done'; outcomes: WriteOutcome[] } | { kind: 'failed'; error: CrmhubError };

type GuardPullResult = { ok: true; changed: boolean } | { ok: false; error: CrmhubError };

/** The rows of the profiles behind one object's records, read in bulk. */
interface Snapshot {
  /** Record profile id → the live profile (merges followed); null when unknown. */
  live: Map<string, ProfileRow | null>;
  /** Live profile id → its first non-deleted shadow for this object. */
  shadows: Map<string, RemoteRecordRow>;
  traits: Map<string, Map<string, JsonValue>>;
  identifiers: Map<string, IdentifierRow[]>;
}

function coalesce(rows: OutboxRow[]): PendingRecord[] {
  const byProfile = new Map<string, PendingRecord>();
  const sorted = [...rows].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1,
  );
  for (const row of sorted) {
    const key = `${row.profileId}`;
    const existing = byProfile.get(key);
    if (existing) {
      existing.rows.push(row);
      existing.fields = { ...existing.fields, ...row.fields };
      existing.op = row.op;
    } else
      byProfile.set(key, {
        ref: row.id,
        profileId: row.profileId,
        rows: [row],
        op: row.op,
        fields: { ...row.fields },
      });
  }
  return [...byProfile.values()];
}

/** Exponential backoff with full jitter in [½, 1] of the step, honouring the CRM's retry-after. */
export function backoffMs(
  ctx: Pick<EngineContext, 'retry' | 'random'>,
  attempts: number,
  retryAfterMs?: number,
): number {
  const step = Math.min(ctx.retry.maxMs, ctx.retry.baseMs * 2 ** Math.max(0, attempts - 1));
  const jittered = step * (0.5 + ctx.random() * 0.5);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Live profiles of these ids: one bulk read, and the merge chain followed only where there is one. */
async function resolveLive(
  read: StoreTx,
  ids: readonly ProfileId[],
): Promise<Map<string, ProfileRow | null>> {
  const unique = [...new Set(ids)];
  const out = new Map<string, ProfileRow | null>();
  const rows = read.getProfiles ? await read.getProfiles(unique) : null;
  const byId = new Map((rows ?? []).map((r) => [r.id as string, r]));
  for (const id of unique) {
    const row = byId.get(id);
    if (rows !== null && row === undefined) out.set(id, null);
    else if (row !== undefined && row.mergedInto === null) out.set(id, row);
    else out.set(id, await read.resolveProfile(id));
  }
  return out;
}

async function traitsOf(
  read: StoreTx,
  ids: readonly ProfileId[],
): Promise<Map<string, Map<string, JsonValue>>> {
  const out = new Map<string, Map<string, JsonValue>>(ids.map((id) => [id, new Map()]));
  if (ids.length === 0) return out;
  const rows = read.getTraitsOfProfiles
    ? await read.getTraitsOfProfiles(ids)
    : (await Promise.all(ids.map((id) => read.getTraits(id)))).flat();
  for (const t of rows) out.get(t.profileId)?.set(t.key, t.value);
  return out;
}

async function identifiersOf(
  read: StoreTx,
  ids: readonly ProfileId[],
): Promise<Map<string, IdentifierRow[]>> {
  const out = new Map<string, IdentifierRow[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const rows = read.listIdentifiersOfProfiles
    ? await read.listIdentifiersOfProfiles(ids)
    : (await Promise.all(ids.map((id) => read.listIdentifiers(id)))).flat();
  for (const i of rows) out.get(i.profileId)?.push(i);
  return out;
}

export class OutboxWorker {
  /** Guard pulls in flight, per `connector\0object`: concurrent rounds share one. */
  private readonly guardPulls = new Map<string, Promise<GuardPullResult>>();
  /**
   * Writes in flight, per `connector\0object\0profile`: a round that claims another row of such a
   * record waits for that write and diffs against the shadow it leaves. Two writes of one record
   * in flight at once could land out of order, and the second would resend what the first sent.
   */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly hooks: OutboxWorkerHooks = {},
  ) {}

  /**
   * Runs claim rounds for one connector until nothing is due (or the connection pauses). Rounds run
   * side by side — `maxConcurrent` of them, at least two — so the next round's claim and diff are
   * done while the current round's calls are in flight, and the throttle never idles between
   * rounds (each round leases its own rows).
   */
  async drain(options: DrainOptions): Promise<DrainCounts> {
    const total = emptyDrainCounts();
    const lanes = Math.max(2, this.ctx.connector(options.connector).declaration.limits.maxConcurrent);
    // The other rounds start once the first one is sending: its first call then waits only for its
    // own claim and diff, not for every round's.
    let release = (): void => undefined;
    const firstSending = new Promise<void>((resolve) => (release = resolve));
    let failed = false;
    const lane = async (index: number): Promise<void> => {
      if (index > 0) await firstSending;
      for (let round = 0; round < 100_000 && !failed && !options.stop?.(); round++) {
        const counts = await this.drainRound(options, index === 0 && round === 0 ? release : undefined);
        for (const k of Object.keys(total) as (keyof DrainCounts)[]) total[k] += counts[k];
        if (counts.claimed === 0 || this.isPaused(options.connector)) return;
      }
    };
    // Every round ends before drain returns or throws: no round is left running unseen.
    const results = await Promise.allSettled(
      Array.from({ length: lanes }, (_, i) =>
        lane(i)
          .catch((error: unknown) => {
            failed = true;
            throw error;
          })
          .finally(() => {
            if (i === 0) release();
          }),
      ),
    );
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    return total;
  }

  /** One claim round: claims, coalesces, writes, settles. */
  drainOnce(options: DrainOptions): Promise<DrainCounts> {
    return this.drainRound(options, undefined);
  }

  /** {@link drainOnce}; `onSending` is called once the round's first calls are queued (or it has none). */
  private async drainRound(options: DrainOptions, onSending: (() => void) | undefined): Promise<DrainCounts> {
    const { ctx } = this;
    const counts = emptyDrainCounts();
    if (this.isPaused(options.connector)) return counts;
    const connector = ctx.connector(options.connector);
    const maxBatch = Math.max(...connector.declaration.objects.map((o) => o.maxBatchSize));
    // A bulk path pays off only if it gets large batches: claim enough rows to fill one.
    const maxBulk = Math.max(0, ...connector.declaration.objects.map((o) => o.bulkBatchSize ?? 0));
    // Rounds run side by side (see drain), so a round needs only a couple of batches: smaller rounds
    // start writing sooner and hold the event loop for less at a time.
    const rows = await ctx.store.claimOutbox({
      owner: options.owner,
      limit: options.limit ?? Math.max(maxBatch * 2, maxBulk),
      leaseMs: ctx.leaseMs,
      now: isoNow(ctx),
      connector: options.connector,
      ...(options.object ? { object: options.object } : {}),
    });
    counts.claimed = rows.length;
    if (rows.length === 0) {
      onSending?.();
      return counts;
    }
    options.step?.('claimed');
    // better-sqlite3 answers on the event loop, so store work never yields by itself: let the
    // throttle's timers (and other rounds' calls) run between the heavy steps.
    await nextTurn();
    const byObject = new Map<string, OutboxRow[]>();
    for (const row of rows) byObject.set(row.object, [...(byObject.get(row.object) ?? []), row]);
    try {
      for (const [object, objectRows] of byObject) {
        await this.sendObject(options, object, objectRows, counts, onSending);
      }
    } finally {
      onSending?.();
    }
    return counts;
  }

  isPaused(slug: string): boolean {
    const s = this.ctx.states.get(slug);
    return !!s && s.status !== 'ok' && s.until > this.ctx.now();
  }

  private async sendObject(
    options: DrainOptions,
    object: string,
    rows: OutboxRow[],
    counts: DrainCounts,
    onSending?: () => void,
  ): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    const mapping = ctx.mappings.get(slug, object);
    const declaration = ctx.connector(slug).declaration.objects.find((o) => o.name === object);
    const settlement = emptySettlement();
    if (!mapping || !declaration) {
      for (const row of rows)
        settlement.dead.push({
          id: row.id,
          reason: 'config:NO_MAPPING',
          error: `No mapping or object ${slug}.${object}`,
        });
      await this.flush(options.owner, settlement, counts);
      return;
    }
    const guard = await this.guardFor(slug, object);
    const preparedAt = ctx.now();
    // Diff first: records whose profile values already match the shadow cost no API call at all.
    let prepared = await this.prepareAll(mapping, coalesce(rows), settlement, counts);
    await nextTurn();
    const linked = prepared.filter((p) => p.item.remoteId !== undefined);
    if (linked.length > 0 && guard === 'pull') {
      const pulled = await this.guardPull(slug, object, preparedAt, counts);
      if (!pulled.ok) {
        this.fail(
          slug,
          linked.map((p) => p.record),
          pulled.error,
          settlement,
          counts,
        );
        prepared = prepared.filter((p) => p.item.remoteId === undefined);
      } else if (pulled.changed) {
        // The pull applied rep edits (or linked records a create was about to make): diff again.
        prepared = await this.prepareAll(
          mapping,
          prepared.map((p) => p.record),
          settlement,
          counts,
        );
      }
    } else if (linked.length > 0 && guard === 'ids') {
      const creates = prepared.filter((p) => p.item.remoteId === undefined);
      prepared = (await this.refreshLinked(options, mapping, linked, settlement, counts))
        ? [
            ...creates,
            ...(await this.prepareAll(
              mapping,
              linked.map((p) => p.record),
              settlement,
              counts,
            )),
          ]
        : creates;
    }
    if (ctx.holdCreatesUntilPulled && prepared.some((p) => p.item.remoteId === undefined)) {
      const pulled = await ctx.store.read().getCursor(slug, pulledMarker(object));
      if (!pulled) {
        // The CRM may already hold these people: creating them before the first pull links the
        // existing records would duplicate them (design.md §8.1). Not counted as an attempt.
        const nextAt = new Date(ctx.now() + HOLD_CREATES_MS).toISOString();
        const error = `held: waiting for the first pull of ${slug}.${object}`;
        for (const p of prepared)
          if (p.item.remoteId === undefined)
            for (const row of p.record.rows)
              settlement.retries.push({ id: row.id, nextAt, error, countAttempt: false });
        prepared = prepared.filter((p) => p.item.remoteId !== undefined);
      }
    }
    const key = (p: PreparedItem): string => `${slug}\u0000${object}\u0000${p.profileId}`;
    for (
      let busy = prepared.filter((p) => this.inFlight.has(key(p)));
      busy.length > 0;
      busy = prepared.filter((p) => this.inFlight.has(key(p)))
    ) {
      prepared = prepared.filter((p) => !this.inFlight.has(key(p)));
      await Promise.all(busy.map((p) => this.inFlight.get(key(p)) ?? Promise.resolve()));
      prepared.push(
        ...(await this.prepareAll(
          mapping,
          busy.map((p) => p.record),
          settlement,
          counts,
        )),
      );
    }
    await this.flush(options.owner, settlement, counts);
    const size =
      declaration.bulkBatchSize !== undefined && prepared.length > declaration.maxBatchSize
        ? declaration.bulkBatchSize
        : declaration.maxBatchSize;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < prepared.length; i += size) {
      const chunk = prepared.slice(i, i + size);
      const send = this.sendChunk(options, object, chunk, counts);
      const settled = send.catch(() => undefined);
      for (const p of chunk) {
        const k = key(p);
        this.inFlight.set(k, settled);
        void settled.then(() => {
          if (this.inFlight.get(k) === settled) this.inFlight.delete(k);
        });
      }
      sends.push(send);
    }
    onSending?.();
    await Promise.all(sends);
  }

  /**
   * Which guard runs for this object now: `pull` only with the engine's pull and a saved cursor
   * (without one the pull would read everything, so `ids` stands in); null when a pull completed
   * within the freshness window, or the guard is off.
   */
  private async guardFor(slug: string, object: string): Promise<'pull' | 'ids' | null> {
    const { ctx } = this;
    if (ctx.readBeforeWrite === 'off') return null;
    if (ctx.readBeforeWrite === 'ids' || !this.hooks.pull) return 'ids';
    const read = ctx.store.read();
    if (!(await read.getCursor(slug, object))) return 'ids';
    return (await this.lastPullAt(slug, object)) === null ? 'pull' : null;
  }

  /** When a pull of the object last completed (any process), if within the freshness window; ms epoch. */
  private async lastPullAt(slug: string, object: string): Promise<number | null> {
    const marker = await this.ctx.store.read().getCursor(slug, pulledMarker(object));
    const at = marker ? Date.parse(marker.value) : NaN;
    return Number.isFinite(at) && this.ctx.now() - at < this.ctx.readBeforeWriteFreshnessMs ? at : null;
  }

  /**
   * Runs the guard's pull, or joins the one in flight for this object. `changed` tells the caller
   * to diff again: the pull applied something (or completed after the caller's diff began).
   */
  private async guardPull(
    slug: string,
    object: string,
    preparedAt: number,
    counts: DrainCounts,
  ): Promise<GuardPullResult> {
    const key = `${slug}\u0000${object}`;
    const inFlight = this.guardPulls.get(key);
    if (inFlight) return inFlight;
    // Another round's pull may have completed since this round checked: no second call then.
    const recent = await this.lastPullAt(slug, object);
    if (recent !== null) return { ok: true, changed: recent >= preparedAt };
    const pull = this.hooks.pull;
    if (!pull) return { ok: true, changed: false };
    const flight = (async (): Promise<GuardPullResult> => {
      try {
        const pulled = await pull(slug, object);
        counts.apiCalls += pulled.apiCalls;
        return { ok: true, changed: pulled.created + pulled.updated + pulled.deleted + pulled.failed > 0 };
      } catch (error) {
        return { ok: false, error: toCrmhubError(error, { connector: slug, object }) };
      } finally {
        this.guardPulls.delete(key);
      }
    })();
    this.guardPulls.set(key, flight);
    return flight;
  }

  /**
   * The `ids` guard: reads the linked records' current state (one `readByIds` per batch) and applies
   * it first, so a rep's edit not yet delivered by webhook or pull meets the conflict rules instead
   * of being overwritten (a lost update). False when the read failed; the rows are settled then.
   */
  private async refreshLinked(
    options: DrainOptions,
    mapping: SyncObjectMapping,
    linked: PreparedItem[],
    settlement: Settlement,
    counts: DrainCounts,
  ): Promise<boolean> {
    const { ctx } = this;
    const slug = options.connector;
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
        // Linked records the CRM no longer has were deleted there: unlink so the next write recreates.
        const gone = chunk
          .filter((id) => !found.has(id))
          .map((id) => ({ object: mapping.object, id, fields: {}, modifiedAt: isoNow(ctx), deleted: true }));
        await applyRemoteChanges(ctx, slug, mapping.object, [...current, ...gone], {
          trigger: `outbox:${options.owner}`,
        });
      }
    } catch (error) {
      this.fail(
        slug,
        linked.map((p) => p.record),
        toCrmhubError(error, { connector: slug, object: mapping.object }),
        settlement,
        counts,
      );
      return false;
    }
    return true;
  }

  /**
   * The writes for these records, from a handful of bulk reads: live profiles, shadows, traits and
   * (for creates) identifiers. Records with nothing to send are completed (through `settlement`).
   */
  private async prepareAll(
    mapping: SyncObjectMapping,
    records: PendingRecord[],
    settlement: Settlement,
    counts: DrainCounts,
  ): Promise<PreparedItem[]> {
    if (records.length === 0) return [];
    const read = this.ctx.store.read();
    const live = await resolveLive(
      read,
      records.map((r) => r.profileId),
    );
    const liveIds = [
      ...new Set([...live.values()].filter((p): p is ProfileRow => p !== null).map((p) => p.id)),
    ];
    const shadows = new Map<string, RemoteRecordRow>();
    for (const r of await read.findRemoteRecordsByProfiles(mapping.connector, mapping.object, liveIds)) {
      if (!r.deleted && !shadows.has(r.profileId)) shadows.set(r.profileId, r);
    }
    const withValues = new Set<ProfileId>();
    const creates = new Set<ProfileId>();
    for (const r of records) {
      const p = live.get(r.profileId);
      if (!p || r.op === 'delete') continue;
      withValues.add(p.id);
      if (!shadows.has(p.id)) creates.add(p.id);
    }
    const needsIdentifiers = mapping.match.some((k) => k.identifier !== 'profile_id');
    const snapshot: Snapshot = {
      live,
      shadows,
      traits: await traitsOf(read, [...withValues]),
      identifiers: needsIdentifiers
        ? await identifiersOf(read, [...creates])
        : new Map<string, IdentifierRow[]>(),
    };
    const out: PreparedItem[] = [];
    for (const record of records) {
      const item = this.prepare(mapping, record, snapshot);
      if (item !== null) out.push(item);
      else {
        for (const row of record.rows) settlement.done.push(row.id);
        counts.skipped += record.rows.length;
      }
    }
    return out;
  }

  /** The write for one coalesced record, or null when nothing differs from the shadow. */
  private prepare(
    mapping: SyncObjectMapping,
    record: PendingRecord,
    snapshot: Snapshot,
  ): PreparedItem | null {
    const live = snapshot.live.get(record.profileId);
    if (!live) return null;
    const profileId = live.id;
    const shadow = snapshot.shadows.get(profileId) ?? null;
    if (record.op === 'delete') {
      if (!shadow) return null;
      return {
        record,
        shadow,
        profileId,
        item: { ref: record.ref, remoteId: shadow.remoteId, fields: {}, delete: true },
      };
    }
    const traits = snapshot.traits.get(profileId) ?? new Map<string, JsonValue>();
    const fields: FieldValues = {};
    for (const f of mapping.fields) {
      // A new record gets every mapped value; an existing one only what the rows name.
      if (!f.toRemote || (shadow && !(f.remoteField in record.fields))) continue;
      // The profile as it is now: an old row re-delivered after a crash can never write a stale value.
      const value = traits.has(f.profileKey)
        ? profileToRemote(f, traits.get(f.profileKey))
        : record.fields[f.remoteField];
      if (value === undefined) continue;
      if (isEmptyValue(value) && f.onEmpty === 'ignore') continue;
      if (shadow && sameValue(value, shadow.shadow[f.remoteField])) continue;
      fields[f.remoteField] = value;
    }
    if (Object.keys(fields).length === 0) return null;
    if (shadow)
      return { record, shadow, profileId, item: { ref: record.ref, remoteId: shadow.remoteId, fields } };
    if (mapping.onNoMatch === 'skip') return null;
    // The CRM needs these to create a record: without them no record is created (design.md §4).
    if (mapping.fields.some((f) => f.required && f.toRemote && isEmptyValue(fields[f.remoteField])))
      return null;
    const upsertKey = this.upsertKeyFor(
      mapping,
      profileId,
      traits,
      snapshot.identifiers.get(profileId) ?? [],
    );
    return {
      record,
      shadow: null,
      profileId,
      item: { ref: record.ref, fields, ...(upsertKey ? { upsertKey } : {}) },
    };
  }

  private upsertKeyFor(
    mapping: SyncObjectMapping,
    profileId: ProfileId,
    traits: Map<string, JsonValue>,
    identifiers: IdentifierRow[],
  ): { field: string; value: string } | null {
    for (const key of mapping.match) {
      if (key.identifier === 'profile_id') return { field: key.remote, value: profileId };
      const id = identifiers.find((i) => i.type === key.identifier);
      if (id) return { field: key.remote, value: id.value };
      const trait = traits.get(key.identifier);
      if (typeof trait === 'string' && trait !== '') return { field: key.remote, value: trait };
    }
    return null;
  }

  private async sendChunk(
    options: DrainOptions,
    object: string,
    chunk: PreparedItem[],
    counts: DrainCounts,
  ): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    const settlement = emptySettlement();
    const connector = ctx.connector(slug);
    const throttle = ctx.throttle(slug);
    // Before the call, what it sends: if this process dies after the CRM took the write but before
    // the shadow has it, the inbound path still knows the value as ours, not a rep's newer edit.
    const sent = chunk.flatMap((p) => {
      const last = p.record.rows[p.record.rows.length - 1];
      if (p.item.delete || last === undefined) return [];
      return [{ id: last.id, fields: { ...p.item.fields, ...(p.item.upsertKey ? { [p.item.upsertKey.field]: p.item.upsertKey.value } : {}) } }];
    });
    await ctx.store.markOutboxSent(sent, options.owner);
    // The work queue bounds the calls in flight, not the store work around them: settling a batch
    // (a round trip per statement on Postgres) must not keep the next call from going out.
    const call = await ctx.workQueue(slug).add(async (): Promise<ChunkCall> => {
      if (this.isPaused(slug)) return { kind: 'paused' };
      options.step?.('before-write');
      try {
        counts.apiCalls++;
        const outcomes = await throttle.schedule(() =>
          connector.write(
            object,
            chunk.map((p) => p.item),
          ),
        );
        throttle.observeQuota(connector.quota?.());
        return { kind: 'done', outcomes };
      } catch (error) {
        return { kind: 'failed', error: toCrmhubError(error, { connector: slug, object }) };
      }
    });
    if (call.kind !== 'done') {
      if (call.kind === 'paused') {
        const nextAt = new Date(this.ctx.states.get(slug)?.until ?? ctx.now()).toISOString();
        for (const p of chunk)
          for (const row of p.record.rows)
            settlement.retries.push({ id: row.id, nextAt, error: 'connection paused', countAttempt: false });
      } else {
        this.fail(
          slug,
          chunk.map((p) => p.record),
          call.error,
          settlement,
          counts,
        );
      }
      await this.flush(options.owner, settlement, counts);
      return;
    }
    const outcomes = call.outcomes;
    options.step?.('after-write');
    const byRef = new Map(outcomes.map((o) => [o.ref, o]));
    const succeeded: Succeeded[] = [];
    for (const p of chunk) {
      const outcome = byRef.get(p.item.ref);
      if (!outcome) {
        const missing = new CrmhubError('transient', 'The connector returned no outcome for this record', {
          code: 'MISSING_OUTCOME',
          context: { connector: slug, object, record: p.item.ref },
        });
        this.fail(slug, [p.record], missing, settlement, counts);
      } else if (outcome.ok) {
        succeeded.push({ p, outcome });
      } else {
        this.fail(slug, [p.record], outcome.error, settlement, counts);
      }
    }
    if (succeeded.length > 0) await this.settleSuccesses(options, object, succeeded, settlement, counts);
    await nextTurn();
    await this.flush(options.owner, settlement, counts);
  }

  /**
   * Shadows and CRM-id identifiers of a whole batch in one transaction; the rows complete after.
   * When that transaction fails (say one CRM id already belongs to another profile), each record
   * gets its own, so one bad record never holds up the others.
   */
  private async settleSuccesses(
    options: DrainOptions,
    object: string,
    succeeded: Succeeded[],
    settlement: Settlement,
    counts: DrainCounts,
  ): Promise<void> {
    const { ctx } = this;
    const slug = options.connector;
    const now = isoNow(ctx);
    let settled = succeeded;
    try {
      await ctx.store.transaction((tx) => this.writeShadows(tx, slug, object, succeeded, now));
    } catch {
      settled = [];
      for (const entry of succeeded) {
        try {
          await ctx.store.transaction((tx) => this.writeShadows(tx, slug, object, [entry], now));
          settled.push(entry);
        } catch (error) {
          this.fail(
            slug,
            [entry.p.record],
            toCrmhubError(error, { connector: slug, object, record: entry.outcome.remoteId }),
            settlement,
            counts,
          );
        }
      }
    }
    options.step?.('after-shadow');
    for (const { p, outcome } of settled) {
      for (const row of p.record.rows) settlement.done.push(row.id);
      if (outcome.created) counts.created++;
      else counts.updated++;
    }
  }

  private async writeShadows(
    tx: StoreTx,
    slug: string,
    object: string,
    succeeded: Succeeded[],
    now: string,
  ): Promise<void> {
    const identifierType = this.ctx.declaration(slug, object).identifierType;
    for (const { p, outcome } of succeeded) {
      if (outcome.movedFrom && p.shadow && outcome.movedFrom !== outcome.remoteId)
        await tx.moveRemoteRecord(slug, object, outcome.movedFrom, outcome.remoteId);
    }
    const ids = [
      ...new Set(succeeded.filter(({ p }) => !p.item.delete).map(({ outcome }) => outcome.remoteId)),
    ];
    const current = new Map((await tx.getRemoteRecords(slug, object, ids)).map((r) => [r.remoteId, r]));
    const rows: RemoteRecordRow[] = [];
    const identifiers: (Omit<IdentifierRow, 'firstSeen' | 'lastSeen'> & { at: string })[] = [];
    for (const { p, outcome } of succeeded) {
      if (p.item.delete) {
        if (p.shadow) {
          const row = { ...p.shadow, deleted: true, syncedAt: now };
          rows.push(row);
          current.set(row.remoteId, row);
        }
        continue;
      }
      const base = current.get(outcome.remoteId) ?? p.shadow;
      const written: FieldValues = { ...p.item.fields };
      if (p.item.upsertKey) written[p.item.upsertKey.field] = p.item.upsertKey.value;
      const fieldChangedAt = { ...(base?.fieldChangedAt ?? {}) };
      if (outcome.modifiedAt) for (const k of Object.keys(written)) fieldChangedAt[k] = outcome.modifiedAt;
      const row: RemoteRecordRow = {
        connector: slug,
        object,
        remoteId: outcome.remoteId,
        profileId: p.profileId,
        shadow: { ...(base && !base.deleted ? base.shadow : {}), ...written },
        remoteChangedAt: outcome.modifiedAt ?? base?.remoteChangedAt ?? null,
        fieldChangedAt,
        syncedAt: now,
        deleted: false,
      };
      rows.push(row);
      // A second write to the same record in this batch builds on this one.
      current.set(row.remoteId, row);
      identifiers.push({
        type: identifierType,
        value: outcome.remoteId,
        profileId: p.profileId,
        source: slug,
        at: now,
      });
    }
    // Two statements for the batch on Postgres, not two per record (the last row per record wins).
    await tx.upsertRemoteRecords(rows);
    await tx.addIdentifiers(identifiers);
  }

  /** Decides what happens to these records' rows after `error` (design.md §7); gathered in `settlement`. */
  private fail(
    slug: string,
    records: PendingRecord[],
    error: CrmhubError,
    settlement: Settlement,
    counts: DrainCounts,
  ): void {
    const { ctx } = this;
    const message = JSON.stringify(error.toJSON());
    const reason = `${error.kind}:${error.code}`;
    const retry = (rows: OutboxRow[], atMs: number, countAttempt: boolean): void => {
      const nextAt = new Date(atMs).toISOString();
      for (const row of rows) settlement.retries.push({ id: row.id, nextAt, error: message, countAttempt });
    };
    const dead = (rows: OutboxRow[]): void => {
      for (const row of rows) settlement.dead.push({ id: row.id, reason, error: message });
    };
    switch (error.kind) {
      case 'rate_limited': {
        counts.rateLimited++;
        ctx.throttle(slug).onRateLimited(error.retryAfterMs);
        retry(
          records.flatMap((r) => r.rows),
          ctx.now() + (error.retryAfterMs ?? ctx.connector(slug).declaration.limits.windowMs),
          false,
        );
        return;
      }
      case 'auth':
      case 'config': {
        ctx.states.set(slug, {
          status: error.kind === 'auth' ? 'needs_reauth' : 'paused',
          until: ctx.now() + ctx.pauseMs,
          reason,
        });
        ctx.logger?.error({ err: error.toJSON() }, `connection ${slug} paused`);
        retry(
          records.flatMap((r) => r.rows),
          ctx.now() + ctx.pauseMs,
          false,
        );
        return;
      }
      case 'payload':
      case 'conflict': {
        dead(records.flatMap((r) => r.rows));
        return;
      }
      case 'transient':
      case 'internal': {
        for (const record of records) {
          const attempts = Math.max(...record.rows.map((r) => r.attempts)) + 1;
          if (attempts >= ctx.retry.maxAttempts) dead(record.rows);
          else retry(record.rows, ctx.now() + backoffMs(ctx, attempts, error.retryAfterMs), true);
        }
        return;
      }
    }
  }

  /** Writes what `settlement` gathered: one transaction each for completions, retries and dead letters. */
  private async flush(owner: string, settlement: Settlement, counts: DrainCounts): Promise<void> {
    const { store } = this.ctx;
    const { done, retries, dead } = settlement;
    settlement.done = [];
    settlement.retries = [];
    settlement.dead = [];
    if (done.length > 0) await store.completeOutboxMany(done, owner);
    if (retries.length > 0) {
      await store.retryOutboxMany(retries, owner);
      counts.retried += retries.length;
    }
    if (dead.length > 0)
      counts.deadLettered += (await store.deadLetterOutboxMany(dead, owner, isoNow(this.ctx))).length;
  }
}
