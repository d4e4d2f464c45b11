import type { JsonValue, ProfileId } from '../core/types.ts';
import type { StoreTx, TraitRow, TraitWrite } from '../store/port.ts';

export interface TraitProvenance {
  /** Who says so: `event`, `hubspot`, `salesforce`, `pipedrive`, `admin`, `computed`, … */
  source: string;
  /** When the value changed at that source (ISO-8601), not when we heard of it. */
  changedAt: string;
}

export interface WriteTraitsResult {
  /** Rows as stored after the write (deleted keys omitted). */
  written: TraitRow[];
  /** Keys deleted by a `null`. */
  deleted: string[];
  /** Keys left alone: same value already stored, or the stored value changed later (stale write). */
  skipped: string[];
}

/** Longest trait key accepted (characters). */
const MAX_KEY_LENGTH = 255;

/**
 * Writes traits with provenance and null-deletes semantics (design.md §5):
 * - `null` deletes the trait; `undefined` means "not mentioned" and is ignored;
 * - a write whose `changedAt` is older than the stored trait's is stale and skipped, so events and
 *   webhooks arriving out of order never roll a value back (equal times: the write applies);
 * - writing the value already stored is skipped (no version bump, provenance kept), so replays and
 *   echoes do not look like changes.
 */
export async function writeTraits(
  tx: StoreTx,
  profileId: ProfileId,
  traits: Readonly<Record<string, JsonValue | undefined>>,
  provenance: TraitProvenance,
): Promise<WriteTraitsResult> {
  const current = new Map((await tx.getTraits(profileId)).map((t) => [t.key, t]));
  const at = Date.parse(provenance.changedAt);
  const writes: TraitWrite[] = [];
  const deleted: string[] = [];
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(traits)) {
    if (value === undefined) continue;
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
      skipped.push(key);
      continue;
    }
    const stored = current.get(key);
    if (stored !== undefined && Date.parse(stored.changedAt) > at) {
      skipped.push(key);
      continue;
    }
    if (value === null) {
      if (stored === undefined) continue;
      deleted.push(key);
    } else if (stored !== undefined && jsonEqual(stored.value, value)) {
      skipped.push(key);
      continue;
    }
    writes.push({ key, value, source: provenance.source, changedAt: provenance.changedAt });
  }
  const written = writes.length === 0 ? [] : await tx.writeTraits(profileId, writes);
  if (writes.length > 0) await tx.touchProfile(profileId, new Date().toISOString());
  return { written, deleted, skipped };
}

/** Structural equality of JSON values (object key order ignored). */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i] as JsonValue));
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => k in b && jsonEqual(a[k] as JsonValue, b[k] as JsonValue));
}
