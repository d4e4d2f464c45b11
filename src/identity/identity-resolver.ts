import type { Identifier, ProfileId, ProfileKind } from '../core/types.ts';
import type { IdentifierRow, ProfileRow, ProfileStore, StoreTx } from '../store/port.ts';
import { adminMerge, type AdminMergeResult } from './admin-merge.ts';
import { IdentifierRegistry, type IdentifierTypeSpec, type NormalisedIdentifier } from './identifier-registry.ts';
import { type IdentityIssue, identityIssue } from './identity-issue.ts';

export interface ResolveInput {
  kind: ProfileKind;
  /** Raw identifiers from the message or CRM record; normalised here. */
  identifiers: Identifier[];
  /** Event time (ISO-8601): first/last seen, merge time. */
  at: string;
  /** What caused this: a messageId, a webhook delivery id, `sync:<run>`; written on merge rows. */
  trigger: string;
}

export interface ResolveResult {
  /** The live profile the message belongs to. */
  profileId: ProfileId;
  /** True when no identifier matched (or none was usable) and a profile was created. */
  created: boolean;
  /** Profiles merged into `profileId` by this call. */
  mergedFrom: ProfileId[];
  issues: IdentityIssue[];
}

export interface IdentityResolverOptions {
  registry?: IdentifierRegistry;
  /** Most profiles one profile may absorb by automatic merges (transitively). Default 50. */
  maxMergesPerProfile?: number;
  /** Most identifiers one profile may hold. Default 300. */
  maxIdentifiersPerProfile?: number;
  /** `lastSeen` of an identifier is bumped at most this often, to spare a write per event (ms). Default 60,000. */
  lastSeenResolutionMs?: number;
}

interface Candidate {
  norm: NormalisedIdentifier;
  /** The row when (type, value) is already stored. */
  row: IdentifierRow | undefined;
}

/** Type → values held by the group being assembled (survivor + profiles to merge + new identifiers). */
type GroupValues = Map<string, Set<string>>;

const key = (type: string, value: string): string => `${type}\u0000${value}`;

/**
 * The identity resolver of design.md §5. Per message, in one store transaction:
 *
 * 1. identifiers are normalised by the registry (blocked/invalid ones dropped with an issue);
 * 2. they are looked up, strongest type first (priority);
 * 3. a group is assembled greedily: each matched profile joins it when the union of identifiers
 *    stays within every `reject` type's limit (so two different user_ids, or two different CRM
 *    record ids of one object, never end up together); a profile that cannot join is kept apart and
 *    written as a possible duplicate. Unmatched identifiers join when they fit the same way;
 * 4. the first profile that joined survives (the one matched by the strongest identifier); the
 *    others are merged into it (merge rows carry `trigger`); with none, a profile is created;
 * 5. new identifiers are attached (anonymous ids beyond their limit evict the least recently seen).
 *
 * Caps: a survivor that has absorbed `maxMergesPerProfile` profiles, or would exceed
 * `maxIdentifiersPerProfile`, merges no more (possible duplicate + issue); the message still
 * resolves to a profile, so no event is lost.
 */
export class IdentityResolver {
  readonly registry: IdentifierRegistry;
  private readonly maxMerges: number;
  private readonly maxIdentifiers: number;
  private readonly lastSeenMs: number;

  constructor(options: IdentityResolverOptions = {}) {
    this.registry = options.registry ?? new IdentifierRegistry();
    this.maxMerges = options.maxMergesPerProfile ?? 50;
    this.maxIdentifiers = options.maxIdentifiersPerProfile ?? 300;
    this.lastSeenMs = options.lastSeenResolutionMs ?? 60_000;
  }

  /** Normalises and de-duplicates, strongest first; issues for what is dropped. */
  normalise(kind: ProfileKind, identifiers: readonly Identifier[], issues: IdentityIssue[]): NormalisedIdentifier[] {
    const out: NormalisedIdentifier[] = [];
    const seen = new Set<string>();
    for (const raw of identifiers) {
      const res = this.registry.normalise(raw);
      if (!res.ok) {
        issues.push(res.issue);
        continue;
      }
      const { identifier, spec } = res.value;
      if (!spec.kinds.includes(kind)) {
        issues.push(identityIssue('kind_mismatch', `${identifier.type} does not identify a ${kind}`, identifier.type, identifier.value));
        continue;
      }
      const k = key(identifier.type, identifier.value);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(res.value);
    }
    // Stable sort: equal priorities keep message order.
    return out.sort((a, b) => b.spec.priority - a.spec.priority);
  }

  /**
   * The (type, value) keys {@link resolve} would look up for these identifiers (normalised; blocked
   * or invalid ones left out). Ingest looks a whole group commit's keys up in one query through a
   * per-transaction cache before resolving its events one by one.
   */
  lookupKeys(kind: ProfileKind, identifiers: readonly Identifier[]): { type: string; value: string }[] {
    return this.normalise(kind, identifiers, []).map((n) => ({ type: n.identifier.type, value: n.identifier.value }));
  }

  async resolve(tx: StoreTx, input: ResolveInput): Promise<ResolveResult> {
    const issues: IdentityIssue[] = [];
    const ids = this.normalise(input.kind, input.identifiers, issues);
    const rows = await tx.findIdentifiers(ids.map((n) => ({ type: n.identifier.type, value: n.identifier.value })));
    const byKey = new Map(rows.map((r) => [key(r.type, r.value), r]));
    const candidates: Candidate[] = ids.map((norm) => ({ norm, row: byKey.get(key(norm.identifier.type, norm.identifier.value)) }));

    const group: GroupValues = new Map();
    let groupSize = 0;
    let survivor: ProfileRow | null = null;
    /** Profiles the survivor has absorbed so far (counted lazily: only merges need it). */
    let survivorMerges: number | null = null;
    const toMerge: { profile: ProfileRow; link: Identifier }[] = [];
    const toAttach: NormalisedIdentifier[] = [];
    const toBump: IdentifierRow[] = [];
    const apart: { profile: ProfileRow; reason: string }[] = [];
    const profiles = new Map<string, ProfileRow | null>();
    const inGroup = new Set<string>();
    const kept = new Set<string>();

    for (const { norm, row } of candidates) {
      const { identifier, spec } = norm;
      if (row === undefined) {
        const clash = this.clash(group, [identifier]);
        if (clash !== null) {
          issues.push(identityIssue('limit_reached', `${identifier.type}: profile already holds ${spec.limit}`, identifier.type, identifier.value));
        } else if (groupSize + 1 > this.maxIdentifiers) {
          issues.push(identityIssue('identifier_cap', `profile holds ${this.maxIdentifiers} identifiers`, identifier.type, identifier.value));
        } else {
          addValues(group, [identifier]);
          groupSize += 1;
          toAttach.push(norm);
        }
        continue;
      }
      if (inGroup.has(row.profileId)) {
        toBump.push(row);
        continue;
      }
      if (kept.has(row.profileId)) continue;
      let profile = profiles.get(row.profileId);
      if (profile === undefined) {
        profile = await tx.resolveProfile(row.profileId);
        profiles.set(row.profileId, profile);
      }
      if (profile === null) continue; // dangling row; cannot happen with merges moving identifiers
      if (profile.kind !== input.kind) {
        issues.push(identityIssue('kind_mismatch', `${identifier.type} belongs to a ${profile.kind} profile`, identifier.type, identifier.value));
        kept.add(profile.id);
        continue;
      }
      if (!spec.unique) {
        // Phone-like types only suggest: the profile holding it is reported, never joined.
        issues.push(identityIssue('not_joining', `${identifier.type} is shared with another profile; not used to join`, identifier.type, identifier.value));
        apart.push({ profile, reason: `${identifier.type}:${identifier.value} shared (non-unique type)` });
        kept.add(profile.id);
        continue;
      }
      // A lone identifier that matched needs no clash check (nothing else can join): skip the read.
      const held = candidates.length === 1 ? [row] : await tx.listIdentifiers(profile.id);
      const clash = this.clash(group, held);
      if (clash !== null) {
        issues.push(identityIssue('merge_refused', `${identifier.type} links profiles holding different ${clash}`, identifier.type, identifier.value));
        apart.push({ profile, reason: `${identifier.type}:${identifier.value} shared by two different ${clash}` });
        kept.add(profile.id);
        continue;
      }
      if (survivor !== null) {
        survivorMerges ??= await tx.countMerges(survivor.id);
        const absorbed = 1 + (await tx.countMerges(profile.id));
        if (survivorMerges + absorbed > this.maxMerges) {
          issues.push(identityIssue('merge_cap', `profile has absorbed ${survivorMerges} profiles (cap ${this.maxMerges})`, identifier.type, identifier.value));
          apart.push({ profile, reason: `${identifier.type}:${identifier.value} shared; merge cap reached` });
          kept.add(profile.id);
          continue;
        }
        if (groupSize + held.length > this.maxIdentifiers) {
          issues.push(identityIssue('identifier_cap', `merged profile would hold over ${this.maxIdentifiers} identifiers`, identifier.type, identifier.value));
          apart.push({ profile, reason: `${identifier.type}:${identifier.value} shared; identifier cap reached` });
          kept.add(profile.id);
          continue;
        }
        survivorMerges += absorbed;
        toMerge.push({ profile, link: identifier });
      } else {
        survivor = profile;
      }
      addValues(group, held);
      groupSize += held.length;
      inGroup.add(profile.id);
      toBump.push(row);
    }

    let created = false;
    if (survivor === null) {
      survivor = await tx.createProfile(input.kind, input.at);
      created = true;
      if (ids.length === 0) issues.push(identityIssue('no_identifiers', 'no usable identifier; a new profile holds the event'));
    }
    const survivorId = survivor.id;
    const mergedFrom: ProfileId[] = [];
    for (const { profile, link } of toMerge) {
      await tx.mergeProfiles({
        fromId: profile.id,
        intoId: survivorId,
        reason: `linked by ${link.type}:${link.value}`,
        trigger: input.trigger,
        at: input.at,
      });
      mergedFrom.push(profile.id);
    }
    let changed = created || mergedFrom.length > 0;
    if (toAttach.length > 0) {
      const held = await tx.listIdentifiers(survivorId);
      for (const { identifier, spec } of toAttach) {
        await this.makeRoom(tx, spec, held);
        await tx.addIdentifier({ type: identifier.type, value: identifier.value, profileId: survivorId, source: identifier.source, at: input.at });
        held.push({ ...identifier, profileId: survivorId, firstSeen: input.at, lastSeen: input.at });
      }
      changed = true;
    }
    // After merges too, a survivor may hold more evictable ids than allowed.
    if (mergedFrom.length > 0) await this.trimEvictable(tx, survivorId);
    const atMs = Date.parse(input.at);
    for (const row of toBump) {
      if (atMs - Date.parse(row.lastSeen) >= this.lastSeenMs) {
        await tx.addIdentifier({ type: row.type, value: row.value, profileId: survivorId, source: row.source, at: input.at });
      }
    }
    for (const { profile, reason } of apart) {
      await tx.recordPossibleDuplicate({ profileA: survivorId, profileB: profile.id, reason, at: input.at });
    }
    if (changed && !created) await tx.touchProfile(survivorId, input.at);
    return { profileId: survivorId, created, mergedFrom, issues };
  }

  /**
   * Merges `fromId` into `intoId` on an admin's say-so: limits do not apply (a person decided),
   * the merge row's trigger is `admin:<actor>`. Both ids may be old ids; they are resolved first.
   */
  adminMerge(store: ProfileStore, fromId: string, intoId: string, actor: string, reason: string, at?: string): Promise<AdminMergeResult> {
    return adminMerge(store, fromId, intoId, actor, reason, at, (type) => this.registry.get(type)?.limit);
  }

  /** The first `reject` type whose values in `group ∪ adding` would exceed its limit, else null. */
  private clash(group: GroupValues, adding: readonly { type: string; value: string }[]): string | null {
    const extra = new Map<string, Set<string>>();
    for (const id of adding) {
      const spec = this.registry.get(id.type);
      if (spec === undefined || spec.onLimit !== 'reject') continue;
      const have = group.get(id.type);
      if (have?.has(id.value) === true) continue;
      let set = extra.get(id.type);
      if (set === undefined) extra.set(id.type, (set = new Set()));
      set.add(id.value);
      if ((have?.size ?? 0) + set.size > spec.limit) return id.type;
    }
    return null;
  }

  /** Evicts the least recently seen values of an `evict_oldest` type so one more fits. */
  private async makeRoom(tx: StoreTx, spec: IdentifierTypeSpec, held: IdentifierRow[]): Promise<void> {
    if (spec.onLimit !== 'evict_oldest') return;
    const same = held.filter((h) => h.type === spec.type).sort((a, b) => (a.lastSeen < b.lastSeen ? -1 : a.lastSeen > b.lastSeen ? 1 : 0));
    while (same.length >= spec.limit) {
      const victim = same.shift();
      if (victim === undefined) break;
      await tx.removeIdentifier(victim.type, victim.value);
      held.splice(held.indexOf(victim), 1);
    }
  }

  private async trimEvictable(tx: StoreTx, profileId: ProfileId): Promise<void> {
    const held = await tx.listIdentifiers(profileId);
    for (const spec of new Set(held.map((h) => this.registry.get(h.type)))) {
      if (spec === undefined || spec.onLimit !== 'evict_oldest') continue;
      const same = held.filter((h) => h.type === spec.type).sort((a, b) => (a.lastSeen < b.lastSeen ? -1 : 1));
      for (const victim of same.slice(0, Math.max(0, same.length - spec.limit))) await tx.removeIdentifier(victim.type, victim.value);
    }
  }
}

function addValues(group: GroupValues, ids: readonly { type: string; value: string }[]): void {
  for (const id of ids) {
    let set = group.get(id.type);
    if (set === undefined) group.set(id.type, (set = new Set()));
    set.add(id.value);
  }
}
