/**
 * Moving values through a compiled mapping: profile traits → CRM field values (`toRemote`) and
 * CRM field values → profile traits (`toProfile`), applying each field's transforms for that
 * direction. Fields whose value is absent, dropped, or invalid are left out (see `fieldToRemote`
 * and `fieldToProfile` for the reason).
 */
import type { FieldValues, JsonValue } from '../core/types.ts';
import type { CompiledField, CompiledMapping, RemoteKeyResolver } from './compile-mapping.ts';
import { verbatimKey } from './compile-mapping.ts';
import type { TransformResult } from './transforms.ts';
import { applyTransforms } from './transforms.ts';

/** Whether values of this field go out to the CRM. */
export function sendsToRemote(field: CompiledField): boolean {
  return field.direction === 'both' || field.direction === 'to_remote';
}

/** Whether values of this field come back to the profile. */
export function sendsToProfile(field: CompiledField): boolean {
  return field.profile !== undefined && (field.direction === 'both' || field.direction === 'to_profile');
}

/** Profile value → remote value for one field (ignores direction). `undefined` input = trait absent. */
export function fieldToRemote(
  field: CompiledField,
  value: JsonValue | undefined,
): TransformResult | undefined {
  const hasStatic = field.toRemote.some((t) => typeof t !== 'string' && 'static' in t);
  if (value === undefined && !hasStatic) return undefined;
  return applyTransforms(field.toRemote, value ?? null);
}

/** Remote value → profile value for one field (ignores direction). `undefined` input = not read. */
export function fieldToProfile(
  field: CompiledField,
  value: JsonValue | undefined,
): TransformResult | undefined {
  if (value === undefined) return undefined;
  return applyTransforms(field.toProfile, value);
}

/** The CRM field values for these traits: `to_remote`/`both` fields only, in vendor keys. */
export function toRemote(
  compiled: CompiledMapping,
  traits: Readonly<Record<string, JsonValue>>,
  resolveKey: RemoteKeyResolver = verbatimKey,
): FieldValues {
  const out: FieldValues = {};
  for (const field of compiled.fields) {
    if (!sendsToRemote(field)) continue;
    const r = fieldToRemote(field, field.profile === undefined ? undefined : traits[field.profile]);
    if (r?.kind === 'ok') out[resolveKey(field.remote)] = r.value;
  }
  return out;
}

/** The trait values for these CRM field values (vendor keys): `to_profile`/`both` fields only. */
export function toProfile(
  compiled: CompiledMapping,
  remoteFields: Readonly<FieldValues>,
  resolveKey: RemoteKeyResolver = verbatimKey,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const field of compiled.fields) {
    if (!sendsToProfile(field) || field.profile === undefined) continue;
    const r = fieldToProfile(field, remoteFields[resolveKey(field.remote)]);
    if (r?.kind === 'ok') out[field.profile] = r.value;
  }
  return out;
}

/** Vendor keys of every field the mapping touches (for `ReadOptions.fields`). */
export function remoteFieldKeys(
  compiled: CompiledMapping,
  resolveKey: RemoteKeyResolver = verbatimKey,
): string[] {
  return [...new Set(compiled.fields.filter((f) => f.direction !== 'none').map((f) => resolveKey(f.remote)))];
}
