/**
 * The Fastify app (design.md §6, "HTTP"): the Segment-compatible event API, profile reads, health,
 * readiness and metrics, plus route plugins other parts register (`plugins`: e.g. the sync
 * engine's `routes/webhooks.ts` and `routes/sync-admin.ts`). Plugins reach settings, store,
 * metrics, readiness checks, the ingest pipeline and the admin guard through `app.crmhub`
 * ({@link ServerContext}); `request.rawBody` holds the exact body bytes (see `body-parser.ts`).
 *
 * The app does not listen; `crmhub serve` (or a test) calls `listen`/`inject`. Closing the app
 * (`app.close()`) drains the ingest group committer first; the store is the caller's to close.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { CrmhubConfig } from '../config/load-config.ts';
import { EventIngestor, type IdentityPort, type ProfilesChangedHook } from '../ingest/event-ingestor.ts';
import { IdentityResolver } from '../identity/identity-resolver.ts';
import { getProfileView } from '../identity/profile-view.ts';
import type { ProfileStore } from '../store/port.ts';
import { registerBodyParser } from './body-parser.ts';
import { errorBody, toErrorReply } from './error-reply.ts';
import { checkAdminToken } from './http-auth.ts';
import { createLogger, scrubSecrets } from './logger.ts';
import { createMetrics, type CrmhubMetrics } from './metrics.ts';
import { ReadinessChecks } from './readiness.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { profileRoutes, type ProfileViewFn } from './routes/profiles.ts';
import type { ServerContext } from './server-context.ts';

export interface AppDeps {
  config: CrmhubConfig;
  store: ProfileStore;
  /** Default: `new IdentityResolver()` (src/identity). */
  identity?: IdentityPort;
  /** Reads the Profile JSON by id or `TYPE:VALUE`. Default: src/identity's `getProfileView`. */
  profileView?: ProfileViewFn;
  /** Default: a logger at `config.logLevel` that scrubs `config.secrets`. */
  logger?: Logger;
  /** Default: a fresh registry. */
  metrics?: CrmhubMetrics;
  /** Default: fresh; the app adds the `store` check. */
  readiness?: ReadinessChecks;
  /** Route plugins of other parts, registered after crmhub's own routes. */
  plugins?: FastifyPluginAsync[];
  /** Called inside every ingest transaction with the profiles that changed (see `EventIngestor`). */
  onProfilesChanged?: ProfilesChangedHook;
}

/** Most bytes of a body on routes that set no limit of their own (webhooks, admin), 2 MiB. */
export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, store } = deps;
  const logger = deps.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets });
  const metrics = deps.metrics ?? createMetrics();
  const readiness = deps.readiness ?? new ReadinessChecks();
  readiness.register('store', async () => {
    await store.read().getProfile('readyz-probe');
    return { ok: true, detail: store.dialect };
  });

  const app = Fastify({
    // pino 10's Logger type is wider than the pino 9 types Fastify 5 was built against; the runtime API is the same.
    loggerInstance: logger as unknown as FastifyBaseLogger,
    bodyLimit: DEFAULT_BODY_LIMIT,
    // Per-request lines cost throughput; the onResponse hook counts requests and errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Behind a proxy the client address comes from X-Forwarded-For; off by default (loopback).
    trustProxy: false,
    // Router-level rejections (over-long path parameters, undecodable URLs) skip the error handler;
    // without this they answer Fastify's own body, which has no `reason` (found by test/reliability).
    frameworkErrors: (error, _request, reply) => {
      const mapped = toErrorReply(error);
      // The callback's reply type is generic over an unknown route; it is an ordinary reply.
      void (reply as FastifyReply).code(mapped.status).send(mapped.body);
    },
  });

  const ingest = new EventIngestor({
    store,
    identity: deps.identity ?? new IdentityResolver(),
    // The worker thread resolves identity with its own default resolver: only when that is the one in use.
    worker: config.ingest.worker && deps.identity === undefined,
    onWorkerStopped: (err) => logger.error({ err }, 'the ingest worker stopped; ingesting on the main thread'),
    ...(deps.onProfilesChanged === undefined ? {} : { onProfilesChanged: deps.onProfilesChanged }),
    maxWaitMs: config.ingest.maxWaitMs,
    maxEvents: config.ingest.maxEvents,
    onEvent: (type, status, count) => metrics.ingestEvents.inc({ type, outcome: status }, count),
    onFlush: (events, durationMs, committed) => {
      metrics.ingestTransactionEvents.observe(events);
      metrics.ingestTransactionSeconds.observe({ committed: String(committed) }, durationMs / 1000);
    },
  });

  const context: ServerContext = {
    config,
    store,
    metrics,
    readiness,
    ingest,
    logger,
    requireAdmin: async (request, reply) => {
      const check = checkAdminToken(request.headers.authorization, config.adminToken);
      if (!check.ok) await reply.code(401).header('www-authenticate', 'Bearer realm="crmhub admin"').send(errorBody('UNAUTHORIZED', check.reason));
    },
  };
  app.decorate('crmhub', context);

  registerBodyParser(app);

  app.setErrorHandler((error, request, reply) => {
    const mapped = toErrorReply(error);
    if (mapped.fault) {
      request.log.error({ err: error, url: request.url }, 'request failed');
    } else {
      request.log.info({ status: mapped.status, code: mapped.body.code, url: request.url }, scrubSecrets(mapped.body.reason, config.secrets));
    }
    const body = { ...mapped.body, reason: scrubSecrets(mapped.body.reason, config.secrets) };
    return reply.code(mapped.status).send(body);
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );

  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  app.addHook('onClose', async () => {
    await ingest.close();
  });

  await app.register(healthRoutes);
  await app.register(eventRoutes);
  await app.register(profileRoutes(deps.profileView ?? ((tx, arg) => getProfileView(tx, arg))));
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
