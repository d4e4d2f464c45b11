import { z } from 'zod';
import { CrmhubError } from '../connector-kit/errors.ts';
import type { ProfileStore } from './port.ts';
import { PostgresStore } from './postgres-store.ts';
import { SqliteStore } from './sqlite-store.ts';

/** The embedded default (design.md §6). */
export const DEFAULT_DATABASE_URL = 'sqlite:./.crmhub/crmhub.db';

export interface OpenStoreOptions {
  /** Postgres only: the schema for crmhub's tables (created when missing). Wins over `?schema=` in the URL. */
  schema?: string;
  /** Postgres only: pool size. Default 10. */
  maxConnections?: number;
  /** Run pending migrations on open. Default true. */
  migrate?: boolean;
}

const databaseUrl = z
  .string()
  .trim()
  .min(1)
  .refine((u) => u.startsWith('sqlite:') || u.startsWith('postgres://') || u.startsWith('postgresql://'), {
    message: 'expected sqlite:PATH, sqlite::memory: or postgres://…',
  });

/**
 * Opens the profile store named by `url` and applies pending migrations.
 *
 * - `sqlite:PATH` (relative to the working directory; `sqlite:///abs/path` also works), folders
 *   created as needed; `sqlite::memory:` for a private in-memory database.
 * - `postgres://…` / `postgresql://…`; the schema comes from `options.schema`, else `?schema=NAME`
 *   in the URL, else `public`.
 *
 * @param url default: `CRMHUB_DATABASE_URL`, else `sqlite:./.crmhub/crmhub.db`.
 * @throws CrmhubError `config`/`DATABASE_URL_INVALID` for anything else.
 */
export async function openStore(url?: string, options: OpenStoreOptions = {}): Promise<ProfileStore> {
  const parsed = databaseUrl.safeParse(url ?? process.env['CRMHUB_DATABASE_URL'] ?? DEFAULT_DATABASE_URL);
  if (!parsed.success) {
    throw new CrmhubError('config', `CRMHUB_DATABASE_URL: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      code: 'DATABASE_URL_INVALID',
    });
  }
  const value = parsed.data;
  let store: SqliteStore | PostgresStore;
  if (value.startsWith('sqlite:')) {
    let file = value.slice('sqlite:'.length);
    if (file.startsWith('//')) file = file.slice(2); // sqlite:///abs → /abs, sqlite://rel → rel
    if (file === '') throw new CrmhubError('config', 'CRMHUB_DATABASE_URL: sqlite: needs a path', { code: 'DATABASE_URL_INVALID' });
    store = new SqliteStore({ file });
  } else {
    let connectionString = value;
    let schema = options.schema;
    try {
      const u = new URL(value);
      const fromUrl = u.searchParams.get('schema');
      if (fromUrl !== null) {
        u.searchParams.delete('schema');
        connectionString = u.toString();
        schema ??= fromUrl;
      }
    } catch (cause) {
      throw new CrmhubError('config', 'CRMHUB_DATABASE_URL: not a valid postgres URL', { code: 'DATABASE_URL_INVALID', cause });
    }
    const pgStore = new PostgresStore({
      connectionString,
      ...(schema === undefined ? {} : { schema }),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    });
    try {
      await pgStore.ensureSchema();
    } catch (cause) {
      await pgStore.close();
      throw new CrmhubError('transient', 'cannot reach Postgres', { code: 'DATABASE_UNREACHABLE', cause });
    }
    store = pgStore;
  }
  if (options.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}
