/**
 * `crmhub serve`: the HTTP server (event API, profile reads, health, metrics, and the route
 * plugins of other parts) plus — through {@link serveHooks} — the workers, scheduler and mapping
 * watcher. Stops gracefully on SIGINT/SIGTERM: stop accepting, answer in-flight requests (their
 * events commit first), stop the hooks in reverse order, close the store. Exit 0 after a clean
 * stop, 2 on a settings error, 1 when start-up fails.
 */
import type { Command } from 'commander';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { isCrmhubError } from '../../connector-kit/errors.ts';
import { loadConfig, type CrmhubConfig } from '../../config/load-config.ts';
import { buildApp } from '../../server/app.ts';
import { createLogger, scrubSecrets } from '../../server/logger.ts';
import { createMetrics } from '../../server/metrics.ts';
import { openStore } from '../../store/open-store.ts';
import type { ProfileStore } from '../../store/port.ts';
import { CliExit } from '../cli-exit.ts';

/** What a serve hook gets when the server starts. */
export interface ServeContext {
  config: CrmhubConfig;
  store: ProfileStore;
  /** The built app; `app.crmhub` has metrics, readiness checks and the ingest pipeline
   * (`app.crmhub.ingest.setProfilesChangedHook(...)` wires outbox writes into event ingestion). */
  app: FastifyInstance;
  logger: Logger;
}

/** Stops what a hook started; awaited on shutdown. */
export type ServeStop = () => Promise<void> | void;

/**
 * A part that runs inside `crmhub serve`. HOOK POINT for the sync engine (outbox workers,
 * scheduler, webhook and admin routes) and the mapping helper (file watcher, readiness check):
 * append to {@link serveHooks} from a module imported below ("REGISTER SERVE HOOKS HERE").
 */
export interface ServeHook {
  name: string;
  /** Route plugins added to the app (e.g. `routes/webhooks.ts`, `routes/sync-admin.ts`). */
  plugins?: FastifyPluginAsync[];
  /** Runs after the app is built, before it listens; may return a stop function. */
  start?: (context: ServeContext) => Promise<ServeStop | void> | ServeStop | void;
}

/** Hooks started by `crmhub serve`, in order (stopped in reverse). */
export const serveHooks: ServeHook[] = [];

// ---- REGISTER SERVE HOOKS HERE ----------------------------------------------------------------
// e.g. `import { syncServeHook } from '../../sync/serve-hook.ts'; serveHooks.push(syncServeHook);`
import { syncServeHook } from '../serve-wiring.ts'; serveHooks.push(syncServeHook);
// -----------------------------------------------------------------------------------------------

export interface RunningServer {
  app: FastifyInstance;
  /** `http://host:port` actually bound. */
  url: string;
  /** Graceful stop (idempotent). */
  stop(): Promise<void>;
}

/** Starts the server with `config` and `hooks` (default {@link serveHooks}). Used by the command, the demo and tests. */
export async function startServer(config: CrmhubConfig, options: { hooks?: ServeHook[]; logger?: Logger } = {}): Promise<RunningServer> {
  const hooks = options.hooks ?? serveHooks;
  const logger = options.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets });
  const store = await openStore(config.databaseUrl);
  const stops: { name: string; stop: ServeStop }[] = [];
  let app: FastifyInstance | undefined;
  const shutdown = async (): Promise<void> => {
    if (app !== undefined) await app.close(); // stops listening, drains in-flight requests and the ingest queue
    for (const { name, stop } of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.error({ err: error, hook: name }, 'stopping a serve hook failed');
      }
    }
    await store.close();
  };
  try {
    app = await buildApp({
      config,
      store,
      logger,
      metrics: createMetrics({ defaultMetrics: true }),
      plugins: hooks.flatMap((h) => h.plugins ?? []),
    });
    for (const hook of hooks) {
      const stop = await hook.start?.({ config, store, app, logger });
      if (typeof stop === 'function') stops.push({ name: hook.name, stop });
    }
    const url = await app.listen({ port: config.port, host: config.host });
    logger.info({ url, database: store.dialect, hooks: hooks.map((h) => h.name) }, 'crmhub listening');
    let stopping: Promise<void> | undefined;
    return { app, url, stop: () => (stopping ??= shutdown()) };
  } catch (error) {
    await shutdown().catch(() => undefined);
    throw error;
  }
}

const optionsSchema = z.object({
  port: z.coerce.number({ error: '--port must be a number' }).int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
});

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP server (event API, webhooks, admin), workers and scheduler')
    .option('--port <n>', 'port to listen on (default CRMHUB_PORT or 8080; 0 = any free port)')
    .option('--host <host>', 'address to listen on (default CRMHUB_HOST or 127.0.0.1)')
    .option('--config <file>', 'settings file (default ./crmhub.config.yaml when present)')
    .action(async (raw: { port?: string; host?: string; config?: string }) => {
      const parsed = optionsSchema.safeParse(raw);
      if (!parsed.success) throw new CliExit(2, `crmhub serve: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      let config: CrmhubConfig;
      try {
        config = loadConfig(process.env, raw.config);
      } catch (error) {
        if (isCrmhubError(error) && error.kind === 'config') throw new CliExit(2, `crmhub serve: ${error.message}`);
        throw error;
      }
      if (parsed.data.port !== undefined) config = { ...config, port: parsed.data.port };
      if (parsed.data.host !== undefined) config = { ...config, host: parsed.data.host };

      const logger = createLogger({ level: config.logLevel, secrets: config.secrets });
      let server: RunningServer;
      try {
        server = await startServer(config, { logger });
      } catch (error) {
        if (isCrmhubError(error) && error.kind === 'config') throw new CliExit(2, `crmhub serve: ${error.message}`);
        throw new CliExit(1, `crmhub serve: cannot start: ${scrubSecrets(error instanceof Error ? error.message : String(error), config.secrets)}`);
      }
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          logger.info({ signal }, 'crmhub stopping');
          server.stop().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'crmhub stopped with an error');
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      logger.info('crmhub stopped');
      logger.flush();
    });
}
