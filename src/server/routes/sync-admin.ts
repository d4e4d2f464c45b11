/**
 * Sync admin API (design.md §6, admin bearer token): `GET /admin/sync-runs`, `GET /admin/conflicts`,
 * `GET /admin/dlq`, `POST /admin/dlq/:id/replay`, `POST /admin/sync`, and `GET /admin/connections`
 * (pause states such as `needs_reauth`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { RunOnceOptions, RunSummary } from '../../sync/sync-engine.ts';
import { errorBody } from '../error-reply.ts';

/** What the routes need of the sync engine. */
export interface SyncAdminEngine {
  runOnce(options: RunOnceOptions): Promise<RunSummary>;
  connectionStates(): Record<string, { status: string; until: string | null; reason: string | null }>;
}

const limitQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) });
const conflictsQuery = limitQuery.extend({ unresolved: z.enum(['true', 'false']).optional() });
const dlqQuery = limitQuery.extend({ connector: z.string().max(40).optional(), includeReplayed: z.enum(['true', 'false']).optional() });
const idParams = z.object({ id: z.string().trim().min(1).max(200) });
const syncBody = z
  .strictObject({
    connector: z.string().max(40).optional(),
    object: z.string().max(100).optional(),
    direction: z.enum(['pull', 'push', 'both']).default('both'),
    full: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    /** false: answer 202 at once and run in the background. */
    wait: z.boolean().default(true),
  })
  .prefault({});

export function syncAdminRoutes(engine: SyncAdminEngine): FastifyPluginAsync {
  return (app) => {
    const { store, requireAdmin } = app.crmhub;
    const guarded = { preHandler: requireAdmin };

    app.get('/admin/sync-runs', guarded, async (request) => {
      const { limit } = limitQuery.parse(request.query);
      return { runs: await store.listSyncRuns(limit) };
    });

    app.get('/admin/conflicts', guarded, async (request) => {
      const q = conflictsQuery.parse(request.query);
      return { conflicts: await store.listConflicts({ limit: q.limit, unresolvedOnly: q.unresolved === 'true' }) };
    });

    app.get('/admin/dlq', guarded, async (request) => {
      const q = dlqQuery.parse(request.query);
      return {
        deadLetters: await store.listDeadLetters({
          limit: q.limit,
          ...(q.connector ? { connector: q.connector } : {}),
          includeReplayed: q.includeReplayed === 'true',
        }),
      };
    });

    app.post('/admin/dlq/:id/replay', guarded, async (request, reply) => {
      const { id } = idParams.parse(request.params);
      const replayed = await store.replayDeadLetters([id], new Date().toISOString());
      if (replayed === 0) return reply.code(404).send(errorBody('DEAD_LETTER_NOT_FOUND', `no unreplayed dead letter ${JSON.stringify(id)}`));
      return { replayed };
    });

    app.get('/admin/connections', guarded, () => ({ connections: engine.connectionStates() }));

    app.post('/admin/sync', guarded, async (request, reply) => {
      const body = syncBody.parse(request.body ?? {});
      const options: RunOnceOptions = {
        direction: body.direction,
        full: body.full,
        dryRun: body.dryRun,
        trigger: 'admin',
        ...(body.connector ? { connector: body.connector } : {}),
        ...(body.object ? { object: body.object } : {}),
      };
      if (!body.wait) {
        engine.runOnce(options).catch((error: unknown) => request.log.error({ err: error }, 'admin sync failed'));
        return reply.code(202).send({ accepted: true });
      }
      return engine.runOnce(options);
    });
    return Promise.resolve();
  };
}
