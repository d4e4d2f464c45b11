/**
 * The narrow interfaces the sync engine codes against (issue 5): the compiled mapping of one
 * connector object, the per-field planner (the three-way merge, owned by `planner.ts`), and the
 * identity resolver. Adapters from `src/mapping` and `src/identity` produce these shapes, so the
 * engine never depends on YAML or on the resolver's internals.
 */
import type { FieldValues, IdentifierInput, JsonValue, ProfileId, ProfileKind } from '../core/types.ts';
import type { StoreTx } from '../store/port.ts';

export type ConflictRule =
  | 'latest_wins'
  | 'prefer_profile'
  | 'prefer_remote'
  | 'prefer_profile_unless_empty'
  | 'prefer_remote_unless_empty'
  | 'fill_if_empty'
  | 'review';

/** One mapped field, compiled (defaults applied, transforms bound). */
export interface SyncFieldMapping {
  /** Profile trait key (`email`, `plan`). */
  profileKey: string;
  /** Remote field verbatim (for Pipedrive custom fields, the resolved 40-char key). */
  remoteField: string;
  /** CRM → profile values flow. */
  toProfile: boolean;
  /** Profile → CRM values flow. */
  toRemote: boolean;
  rule: ConflictRule;
  /** `ignore`: an empty value never blanks the other side (default); `clear`: empties propagate. */
  onEmpty: 'ignore' | 'clear';
  /** Profile value → remote value; `undefined` drops the field. Identity when absent. */
  toRemoteValue?(value: JsonValue): JsonValue | undefined;
  /** Remote value → profile value; `undefined` drops the field. Identity when absent. */
  toProfileValue?(value: JsonValue): JsonValue | undefined;
  /** The CRM needs this field to create a record; profiles without a value create none. Default false. */
  required?: boolean;
}

/** A compiled mapping of one connector object. */
export interface SyncObjectMapping {
  connector: string;
  object: string;
  profileKind: ProfileKind;
  /** Content hash of the mapping file, recorded with every run. */
  version: string;
  /** Who wins a `latest_wins` tie. */
  tieBreaker: 'profile' | 'remote';
  fields: SyncFieldMapping[];
  /**
   * Identity match keys, in order: the remote field and the profile identifier type whose value it
   * holds (`profile_id` = the crmhub profile id, e.g. `crmhub_id`). The first with a value serves
   * as the native upsert key when the profile has no linked record yet.
   */
  match: { remote: string; identifier: string }[];
  /**
   * Inbound-only join keys: a CRM record coming in joins the profile that holds the identifier its
   * `remote` field names, after the `match` keys. Unlike match keys they need not be unique in the
   * CRM and never serve as upsert keys (Salesforce `Email`, Pipedrive `email`). Absent: the engine's
   * default, `inboundJoinKeys()` — on person mappings, each `to_profile` field feeding the `email`
   * trait. `[]` joins on the match keys only.
   */
  join?: { remote: string; identifier: string }[];
  /** When the profile has no linked record: create one (native upsert) or skip. Default create. */
  onNoMatch: 'create' | 'skip';
}

/** Where the engine reads compiled mappings; reloads replace what `list()` returns. */
export interface SyncMappings {
  list(): SyncObjectMapping[];
  get(connector: string, object: string): SyncObjectMapping | undefined;
}

/** A profile trait as the planner sees it. */
export interface PlannerTrait {
  value: JsonValue;
  changedAt: string;
  source: string;
}

/** Input of the per-field three-way merge for one record. */
export interface FieldPlanInput {
  mapping: SyncObjectMapping;
  /** The merge base in remote field names; null when the record was never synced. */
  shadow: FieldValues | null;
  /** The CRM side now (remote field names), with its change times. */
  remote: { fields: FieldValues; modifiedAt: string; fieldChangedAt?: Record<string, string> } | null;
  /** The profile's traits by key. */
  profile: Record<string, PlannerTrait>;
}

export interface PlannedConflict {
  field: string;
  profileValue: JsonValue;
  remoteValue: JsonValue;
  baseValue: JsonValue;
  rule: ConflictRule;
  /** `profile` | `remote` | `review` | `kept` (neither applied). */
  resolution: string;
}

/** What to do for one record. */
export interface FieldPlan {
  /** Trait writes (profile keys) where the CRM side wins or alone changed. */
  toProfile: { key: string; value: JsonValue; changedAt: string }[];
  /** Values to write to the CRM (remote names) where the profile side wins or alone changed. */
  toRemote: FieldValues;
  conflicts: PlannedConflict[];
}

/** The planner: a pure function (owned by `planner.ts`; `basic-merge.ts` is the engine's fallback). */
export type FieldPlanner = (input: FieldPlanInput) => FieldPlan;

/** Identity resolution as the engine needs it (src/identity's `IdentityResolver.resolve`). */
export interface IdentityPort {
  resolve(
    tx: StoreTx,
    input: { kind: ProfileKind; identifiers: IdentifierInput[]; at: string; trigger: string; source?: string },
  ): Promise<{ profileId: ProfileId }>;
}
