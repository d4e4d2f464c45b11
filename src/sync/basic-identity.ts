/**
 * The engine's fallback identity resolution, used until src/identity's `IdentityResolver` is wired
 * and by tests: the first identifier that is known decides the profile; none known → create one;
 * every given identifier is then attached (an identifier owned by another profile is left alone —
 * the real resolver logs it as a possible duplicate).
 */
import type { IdentityPort } from './sync-types.ts';

export const basicIdentity: IdentityPort = {
  async resolve(tx, { kind, identifiers, at, source }) {
    const keys = identifiers.filter((i) => i.value !== '').map((i) => ({ type: i.type, value: i.type === 'email' ? i.value.trim().toLowerCase() : i.value }));
    const found = keys.length === 0 ? [] : await tx.findIdentifiers(keys);
    let profileId = null;
    for (const key of keys) {
      const hit = found.find((f) => f.type === key.type && f.value === key.value);
      if (!hit) continue;
      const live = await tx.resolveProfile(hit.profileId);
      if (live) {
        profileId = live.id;
        break;
      }
    }
    if (profileId === null) profileId = (await tx.createProfile(kind, at)).id;
    for (const key of keys) {
      const owner = found.find((f) => f.type === key.type && f.value === key.value);
      if (owner && owner.profileId !== profileId) continue;
      await tx.addIdentifier({ type: key.type, value: key.value, profileId, source: source ?? 'sync', at });
    }
    return { profileId };
  },
};
