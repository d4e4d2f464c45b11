/** Builds an app on a fresh store (SQLite in memory, or a private Postgres schema) for route tests. */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { loadConfig } from '../../src/config/load-config.ts';
import type { ProfilesChangedHook } from '../../src/ingest/event-ingestor.ts';
import { buildApp } from '../../src/server/app.ts';
import { createLogger } from '../../src/server/logger.ts';
import { ReadinessChecks } from '../../src/server/readiness.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';

export const PG_URL = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const WRITE_KEY = 'wk_test_0123456789';
export const ADMIN_TOKEN = 'admin_token_abcdefghij';
export const BASIC = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
export const BEARER = `Bearer ${ADMIN_TOKEN}`;

export interface Harness {
  app: FastifyInstance;
  store: ProfileStore;
  logs: string[];
  readiness: ReadinessChecks;
  close(): Promise<void>;
}

let counter = 0;

export async function openTestStore(dialect: 'sqlite' | 'postgres'): Promise<ProfileStore> {
  if (dialect === 'sqlite') return openStore('sqlite::memory:');
  counter += 1;
  return openStore(PG_URL, { schema: `crmhub_srv${process.pid}_${randomBytes(3).toString('hex')}_${counter}` });
}

export async function disposeTestStore(store: ProfileStore): Promise<void> {
  const schema = store instanceof PostgresStore ? store.schema : null;
  await store.close();
  if (schema !== null) {
    const admin = new PostgresStore({ connectionString: PG_URL, schema });
    await admin.dropSchema();
    await admin.close();
  }
}

export async function harness(
  dialect: 'sqlite' | 'postgres' = 'sqlite',
  extra: { plugins?: FastifyPluginAsync[]; onProfilesChanged?: ProfilesChangedHook; env?: Record<string, string> } = {},
): Promise<Harness> {
  const store = await openTestStore(dialect);
  const config = loadConfig({ CRMHUB_WRITE_KEYS: WRITE_KEY, CRMHUB_ADMIN_TOKEN: ADMIN_TOKEN, CRMHUB_LOG_LEVEL: 'debug', ...extra.env }, null);
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const readiness = new ReadinessChecks();
  const app = await buildApp({
    config,
    store,
    logger: createLogger({ level: 'debug', secrets: config.secrets, destination }),
    readiness,
    ...(extra.plugins === undefined ? {} : { plugins: extra.plugins }),
    ...(extra.onProfilesChanged === undefined ? {} : { onProfilesChanged: extra.onProfilesChanged }),
  });
  return {
    app,
    store,
    logs,
    readiness,
    async close() {
      await app.close();
      await disposeTestStore(store);
    },
  };
}

/** POSTs JSON to the event API with the test write key. */
export function post(app: FastifyInstance, route: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: `/v1/${route}`,
    headers: { authorization: BASIC, 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
