/**
 * The engine's fallback per-field three-way merge (design.md §4), used until `planner.ts` is wired
 * and by tests. Base = shadow, ours = the profile value mapped to_remote, theirs = the CRM value.
 * Only one side differs from base → take it; both differ and agree → nothing to do; both differ and
 * disagree → the field's conflict rule decides and a conflict is reported.
 */
import type { JsonValue } from '../core/types.ts';
import type { ConflictRule, FieldPlan, FieldPlanInput, SyncFieldMapping } from './sync-types.ts';

/** Empty for `on_empty`: null, absent, blank string, empty array. */
export function isEmptyValue(value: JsonValue | undefined): boolean {
  return value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0);
}

/** Value equality for merge purposes: JSON-equal, with every empty value equal to every other. */
export function sameValue(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (isEmptyValue(a) && isEmptyValue(b)) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The profile value of a field as the CRM would hold it. */
export function profileToRemote(field: SyncFieldMapping, value: JsonValue | undefined): JsonValue | undefined {
  if (value === undefined) return undefined;
  return field.toRemoteValue ? field.toRemoteValue(value) : value;
}

function remoteToProfile(field: SyncFieldMapping, value: JsonValue | undefined): JsonValue | undefined {
  if (value === undefined) return undefined;
  return field.toProfileValue ? field.toProfileValue(value) : value;
}

type Winner = 'profile' | 'remote' | 'review' | 'kept';

function decide(rule: ConflictRule, ours: JsonValue | undefined, theirs: JsonValue | undefined, oursAt: string, theirsAt: string, tie: 'profile' | 'remote'): Winner {
  switch (rule) {
    case 'prefer_profile':
      return 'profile';
    case 'prefer_remote':
      return 'remote';
    case 'prefer_profile_unless_empty':
      return isEmptyValue(ours) ? 'remote' : 'profile';
    case 'prefer_remote_unless_empty':
      return isEmptyValue(theirs) ? 'profile' : 'remote';
    case 'fill_if_empty':
      if (isEmptyValue(ours)) return 'remote';
      if (isEmptyValue(theirs)) return 'profile';
      return 'kept';
    case 'review':
      return 'review';
    case 'latest_wins': {
      const a = Date.parse(oursAt);
      const b = Date.parse(theirsAt);
      if (a === b || Number.isNaN(a) || Number.isNaN(b)) return tie;
      return a > b ? 'profile' : 'remote';
    }
  }
}

export function basicMerge(input: FieldPlanInput): FieldPlan {
  const plan: FieldPlan = { toProfile: [], toRemote: {}, conflicts: [] };
  const { mapping, shadow, remote, profile } = input;
  for (const field of mapping.fields) {
    if (!field.toProfile && !field.toRemote) continue;
    const trait = profile[field.profileKey];
    const base = shadow?.[field.remoteField];
    const ours = profileToRemote(field, trait?.value);
    // A field the CRM did not return is unchanged there.
    const theirs = remote && field.remoteField in remote.fields ? remote.fields[field.remoteField] : base;
    const theirsAt = remote?.fieldChangedAt?.[field.remoteField] ?? remote?.modifiedAt ?? '';
    const profileChanged = field.toRemote && !sameValue(ours, base);
    const remoteChanged = field.toProfile && !sameValue(theirs, base);
    let winner: Winner | null = null;
    if (remoteChanged && !profileChanged) winner = 'remote';
    else if (profileChanged && !remoteChanged) winner = 'profile';
    else if (profileChanged && remoteChanged && !sameValue(ours, theirs)) {
      winner = decide(field.rule, ours, theirs, trait?.changedAt ?? '', theirsAt, mapping.tieBreaker);
      plan.conflicts.push({
        field: field.remoteField,
        profileValue: ours ?? null,
        remoteValue: theirs ?? null,
        baseValue: base ?? null,
        rule: field.rule,
        resolution: winner,
      });
    }
    if (winner === 'remote' && field.toProfile) {
      if (isEmptyValue(theirs) && field.onEmpty === 'ignore') continue;
      const value = remoteToProfile(field, theirs);
      if (value === undefined) continue;
      plan.toProfile.push({ key: field.profileKey, value: isEmptyValue(value) ? null : value, changedAt: theirsAt });
    } else if (winner === 'profile' && field.toRemote) {
      if (isEmptyValue(ours) && field.onEmpty === 'ignore') continue;
      plan.toRemote[field.remoteField] = ours ?? null;
    }
  }
  return plan;
}
