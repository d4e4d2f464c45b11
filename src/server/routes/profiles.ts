/**
 * Profile reads (admin token): `GET /v1/profiles/:id` and `GET /v1/profiles?identifier=TYPE:VALUE`.
 * Both answer the Profile JSON of design.md §6; an id of a merged profile resolves to the survivor.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { parseIdentifierArg, type Profile } from '../../core/types.ts';
import type { StoreTx } from '../../store/port.ts';
import { errorBody } from '../error-reply.ts';

/** Reads a profile by id or `TYPE:VALUE` (src/identity's `getProfileView`). */
export type ProfileViewFn = (tx: StoreTx, idOrTypeValue: string) => Promise<Profile | null>;

const byIdParams = z.object({ id: z.string().trim().min(1, 'must not be empty').max(512) });
const byIdentifierQuery = z.object({
  identifier: z.string({ error: 'the identifier query parameter is required (identifier=TYPE:VALUE)' }).max(2048),
});

export function profileRoutes(profileView: ProfileViewFn): FastifyPluginAsync {
  return (app) => {
    const { store, requireAdmin } = app.crmhub;

    app.get('/v1/profiles/:id', { preHandler: requireAdmin }, async (request, reply) => {
      const { id } = byIdParams.parse(request.params);
      const profile = await profileView(store.read(), id);
      if (profile === null) return reply.code(404).send(errorBody('PROFILE_NOT_FOUND', `no profile with id ${JSON.stringify(id)}`));
      return reply.send(profile);
    });

    app.get('/v1/profiles', { preHandler: requireAdmin }, async (request, reply) => {
      const { identifier } = byIdentifierQuery.parse(request.query);
      const parsed = parseIdentifierArg(identifier);
      if (parsed === null) {
        return reply.code(400).send(errorBody('INVALID_IDENTIFIER', `identifier must be TYPE:VALUE, e.g. email:ada@example.com (got ${JSON.stringify(identifier.slice(0, 100))})`));
      }
      const profile = await profileView(store.read(), `${parsed.type}:${parsed.value}`);
      if (profile === null) return reply.code(404).send(errorBody('PROFILE_NOT_FOUND', `no profile holds ${parsed.type}:${parsed.value}`));
      return reply.send(profile);
    });
    return Promise.resolve();
  };
}
