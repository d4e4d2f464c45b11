/**
 * What every route plugin can reach through `app.crmhub` (plugins registered with
 * `buildApp({ plugins })` inherit the decoration): settings, store, metrics, readiness checks, the
 * ingest pipeline, and `requireAdmin`, the pre-handler that guards admin routes.
 *
 * ```ts
 * const syncAdmin: FastifyPluginAsync = async (app) => {
 *   app.get('/admin/sync-runs', { preHandler: app.crmhub.requireAdmin }, async () => app.crmhub.store.listSyncRuns(50));
 * };
 * ```
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { CrmhubConfig } from '../config/load-config.ts';
import type { EventIngestor } from '../ingest/event-ingestor.ts';
import type { ProfileStore } from '../store/port.ts';
import type { CrmhubMetrics } from './metrics.ts';
import type { ReadinessChecks } from './readiness.ts';

export interface ServerContext {
  config: CrmhubConfig;
  store: ProfileStore;
  metrics: CrmhubMetrics;
  readiness: ReadinessChecks;
  ingest: EventIngestor;
  logger: Logger;
  /** preHandler: 401 with a reason unless `Authorization: Bearer <CRMHUB_ADMIN_TOKEN>`. */
  requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    crmhub: ServerContext;
  }
}
