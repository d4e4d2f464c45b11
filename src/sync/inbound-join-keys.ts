/**
 * Which remote fields join an inbound CRM record to an existing profile (design.md §4: "the CRM
 * record id is a limit-1 identifier; email is the usual join key"). Mapping files name only fields
 * unique in the CRM as `match` keys, because those double as native upsert keys; Salesforce `Email`
 * and Pipedrive `email` are not unique, so a Contact or person already in the CRM would otherwise
 * never meet the profile that has its email and get a second profile. The engine therefore joins on
 * the match keys and then on the mapping's inbound-only `join` keys — by default, on person
 * mappings, the field mapped to the `email` trait.
 */
import type { SyncObjectMapping } from './sync-types.ts';

/** Profile traits whose remote value joins by default: identifiers the registry keeps unique per profile. */
const DEFAULT_JOIN_TRAITS: ReadonlySet<string> = new Set(['email']);

/** A join key: the remote field and the profile identifier type whose value it holds. */
export interface JoinKey {
  remote: string;
  identifier: string;
}

/** The mapping's inbound-only join keys: its `join` list, else the default (email on person mappings). */
export function joinKeysOf(mapping: SyncObjectMapping): JoinKey[] {
  if (mapping.join !== undefined) return mapping.join;
  if (mapping.profileKind !== 'person') return [];
  return mapping.fields
    .filter((f) => f.toProfile && DEFAULT_JOIN_TRAITS.has(f.profileKey))
    .map((f) => ({ remote: f.remoteField, identifier: f.profileKey }));
}

/**
 * Every key that joins an inbound record to a profile, in order: the mapping's `match` keys, then
 * its join keys (duplicates of a match key's field or identifier left out). `profile_id` keys point
 * at a crmhub profile id directly; the rest are identifiers for identity resolution.
 */
export function inboundJoinKeys(mapping: SyncObjectMapping): JoinKey[] {
  const out: JoinKey[] = mapping.match.map((m) => ({ remote: m.remote, identifier: m.identifier }));
  for (const key of joinKeysOf(mapping)) {
    if (out.some((k) => k.remote === key.remote || k.identifier === key.identifier)) continue;
    out.push(key);
  }
  return out;
}
