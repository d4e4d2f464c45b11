/**
 * An in-process hub for reliability tests: the three sandboxes on free ports, connectors built from
 * their credentials (each module's `fromEnv`), the shipped mappings, a SyncEngine with the real
 * three-way planner, and the Fastify app with the webhook and sync-admin routes. Logs go to an
 * in-memory array so tests can search them for secrets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { startSandboxes } from '../../../src/cli/commands/sandbox.ts';
import { openRuntime, type OpenRuntimeOptions } from '../../../src/cli/runtime.ts';
import { loadConfig, type CrmhubConfig } from '../../../src/config/load-config.ts';
import type { RunningSandbox } from '../../../src/connector-kit/connector-module.ts';
import { buildApp } from '../../../src/server/app.ts';
import { createLogger } from '../../../src/server/logger.ts';
import { syncAdminRoutes } from '../../../src/server/routes/sync-admin.ts';
import { webhookRoutes } from '../../../src/server/routes/webhooks.ts';
import { openStore } from '../../../src/store/open-store.ts';
import type { ProfileStore } from '../../../src/store/port.ts';
import type { SyncEngine } from '../../../src/sync/sync-engine.ts';

export const WRITE_KEY = 'wk_reliability_5f3a9c1e77';
export const ADMIN_TOKEN = 'adm_reliability_b81d44e02c';

export interface Hub {
  sandboxes: Map<string, RunningSandbox>;
  /** Sandbox env + crmhub settings (write key, admin token, database). */
  env: Record<string, string>;
  config: CrmhubConfig;
  store: ProfileStore;
  engine: SyncEngine;
  app: FastifyInstance;
  logger: Logger;
  /** Every log line written so far (JSON strings). */
  logs: string[];
  /** Every secret in `env` (tokens, keys, passwords). */
  secrets: string[];
  close(): Promise<void>;
}

export interface HubOptions {
  /** Start only these sandboxes (only their connectors are configured). Default all three. */
  only?: string[];
  /** Extra environment (overrides). */
  env?: Record<string, string>;
  /** Store on a temp SQLite file (default in memory). */
  file?: boolean;
  engine?: OpenRuntimeOptions['engine'];
  /** Reuse running sandboxes instead of starting new ones (not closed by `close`). */
  sandboxes?: RunningSandbox[];
}

/** Secret-bearing env variable names (design.md §6). */
const SECRET_NAMES = /TOKEN|SECRET|PASSWORD|WRITE_KEYS/;

export function secretsOf(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => SECRET_NAMES.test(k) && v.length >= 6)
    .flatMap(([, v]) => v.split(','))
    .filter((v) => v.length >= 6);
}

export async function startHub(options: HubOptions = {}): Promise<Hub> {
  const own = options.sandboxes === undefined;
  const running = options.sandboxes ?? (await startSandboxes(options.only ? { only: options.only } : {}));
  const sandboxes = new Map(running.map((s) => [s.slug, s]));
  const dir = options.file ? mkdtempSync(join(tmpdir(), 'crmhub-rel-')) : null;
  const env: Record<string, string> = {
    ...Object.assign({}, ...running.map((s) => s.env)),
    CRMHUB_WRITE_KEYS: WRITE_KEY,
    CRMHUB_ADMIN_TOKEN: ADMIN_TOKEN,
    CRMHUB_LOG_LEVEL: 'debug',
    CRMHUB_DATABASE_URL: dir ? `sqlite:${join(dir, 'crmhub.db')}` : 'sqlite::memory:',
    ...options.env,
  };
  const config = loadConfig(env, null);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', secrets: config.secrets, destination });
  const store = await openStore(config.databaseUrl);
  // The production composition root (src/cli/runtime.ts): connectors from env, shipped mappings,
  // identity resolver, inbound join keys, three-way planner.
  const runtime = await openRuntime({ env, config, store, logger, ...(options.engine ? { engine: options.engine } : {}) });
  const { engine } = runtime;
  const app = await buildApp({
    config,
    store,
    logger,
    plugins: [webhookRoutes(engine), syncAdminRoutes(engine)],
    onProfilesChanged: engine.profilesChangedHook,
  });
  return {
    sandboxes,
    env,
    config,
    store,
    engine,
    app,
    logger,
    logs,
    secrets: secretsOf(env),
    async close() {
      await app.close();
      await runtime.close();
      await store.close();
      if (own) await Promise.allSettled(running.map((s) => s.close()));
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Basic auth header for the event API. */
export const WRITE_AUTH = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
