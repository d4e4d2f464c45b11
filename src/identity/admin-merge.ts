import { CrmhubError } from '../connector-kit/errors.ts';
import type { ProfileId } from '../core/types.ts';
import type { ProfileStore } from '../store/port.ts';

export interface AdminMergeResult {
  fromId: ProfileId;
  intoId: ProfileId;
  /** Identifier types the merged profile now holds more values of than the registry's limit. */
  overLimit: string[];
}

/**
 * A privileged, audited merge (design.md §5): `fromId` into `intoId` even when automatic rules
 * refuse it (two user_ids that are really one person). The merge row records `admin:<actor>` as
 * trigger and the admin's `reason`. Old ids are accepted and resolved to their live profiles.
 *
 * @throws CrmhubError `conflict`: `PROFILE_NOT_FOUND`, `MERGE_SAME_PROFILE` (already one profile),
 *   `MERGE_KIND_MISMATCH` (person into account or back).
 */
export async function adminMerge(
  store: ProfileStore,
  fromId: string,
  intoId: string,
  actor: string,
  reason: string,
  at: string = new Date().toISOString(),
  limits: (type: string) => number | undefined = () => undefined,
): Promise<AdminMergeResult> {
  return store.transaction(async (tx) => {
    const from = await tx.resolveProfile(fromId);
    const into = await tx.resolveProfile(intoId);
    if (from === null || into === null) {
      throw new CrmhubError('conflict', 'profile not found', { code: 'PROFILE_NOT_FOUND', context: { record: from === null ? fromId : intoId } });
    }
    if (from.id === into.id) {
      throw new CrmhubError('conflict', 'both ids already resolve to one profile', { code: 'MERGE_SAME_PROFILE', context: { record: into.id } });
    }
    if (from.kind !== into.kind) {
      throw new CrmhubError('conflict', `cannot merge a ${from.kind} into a ${into.kind}`, { code: 'MERGE_KIND_MISMATCH', context: { record: into.id } });
    }
    await tx.mergeProfiles({ fromId: from.id, intoId: into.id, reason, trigger: `admin:${actor}`, at });
    const counts = new Map<string, number>();
    for (const id of await tx.listIdentifiers(into.id)) counts.set(id.type, (counts.get(id.type) ?? 0) + 1);
    const overLimit = [...counts].filter(([type, n]) => n > (limits(type) ?? Infinity)).map(([type]) => type);
    return { fromId: from.id, intoId: into.id, overLimit };
  });
}
