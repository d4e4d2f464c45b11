/**
 * Loose value equality for the planner. CRMs hand back what we wrote in their own shape (HubSpot
 * returns every property as a string, multi-selects come back re-ordered), so values are compared
 * by meaning, not bytes — otherwise our own write would look like a remote change (an echo).
 */
import type { JsonValue } from '../core/types.ts';
import type { CompiledField } from '../mapping/compile-mapping.ts';
import { isEmptyValue } from '../mapping/transforms.ts';

const NUMERIC = /^-?\d+(\.\d+)?$/;

/** A canonical form: empties → null, numeric strings → numbers, "true"/"false" → booleans, sets sorted. */
export function canonicalValue(value: JsonValue | undefined): JsonValue {
  if (value === undefined || isEmptyValue(value)) return null;
  if (typeof value === 'string') {
    const s = value.trim();
    if (NUMERIC.test(s)) return Number(s);
    if (s === 'true' || s === 'false') return s === 'true';
    return value;
  }
  if (Array.isArray(value)) {
    return value
      .map(canonicalValue)
      .filter((v) => v !== null)
      .sort((a, b) => stableJson(a).localeCompare(stableJson(b)));
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(value).sort()) out[key] = canonicalValue(value[key]);
    return out;
  }
  return value;
}

function stableJson(value: JsonValue): string {
  return JSON.stringify(value);
}

/** Whether two values mean the same (after `canonicalValue`). */
export function sameValue(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return stableJson(canonicalValue(a)) === stableJson(canonicalValue(b));
}

/**
 * Multi-value fields written as a joined string (HubSpot checkboxes, Salesforce multi-select
 * picklists) compare as sets: CRMs return the values in their option order, not ours, and a mere
 * re-ordering must not look like a change (or every sync would write it again).
 */
export function asSet(field: CompiledField, value: JsonValue | undefined): JsonValue | undefined {
  const last = field.toRemote[field.toRemote.length - 1];
  if (typeof value !== 'string' || last === undefined || typeof last === 'string' || !('join' in last))
    return value;
  return value
    .split(last.join.separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
