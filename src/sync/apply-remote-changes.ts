/**
 * The inbound path (design.md §4 "Inbound"): for each remote record, map `to_profile` fields,
 * resolve identity (the CRM record id is a limit-1 identifier `<slug>.<object>`; the mapping's match
 * keys and its inbound-only join keys such as email join, see `inbound-join-keys.ts`), plan per
 * field against the shadow, and write the profile traits, the new shadow, conflicts and the outbox
 * rows for every other connector (and for this one where the profile side won) in one
 * transaction: all of a record's effects commit together (records are grouped, up to 100 per
 * transaction, see `applyRemoteChanges`).
 *
 * Echo suppression: a record equal to its shadow (our own write coming back, `origin: 'self'` or
 * not) changes nothing and enqueues nothing. Out-of-order deliveries: a record older than the
 * shadow's `remoteChangedAt` is skipped.
 */
import type { FieldValues, IdentifierInput, ProfileId } from '../core/types.ts';
import type { RemoteRecord } from '../connector-kit/connector.ts';
import { toCrmhubError } from '../connector-kit/errors.ts';
import type { RemoteRecordRow, StoreTx } from '../store/port.ts';
import { isEmptyValue, sameValue } from './basic-merge.ts';
import { isoNow, type EngineContext } from './engine-context.ts';
import { inboundJoinKeys } from './inbound-join-keys.ts';
import { enqueueProfileChanges } from './outbox-enqueue.ts';
import type { FieldPlan, PlannerTrait, SyncObjectMapping } from './sync-types.ts';

export interface ApplyCounts {
  created: number;
  updated: number;
  skipped: number;
  deleted: number;
  failed: number;
  conflicts: number;
  echoes: number;
  enqueued: number;
}

export function emptyApplyCounts(): ApplyCounts {
  return { created: 0, updated: 0, skipped: 0, deleted: 0, failed: 0, conflicts: 0, echoes: 0, enqueued: 0 };
}

export interface ApplyOptions {
  /** What caused this (`pull:<run id>`, a webhook delivery id); recorded on identity merges. */
  trigger: string;
  /** Plan only: every transaction is rolled back. */
  dryRun?: boolean;
  /** Receives the plan of each record (dry runs print it). */
  onPlan?: (entry: { remoteId: string; profileId: string | null; outcome: RecordOutcome; plan: FieldPlan | null }) => void;
}

export type RecordOutcome = 'created' | 'updated' | 'skipped' | 'deleted' | 'echo' | 'stale' | 'failed';

/** Thrown inside a dry-run transaction so the store rolls it back; carries the outcome out. */
class DryRunRollback extends Error {
  constructor(readonly outcome: RecordOutcome) {
    super();
  }
}

function mappedRemoteValues(mapping: SyncObjectMapping, fields: FieldValues, base: FieldValues | null): FieldValues {
  const out: FieldValues = {};
  for (const f of mapping.fields) {
    if (f.remoteField in fields) out[f.remoteField] = fields[f.remoteField] ?? null;
    else if (base && f.remoteField in base) out[f.remoteField] = base[f.remoteField] ?? null;
  }
  return out;
}

function isStale(shadow: RemoteRecordRow | null, record: RemoteRecord): boolean {
  if (!shadow?.remoteChangedAt) return false;
  return Date.parse(record.modifiedAt) < Date.parse(shadow.remoteChangedAt);
}

async function resolveProfileId(ctx: EngineContext, tx: StoreTx, mapping: SyncObjectMapping, identifierType: string, record: RemoteRecord, trigger: string): Promise<{ profileId: ProfileId; created: boolean }> {
  // The crmhub id written into the CRM (a `profile_id` match key) points straight at the profile.
  for (const key of mapping.match) {
    if (key.identifier !== 'profile_id') continue;
    const value = record.fields[key.remote];
    if (typeof value === 'string' && value !== '') {
      const p = await tx.resolveProfile(value);
      if (p) {
        await tx.addIdentifier({ type: identifierType, value: record.id, profileId: p.id, source: mapping.connector, at: isoNow(ctx) });
        return { profileId: p.id, created: false };
      }
    }
  }
  const identifiers: IdentifierInput[] = [{ type: identifierType, value: record.id }];
  // Match keys, then the inbound-only join keys (email where the CRM does not keep it unique).
  for (const key of inboundJoinKeys(mapping)) {
    if (key.identifier === 'profile_id') continue;
    const value = record.fields[key.remote];
    if ((typeof value === 'string' && value !== '') || typeof value === 'number') identifiers.push({ type: key.identifier, value: String(value) });
  }
  // Whether a profile already answers to one of these (the count says created or updated): emails
  // are looked up as the identity registry stores them, trimmed and lower-cased.
  const before = await tx.findIdentifiers(identifiers.map((i) => ({ type: i.type, value: i.type === 'email' ? i.value.trim().toLowerCase() : i.value })));
  const { profileId } = await ctx.identity.resolve(tx, { kind: mapping.profileKind, identifiers, at: isoNow(ctx), trigger, source: mapping.connector });
  return { profileId, created: before.length === 0 };
}

async function applyOne(ctx: EngineContext, tx: StoreTx, mapping: SyncObjectMapping, record: RemoteRecord, options: ApplyOptions, counts: ApplyCounts): Promise<RecordOutcome> {
  const { connector: slug, object } = mapping;
  const identifierType = ctx.declaration(slug, object).identifierType;
  const shadow = await tx.getRemoteRecord(slug, object, record.id);
  if (isStale(shadow, record)) return 'stale';
  const now = isoNow(ctx);
  if (record.deleted) {
    if (!shadow || shadow.deleted) return 'skipped';
    // The profile stays (it may live on in other CRMs); the link is marked deleted.
    await tx.upsertRemoteRecord({ ...shadow, deleted: true, remoteChangedAt: record.modifiedAt, syncedAt: now });
    return 'deleted';
  }
  const remoteValues = mappedRemoteValues(mapping, record.fields, shadow?.deleted ? null : (shadow?.shadow ?? null));
  if (shadow && !shadow.deleted) {
    const echo = mapping.fields.every((f) => sameValue(remoteValues[f.remoteField], shadow.shadow[f.remoteField]));
    if (echo) {
      if (record.modifiedAt !== shadow.remoteChangedAt) await tx.upsertRemoteRecord({ ...shadow, remoteChangedAt: record.modifiedAt, syncedAt: now });
      return 'echo';
    }
  }
  let profileId: ProfileId;
  let created = false;
  const linked = shadow ? await tx.resolveProfile(shadow.profileId) : null;
  if (linked) profileId = linked.id;
  else ({ profileId, created } = await resolveProfileId(ctx, tx, mapping, identifierType, record, options.trigger));

  const traits = await tx.getTraits(profileId);
  const profile: Record<string, PlannerTrait> = {};
  for (const t of traits) profile[t.key] = { value: t.value, changedAt: t.changedAt, source: t.source };
  // A value one of our unsettled attempts sent is the CRM's base, not a rep's newer edit: the
  // attempt may have landed just before its process died, before the shadow could record it.
  let base = shadow && !shadow.deleted ? shadow.shadow : null;
  const sent = created ? {} : await tx.findSentOutboxFields(slug, object, profileId);
  for (const [field, value] of Object.entries(sent)) {
    if (Object.hasOwn(remoteValues, field) && sameValue(remoteValues[field], value)) base = { ...(base ?? {}), [field]: value };
  }
  const plan = ctx.planner({
    mapping,
    shadow: base,
    remote: { fields: remoteValues, modifiedAt: record.modifiedAt, ...(record.fieldChangedAt ? { fieldChangedAt: record.fieldChangedAt } : {}) },
    profile,
  });
  options.onPlan?.({ remoteId: record.id, profileId, outcome: created ? 'created' : 'updated', plan });

  const changedKeys = new Set<string>();
  if (plan.toProfile.length > 0) {
    const writes = plan.toProfile
      .filter((w) => !sameValue(w.value, profile[w.key]?.value))
      .map((w) => ({ key: w.key, value: isEmptyValue(w.value) ? null : w.value, source: slug, changedAt: w.changedAt || record.modifiedAt }));
    if (writes.length > 0) {
      await tx.writeTraits(profileId, writes);
      await tx.touchProfile(profileId, now);
      for (const w of writes) changedKeys.add(w.key);
    }
  }
  for (const c of plan.conflicts) {
    await tx.insertConflict({
      connector: slug,
      object,
      profileId,
      remoteId: record.id,
      field: c.field,
      profileValue: c.profileValue,
      remoteValue: c.remoteValue,
      baseValue: c.baseValue,
      rule: c.rule,
      resolution: c.resolution,
      at: now,
      resolvedAt: c.resolution === 'review' ? null : now,
    });
  }
  counts.conflicts += plan.conflicts.length;
  await tx.upsertRemoteRecord({
    connector: slug,
    object,
    remoteId: record.id,
    profileId,
    shadow: remoteValues,
    remoteChangedAt: record.modifiedAt,
    fieldChangedAt: { ...(shadow?.fieldChangedAt ?? {}), ...(record.fieldChangedAt ?? {}) },
    syncedAt: now,
    deleted: false,
  });
  const target = { mappings: ctx.mappings, enabled: new Set(ctx.connectors.keys()) };
  if (changedKeys.size > 0) counts.enqueued += await enqueueProfileChanges(tx, target, profileId, mapping.profileKind, changedKeys, { connector: slug, object });
  if (Object.keys(plan.toRemote).length > 0) {
    await tx.enqueueOutbox([{ connector: slug, object, profileId, op: 'upsert', fields: plan.toRemote }]);
    counts.enqueued++;
  }
  return created ? 'created' : 'updated';
}

/** Records per transaction when a page is applied in bulk. */
const APPLY_GROUP = 100;

function countOutcome(counts: ApplyCounts, outcome: RecordOutcome): void {
  if (outcome === 'created') counts.created++;
  else if (outcome === 'updated') counts.updated++;
  else if (outcome === 'deleted') counts.deleted++;
  else if (outcome === 'failed') counts.failed++;
  else if (outcome === 'echo') {
    counts.echoes++;
    counts.skipped++;
  } else counts.skipped++;
}

function addCounts(into: ApplyCounts, from: ApplyCounts): void {
  for (const k of Object.keys(into) as (keyof ApplyCounts)[]) into[k] += from[k];
}

/**
 * Applies remote records of one connector object to the profile side; a failing record is counted
 * and logged, never stops the others. Records go in groups of up to 100 per transaction (a page of
 * a pull, a batch of the outbox guard: one commit instead of one per record); when a group's
 * transaction fails, its records are applied again one transaction each, so only the bad one
 * fails. Dry runs and plan callbacks keep one transaction per record.
 */
export async function applyRemoteChanges(ctx: EngineContext, connectorSlug: string, object: string, records: RemoteRecord[], options: ApplyOptions): Promise<ApplyCounts> {
  const counts = emptyApplyCounts();
  const mapping = ctx.mappings.get(connectorSlug, object);
  if (!mapping) {
    counts.skipped += records.length;
    return counts;
  }
  // Out-of-order deliveries: apply oldest first so the newest state is the one that stays.
  const ordered = [...records].sort((a, b) => Date.parse(a.modifiedAt) - Date.parse(b.modifiedAt));
  const grouped = !options.dryRun && !options.onPlan;
  for (let i = 0; i < ordered.length; ) {
    const group = grouped ? ordered.slice(i, i + APPLY_GROUP) : [];
    if (group.length > 1) {
      i += group.length;
      // Counts of an attempt are kept only once it commits (Postgres may run the function again).
      let attempt = emptyApplyCounts();
      try {
        await ctx.store.transaction(async (tx) => {
          attempt = emptyApplyCounts();
          for (const record of group) countOutcome(attempt, await applyOne(ctx, tx, mapping, record, options, attempt));
        });
        addCounts(counts, attempt);
        continue;
      } catch {
        // One record broke the group: fall through to one transaction per record.
      }
      for (const record of group) await applyAlone(ctx, mapping, record, options, counts);
      continue;
    }
    const record = ordered[i++];
    if (record) await applyAlone(ctx, mapping, record, options, counts);
  }
  return counts;
}

/** One record in its own transaction (rolled back for dry runs). */
async function applyAlone(ctx: EngineContext, mapping: SyncObjectMapping, record: RemoteRecord, options: ApplyOptions, counts: ApplyCounts): Promise<void> {
  let outcome: RecordOutcome;
  let attempt = emptyApplyCounts();
  try {
    outcome = await ctx.store.transaction(async (tx) => {
      attempt = emptyApplyCounts();
      const result = await applyOne(ctx, tx, mapping, record, options, attempt);
      if (options.dryRun) throw new DryRunRollback(result);
      return result;
    });
    addCounts(counts, attempt);
  } catch (error) {
    if (error instanceof DryRunRollback) {
      outcome = error.outcome;
      addCounts(counts, attempt);
    } else {
      outcome = 'failed';
      ctx.logger?.error({ err: toCrmhubError(error, { connector: mapping.connector, object: mapping.object, record: record.id }).toJSON() }, 'inbound record failed');
    }
  }
  countOutcome(counts, outcome);
  if (outcome !== 'created' && outcome !== 'updated') options.onPlan?.({ remoteId: record.id, profileId: null, outcome, plan: null });
}
