/**
 * The per-field three-way merge (design.md §4): for one record, given the compiled mapping, the
 * profile's traits, the CRM record and the shadow (the merge base: the last values known to be on
 * the CRM record), decide per field what to write where. Pure: no I/O, no clock.
 *
 * Values are compared after normalisation — each value goes through the field's transforms and then
 * a loose canonical form — so "5" vs 5 or a re-cased email is no change. That is also what stops
 * echo loops: our own write coming back equals the shadow, so nothing moves.
 */
import type { FieldValues, JsonValue, Trait } from '../core/types.ts';
import type { CompiledField, CompiledMapping, RemoteKeyResolver } from '../mapping/compile-mapping.ts';
import { verbatimKey } from '../mapping/compile-mapping.ts';
import type { ConflictRule, Direction } from '../mapping/mapping-schema.ts';
import { fieldToProfile, fieldToRemote, sendsToProfile, sendsToRemote } from '../mapping/mapping-values.ts';
import type { TransformResult } from '../mapping/transforms.ts';
import { isEmptyValue } from '../mapping/transforms.ts';
import { asSet, sameValue } from './planner-values.ts';

/** The CRM record as read (vendor keys), or absent when it does not exist yet. */
export interface PlanRemote {
  fields: FieldValues;
  /** ISO-8601 record modified time. */
  modifiedAt: string;
  /** Per-field change times (ISO-8601, vendor keys) where the CRM gives them. */
  fieldChangedAt?: Record<string, string>;
}

export interface PlanInput {
  mapping: CompiledMapping;
  /** The profile's traits with provenance; a missing key means no value. */
  traits: Readonly<Record<string, Pick<Trait, 'value' | 'changedAt'>>>;
  /** The CRM record's current state; absent when the record does not exist yet (it will be created). */
  remote?: PlanRemote;
  /** Last values known to be on the CRM record (vendor keys); absent for records never linked. */
  shadow?: FieldValues | null;
  /**
   * Identifier values of the profile by type (`email`, `profile_id`, …). Identity match keys with a
   * known value are written where the CRM record has none (so the native upsert key is set).
   */
  identifiers?: Readonly<Record<string, string>>;
  /** Maps a mapping's remote field to its vendor key (Pipedrive custom fields). Default: verbatim. */
  resolveKey?: RemoteKeyResolver;
  /** `source` of trait writes. Default: the mapping's connector. */
  source?: string;
}

export type FieldOutcome =
  | 'unchanged'
  | 'to_remote'
  | 'to_profile'
  | 'conflict_profile_won'
  | 'conflict_remote_won'
  | 'review'
  | 'skipped_empty'
  | 'skipped_not_empty'
  | 'skipped_direction'
  | 'invalid';

export interface FieldPlan {
  /** Remote field as written in the mapping. */
  field: string;
  /** Vendor key on the wire. */
  key: string;
  profilePath: string | undefined;
  profileValue: JsonValue | undefined;
  remoteValue: JsonValue | undefined;
  /** `undefined` when there is no base (never linked, or a newly mapped field). */
  shadowValue: JsonValue | undefined;
  rule: ConflictRule;
  direction: Direction;
  outcome: FieldOutcome;
  reason: string;
}

export interface TraitWrite {
  key: string;
  value: JsonValue;
  /** When the value changed at the CRM (field change time, else record modified time). */
  changedAt: string;
  source: string;
}

/** A row for the conflicts log: both sides changed since the shadow and disagree. */
export interface ConflictRow {
  /** Remote field as written in the mapping. */
  field: string;
  /** Vendor key on the wire. */
  key: string;
  profilePath: string | undefined;
  profileValue: JsonValue | undefined;
  remoteValue: JsonValue | undefined;
  shadowValue: JsonValue | undefined;
  rule: ConflictRule;
  /** `none` for `review` (parked) and `fill_if_empty` with both sides set. */
  winner: 'profile' | 'remote' | 'none';
  profileChangedAt: string | undefined;
  remoteChangedAt: string | undefined;
}

export interface RecordPlan {
  connector: string;
  object: string;
  mappingHash: string;
  fields: FieldPlan[];
  /** Traits to write on the profile. */
  traitWrites: TraitWrite[];
  /** Only the changed fields to send to the CRM (vendor keys). Empty: send nothing. */
  remoteDiff: FieldValues;
  conflicts: ConflictRow[];
  /** Some field is parked for a person (`review`). */
  needsReview: boolean;
  /** Mapped `required` fields that would be empty on the CRM record (do not create it). */
  missingRequired: string[];
  /**
   * The shadow to store: at once when `remoteDiff` is empty, else after the CRM accepted the write.
   * Fields whose remote change was held back (review, direction, on_empty) keep their old base so
   * the next plan sees the same situation.
   */
  shadow: FieldValues;
  /** Nothing to write on either side. */
  noop: boolean;
}

const EPOCH = '1970-01-01T00:00:00.000Z';

type Side = 'profile' | 'remote';

function valueOf(r: TransformResult | undefined): JsonValue | undefined {
  if (r === undefined) return undefined;
  return r.kind === 'ok' ? r.value : r.kind === 'drop' ? null : undefined;
}

/** A remote value in the comparison space: through to_profile, then back through to_remote. */
function normRemote(field: CompiledField, raw: JsonValue | undefined): JsonValue | undefined {
  if (raw === undefined) return undefined;
  const back = fieldToProfile(field, raw);
  if (back?.kind !== 'ok') return back?.kind === 'drop' ? null : raw;
  const fwd = fieldToRemote(field, back.value);
  return fwd?.kind === 'ok' ? fwd.value : back.value;
}

function timeOf(iso: string | undefined): number {
  if (iso === undefined) return Number.NEGATIVE_INFINITY;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

interface Decision {
  want: Side | 'none' | 'review';
  reason: string;
}

function decideConflict(
  field: CompiledField,
  pEmpty: boolean,
  rEmpty: boolean,
  pAt: string | undefined,
  rAt: string | undefined,
): Decision {
  switch (field.conflict) {
    case 'latest_wins': {
      const p = timeOf(pAt);
      const r = timeOf(rAt);
      if (p > r) return { want: 'profile', reason: 'latest_wins: profile changed later' };
      if (r > p) return { want: 'remote', reason: 'latest_wins: CRM changed later' };
      return { want: field.tieBreaker, reason: `latest_wins: same time, tie_breaker ${field.tieBreaker}` };
    }
    case 'prefer_profile':
      return { want: 'profile', reason: 'prefer_profile' };
    case 'prefer_remote':
      return { want: 'remote', reason: 'prefer_remote' };
    case 'prefer_profile_unless_empty':
      return pEmpty
        ? { want: 'remote', reason: 'prefer_profile_unless_empty: profile is empty' }
        : { want: 'profile', reason: 'prefer_profile_unless_empty' };
    case 'prefer_remote_unless_empty':
      return rEmpty
        ? { want: 'profile', reason: 'prefer_remote_unless_empty: CRM is empty' }
        : { want: 'remote', reason: 'prefer_remote_unless_empty' };
    case 'fill_if_empty':
      if (rEmpty) return { want: 'profile', reason: 'fill_if_empty: CRM is empty' };
      if (pEmpty) return { want: 'remote', reason: 'fill_if_empty: profile is empty' };
      return { want: 'none', reason: 'fill_if_empty: both sides have a value' };
    case 'review':
      return { want: 'review', reason: 'review: parked for a person' };
  }
}

/**
 * Why a winning value may not be written to `target` (direction, invalid value, `on_empty`), or
 * undefined when it may.
 */
function holdBack(
  field: CompiledField,
  target: 'CRM' | 'profile',
  value: TransformResult | undefined,
  empty: boolean,
): { outcome: FieldOutcome; reason: string } | undefined {
  const allowed = target === 'CRM' ? sendsToRemote(field) : sendsToProfile(field);
  if (!allowed)
    return {
      outcome: 'skipped_direction',
      reason: `; direction ${field.direction} never writes the ${target}`,
    };
  if (value?.kind === 'error') return { outcome: 'invalid', reason: `; ${value.reason}` };
  if (empty && field.onEmpty === 'ignore') {
    return {
      outcome: 'skipped_empty',
      reason: `; on_empty ignore: an empty ${target === 'CRM' ? 'profile' : 'CRM'} value does not blank the ${target}`,
    };
  }
  return undefined;
}

/** Plans one record. See the module comment. */
export function planRecord(input: PlanInput): RecordPlan {
  const { mapping } = input;
  const resolveKey = input.resolveKey ?? verbatimKey;
  const source = input.source ?? mapping.connector;
  const shadowIn = input.shadow ?? undefined;
  const remote = input.remote;
  const plan: RecordPlan = {
    connector: mapping.connector,
    object: mapping.object,
    mappingHash: mapping.hash,
    fields: [],
    traitWrites: [],
    remoteDiff: {},
    conflicts: [],
    needsReview: false,
    missingRequired: [],
    shadow: { ...(shadowIn ?? {}) },
    noop: true,
  };

  for (const field of mapping.fields) {
    const key = resolveKey(field.remote);
    const trait = field.profile === undefined ? undefined : input.traits[field.profile];
    const isStatic = field.profile === undefined;
    const profileRaw = trait?.value;
    const profileAt = isStatic ? EPOCH : trait?.changedAt;
    const hasBase = shadowIn !== undefined && Object.hasOwn(shadowIn, key);
    const shadowRaw = hasBase ? shadowIn[key] : undefined;
    // A field the CRM did not return (partial webhook payload, narrowed read) is unchanged there.
    const remoteRaw = !remote
      ? undefined
      : Object.hasOwn(remote.fields, key)
        ? (remote.fields[key] ?? null)
        : hasBase
          ? shadowRaw
          : null;
    const remoteAt = remote ? (remote.fieldChangedAt?.[key] ?? remote.modifiedAt) : undefined;

    const out = fieldToRemote(field, profileRaw);
    const pn = valueOf(out);
    const rn = normRemote(field, remoteRaw);
    const sn = hasBase ? normRemote(field, shadowRaw) : undefined;
    const pEmpty = isEmptyValue(pn);
    const rEmpty = isEmptyValue(rn);

    const row: FieldPlan = {
      field: field.remote,
      key,
      profilePath: field.profile,
      profileValue: profileRaw,
      remoteValue: remoteRaw,
      shadowValue: shadowRaw,
      rule: field.conflict,
      direction: field.direction,
      outcome: 'unchanged',
      reason: '',
    };
    plan.fields.push(row);
    // What the shadow holds when nothing is written: the CRM's current value (or the old base).
    const keepCurrent = (): void => {
      if (remote) plan.shadow[key] = remoteRaw ?? null;
    };
    const keepBase = (): void => {
      if (hasBase) plan.shadow[key] = shadowRaw ?? null;
      else delete plan.shadow[key];
    };

    if (field.direction === 'none') {
      row.reason = 'direction none';
      keepCurrent();
      continue;
    }
    const same = (a: JsonValue | undefined, b: JsonValue | undefined): boolean =>
      sameValue(asSet(field, a), asSet(field, b));
    if (same(pn, rn)) {
      row.reason =
        hasBase && !same(rn, sn) ? 'both sides changed to the same value' : 'same value on both sides';
      keepCurrent();
      continue;
    }

    const pChanged = !hasBase || !same(pn, sn);
    const rChanged = !hasBase || !same(rn, sn);
    let decision: Decision;
    let conflict = false;
    if (pChanged && !rChanged) decision = { want: 'profile', reason: 'profile changed' };
    else if (rChanged && !pChanged) decision = { want: 'remote', reason: 'CRM changed' };
    else if (!hasBase && (pEmpty || rEmpty)) {
      decision = pEmpty
        ? { want: 'remote', reason: 'first link: only the CRM has a value' }
        : { want: 'profile', reason: 'first link: only the profile has a value' };
    } else {
      conflict = true;
      decision = decideConflict(field, pEmpty, rEmpty, profileAt, remoteAt);
    }
    // Which side's change a skip holds back: a held-back CRM change keeps the old base so the next
    // plan sees the same situation (otherwise it would look like a profile change and be pushed).
    let heldBackRemote = false;
    if (!conflict && field.conflict === 'fill_if_empty') {
      if (decision.want === 'profile' && !rEmpty)
        decision = { want: 'none', reason: 'fill_if_empty: CRM already has a value' };
      if (decision.want === 'remote' && !pEmpty) {
        decision = { want: 'none', reason: 'fill_if_empty: profile already has a value' };
        heldBackRemote = true;
      }
    }
    if (conflict) {
      plan.conflicts.push({
        field: field.remote,
        key,
        profilePath: field.profile,
        profileValue: profileRaw,
        remoteValue: remoteRaw,
        shadowValue: shadowRaw,
        rule: field.conflict,
        winner: decision.want === 'profile' || decision.want === 'remote' ? decision.want : 'none',
        profileChangedAt: profileAt,
        remoteChangedAt: remoteAt,
      });
    }
    row.reason = decision.reason;

    if (decision.want === 'review') {
      row.outcome = 'review';
      plan.needsReview = true;
      keepBase();
      continue;
    }
    if (decision.want === 'none') {
      row.outcome = 'skipped_not_empty';
      if (heldBackRemote) keepBase();
      else keepCurrent();
      continue;
    }
    if (decision.want === 'profile') {
      const held = holdBack(field, 'CRM', out, pEmpty);
      if (held) {
        row.outcome = held.outcome;
        row.reason += held.reason;
        keepCurrent();
      } else {
        // Empties travel as null; each connector sends its CRM's "clear" (HubSpot wants '').
        const value = pEmpty ? null : (pn ?? null);
        row.outcome = conflict ? 'conflict_profile_won' : 'to_remote';
        plan.remoteDiff[key] = value;
        plan.shadow[key] = value;
      }
      continue;
    }
    // decision.want === 'remote'
    const back = fieldToProfile(field, remoteRaw ?? null);
    const held = holdBack(field, 'profile', back, rEmpty);
    if (held || field.profile === undefined) {
      row.outcome = held?.outcome ?? 'skipped_direction';
      row.reason += held?.reason ?? '';
      keepBase();
    } else {
      row.outcome = conflict ? 'conflict_remote_won' : 'to_profile';
      const value = rEmpty ? null : (valueOf(back) ?? null);
      plan.traitWrites.push({ key: field.profile, value, changedAt: remoteAt ?? EPOCH, source });
      keepCurrent();
    }
  }

  fillIdentityKeys(input, resolveKey, plan);
  for (const field of mapping.fields) {
    if (!field.required) continue;
    const key = resolveKey(field.remote);
    const after = Object.hasOwn(plan.remoteDiff, key)
      ? plan.remoteDiff[key]
      : remote
        ? remote.fields[key]
        : undefined;
    if (isEmptyValue(after)) plan.missingRequired.push(field.remote);
  }
  plan.noop = Object.keys(plan.remoteDiff).length === 0 && plan.traitWrites.length === 0;
  return plan;
}

/** Writes identity match keys (e.g. `crmhub_id` = profile id) where the CRM record has none. */
function fillIdentityKeys(input: PlanInput, resolveKey: RemoteKeyResolver, plan: RecordPlan): void {
  const ids = input.identifiers;
  if (!ids) return;
  const mapped = new Set(input.mapping.fields.filter(sendsToRemote).map((f) => resolveKey(f.remote)));
  for (const match of input.mapping.identity.match) {
    const key = resolveKey(match.remote);
    const value = ids[match.identifier];
    if (value === undefined || mapped.has(key) || Object.hasOwn(plan.remoteDiff, key)) continue;
    const current = input.remote?.fields[key];
    if (!isEmptyValue(current)) continue;
    plan.remoteDiff[key] = value;
    plan.shadow[key] = value;
    plan.fields.push({
      field: match.remote,
      key,
      profilePath: undefined,
      profileValue: value,
      remoteValue: current,
      shadowValue: input.shadow?.[key],
      rule: 'fill_if_empty',
      direction: 'to_remote',
      outcome: 'to_remote',
      reason: `identity key from ${match.identifier}`,
    });
  }
}
