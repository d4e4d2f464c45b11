/**
 * Adapts src/identity's `IdentityResolver` (or anything with its `resolve` shape) to the engine's
 * narrow `IdentityPort`. Structural, so src/sync does not depend on the resolver's internals.
 */
import type { Identifier, ProfileId, ProfileKind } from '../core/types.ts';
import type { StoreTx } from '../store/port.ts';
import type { IdentityPort } from './sync-types.ts';

export interface ResolverLike {
  resolve(tx: StoreTx, input: { kind: ProfileKind; identifiers: Identifier[]; at: string; trigger: string }): Promise<{ profileId: ProfileId }>;
}

export function identityPortFrom(resolver: ResolverLike): IdentityPort {
  return {
    async resolve(tx, input) {
      const source = input.source ?? 'sync';
      const { profileId } = await resolver.resolve(tx, {
        kind: input.kind,
        identifiers: input.identifiers.map((i) => ({ type: i.type, value: i.value, source })),
        at: input.at,
        trigger: input.trigger,
      });
      return { profileId };
    },
  };
}
