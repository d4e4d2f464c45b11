import { parse } from 'yaml';
import type { CompiledMapping } from '../../src/mapping/compile-mapping.ts';
import { compileMapping } from '../../src/mapping/compile-mapping.ts';
import { mappingSchema } from '../../src/mapping/mapping-schema.ts';

/** Compiles a mapping from YAML text without the CRM catalogue (planner tests use made-up fields). */
export function mappingFrom(yaml: string): CompiledMapping {
  return compileMapping(mappingSchema.parse(parse(yaml)));
}

export const T0 = '2026-11-01T00:00:00.000Z';
export const T1 = '2026-11-02T00:00:00.000Z';
export const T2 = '2026-11-03T00:00:00.000Z';
export const T3 = '2026-11-04T00:00:00.000Z';

/** Every rule and direction once, with transforms that need normalising. */
export const MIXED = mappingFrom(`
connector: hubspot
object: contacts
profile_kind: person
identity:
  match:
    - { remote: crmhub_id, identifier: profile_id }
defaults: { tie_breaker: profile }
fields:
  - { profile: email, remote: email, conflict: latest_wins, transforms: { to_remote: [email], to_profile: [email] } }
  - { profile: score, remote: score, direction: to_remote, conflict: prefer_profile, transforms: { to_remote: [number] } }
  - { profile: phone, remote: phone, conflict: prefer_remote_unless_empty }
  - { profile: name, remote: name, conflict: prefer_profile_unless_empty, on_empty: clear }
  - { profile: stage, remote: stage, direction: to_profile }
  - { profile: title, remote: title, conflict: fill_if_empty }
  - { profile: notes, remote: notes, conflict: review }
  - { profile: city, remote: city, conflict: prefer_remote, on_empty: clear }
  - profile: plan
    remote: plan
    direction: to_remote
    transforms: { to_remote: [{ enum: { map: { pro: PRO, free: FREE }, unknown: drop } }] }
  - { profile: amount, remote: amount, transforms: { to_remote: [number], to_profile: [number] } }
  - profile: tags
    remote: tags
    transforms: { to_remote: [{ join: { separator: ';' } }], to_profile: [{ split: { separator: ';' } }] }
`);
