import type { Profile, Trait } from '../core/types.ts';
import { parseIdentifierArg } from '../core/types.ts';
import type { ProfileRow, StoreTx } from '../store/port.ts';
import { IdentifierRegistry } from './identifier-registry.ts';

const defaultRegistry = new IdentifierRegistry();

/**
 * The profile read model: the Profile JSON of design.md §6 for a profile id (old ids of merged
 * profiles resolve to the survivor) or a `TYPE:VALUE` identifier (normalised by the registry, so
 * `email: Ada@Example.com ` finds `ada@example.com`). Null when nothing matches.
 *
 * Works on a transaction or on `store.read()`.
 */
export async function getProfileView(
  tx: StoreTx,
  idOrTypeValue: string,
  registry: IdentifierRegistry = defaultRegistry,
): Promise<Profile | null> {
  const profile = await findProfile(tx, idOrTypeValue.trim(), registry);
  if (profile === null) return null;
  const [identifiers, traits, mergedFrom] = await Promise.all([
    tx.listIdentifiers(profile.id),
    tx.getTraits(profile.id),
    tx.mergedFrom(profile.id),
  ]);
  const traitMap: Record<string, Trait> = {};
  for (const t of traits) traitMap[t.key] = { value: t.value, source: t.source, changedAt: t.changedAt };
  return {
    id: profile.id,
    kind: profile.kind,
    identifiers: identifiers.map((i) => ({ type: i.type, value: i.value, source: i.source })),
    traits: traitMap,
    mergedFrom,
    createdAt: profile.createdAt,
    updatedAt: profile.updatedAt,
  };
}

async function findProfile(tx: StoreTx, arg: string, registry: IdentifierRegistry): Promise<ProfileRow | null> {
  const parsed = arg.startsWith('prf_') ? null : parseIdentifierArg(arg);
  if (parsed === null) return tx.resolveProfile(arg);
  const norm = registry.normalise({ ...parsed, source: 'lookup' });
  if (!norm.ok) return null;
  const [row] = await tx.findIdentifiers([{ type: norm.value.identifier.type, value: norm.value.identifier.value }]);
  return row === undefined ? null : tx.resolveProfile(row.profileId);
}
