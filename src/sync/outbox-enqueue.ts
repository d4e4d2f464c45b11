/**
 * Writes outbox rows for profile changes, inside the caller's transaction (design.md §3: an outbox
 * row commits with the profile change that caused it). Rows carry the `to_remote` values as they
 * were; the worker recomputes them from the profile at send time, so a re-delivered old row can
 * never write a stale value.
 */
import type { FieldValues, ProfileId, ProfileKind } from '../core/types.ts';
import type { OutboxInsert, StoreTx } from '../store/port.ts';
import { profileToRemote } from './basic-merge.ts';
import type { SyncMappings } from './sync-types.ts';

export interface EnqueueTarget {
  mappings: SyncMappings;
  /** Connectors that are configured; mappings of others are ignored. */
  enabled: ReadonlySet<string>;
}

/**
 * Enqueues one row per mapped connector object of the profile's kind whose `to_remote` fields cover
 * `changedKeys` (all `to_remote` fields when `changedKeys` is null), except `exclude`.
 */
export async function enqueueProfileChanges(
  tx: StoreTx,
  target: EnqueueTarget,
  profileId: ProfileId,
  kind: ProfileKind,
  changedKeys: ReadonlySet<string> | null,
  exclude: { connector: string; object: string } | null,
): Promise<number> {
  const traits = await tx.getTraits(profileId);
  const byKey = new Map(traits.map((t) => [t.key, t.value]));
  const rows: OutboxInsert[] = [];
  for (const m of target.mappings.list()) {
    if (m.profileKind !== kind || !target.enabled.has(m.connector)) continue;
    if (exclude && exclude.connector === m.connector && exclude.object === m.object) continue;
    const fields: FieldValues = {};
    for (const f of m.fields) {
      if (!f.toRemote || (changedKeys !== null && !changedKeys.has(f.profileKey))) continue;
      fields[f.remoteField] = profileToRemote(f, byKey.get(f.profileKey)) ?? null;
    }
    if (Object.keys(fields).length === 0) continue;
    rows.push({ connector: m.connector, object: m.object, profileId, op: 'upsert', fields });
  }
  if (rows.length > 0) await tx.enqueueOutbox(rows);
  return rows.length;
}
