/**
 * Adapts the mapping module and `planRecord` to the engine's narrow interfaces in `sync-types.ts`
 * (`SyncMappings`, `SyncObjectMapping`, `FieldPlanner`), so the engine can use the real three-way
 * planner (transform-aware comparison, echo suppression) instead of its fallback `basicMerge`.
 */
import type { JsonValue } from '../core/types.ts';
import type { CompiledMapping, RemoteKeyResolver } from '../mapping/compile-mapping.ts';
import { verbatimKey } from '../mapping/compile-mapping.ts';
import { fieldToProfile, fieldToRemote, sendsToProfile, sendsToRemote } from '../mapping/mapping-values.ts';
import type { TransformResult } from '../mapping/transforms.ts';
import { basicMerge } from './basic-merge.ts';
import { planRecord } from './planner.ts';
import type {
  FieldPlan,
  FieldPlanInput,
  FieldPlanner,
  SyncFieldMapping,
  SyncMappings,
  SyncObjectMapping,
} from './sync-types.ts';

const sources = new WeakMap<
  SyncObjectMapping,
  { compiled: CompiledMapping; resolveKey: RemoteKeyResolver }
>();

function okOrUndefined(r: TransformResult | undefined): JsonValue | undefined {
  return r?.kind === 'ok' ? r.value : undefined;
}

/** The engine's view of a compiled mapping. `resolveKey` maps Pipedrive field names to hash keys. */
export function toSyncObjectMapping(
  compiled: CompiledMapping,
  resolveKey: RemoteKeyResolver = verbatimKey,
): SyncObjectMapping {
  const fields: SyncFieldMapping[] = [];
  for (const f of compiled.fields) {
    // Static-only fields have no profile key; the planner still handles them from the compiled form.
    if (f.profile === undefined) continue;
    fields.push({
      profileKey: f.profile,
      remoteField: resolveKey(f.remote),
      toProfile: sendsToProfile(f),
      toRemote: sendsToRemote(f),
      rule: f.conflict,
      onEmpty: f.onEmpty,
      required: f.required,
      toRemoteValue: (value) => okOrUndefined(fieldToRemote(f, value)),
      toProfileValue: (value) => okOrUndefined(fieldToProfile(f, value)),
    });
  }
  const mapping: SyncObjectMapping = {
    connector: compiled.connector,
    object: compiled.object,
    profileKind: compiled.profileKind,
    version: compiled.hash,
    tieBreaker: compiled.fields[0]?.tieBreaker ?? 'profile',
    fields,
    match: compiled.identity.match.map((m) => ({ remote: resolveKey(m.remote), identifier: m.identifier })),
    onNoMatch: compiled.identity.onNoMatch,
  };
  if (compiled.identity.join !== undefined) mapping.join = compiled.identity.join.map((m) => ({ remote: resolveKey(m.remote), identifier: m.identifier }));
  sources.set(mapping, { compiled, resolveKey });
  return mapping;
}

/**
 * The three-way planner as the engine's `FieldPlanner`. Mappings not made by `toSyncObjectMapping`
 * (hand-built in engine tests) fall back to the engine's `basicMerge`.
 */
export const threeWayPlanner: FieldPlanner = (input: FieldPlanInput): FieldPlan => {
  const source = sources.get(input.mapping);
  if (!source) return basicMerge(input);
  const plan = planRecord({
    mapping: source.compiled,
    traits: input.profile,
    ...(input.remote ? { remote: input.remote } : {}),
    shadow: input.shadow,
    resolveKey: source.resolveKey,
  });
  return {
    toProfile: plan.traitWrites.map(({ key, value, changedAt }) => ({ key, value, changedAt })),
    toRemote: plan.remoteDiff,
    conflicts: plan.conflicts.map((c) => ({
      field: c.key,
      profileValue: c.profileValue ?? null,
      remoteValue: c.remoteValue ?? null,
      baseValue: c.shadowValue ?? null,
      rule: c.rule,
      resolution: c.winner !== 'none' ? c.winner : c.rule === 'review' ? 'review' : 'kept',
    })),
  };
};

/** A live view of compiled mappings (e.g. a `MappingRegistry`) as the engine's `SyncMappings`. */
export function syncMappingsFrom(
  source: { all(): CompiledMapping[] },
  resolverFor: (connector: string, object: string) => RemoteKeyResolver = () => verbatimKey,
): SyncMappings {
  // Converted once per mapping version; a hot reload (new hash) converts again.
  const cache = new Map<string, SyncObjectMapping>();
  const convert = (c: CompiledMapping): SyncObjectMapping => {
    const key = `${c.connector}/${c.object}/${c.hash}`;
    let mapping = cache.get(key);
    if (!mapping) {
      mapping = toSyncObjectMapping(c, resolverFor(c.connector, c.object));
      cache.set(key, mapping);
    }
    return mapping;
  };
  return {
    list: () => source.all().map(convert),
    get: (connector, object) => {
      const c = source.all().find((m) => m.connector === connector && m.object === object);
      return c ? convert(c) : undefined;
    },
  };
}
