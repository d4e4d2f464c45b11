import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { CrmhubError, isCrmhubError } from '../connector-kit/errors.ts';
import type { SqlExecutor, SqlParam, SqlRow } from './sql-executor.ts';
import { SqlProfileStore } from './sql-profile-store.ts';

/** SQLSTATEs after which re-running the whole transaction is the right answer. */
const RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505', // unique_violation: a concurrent transaction created the same identifier/profile first
]);
const MAX_ATTEMPTS = 5;
/** Statements with at most this many parameters are prepared by name (cached per connection). */
const MAX_PREPARED_PARAMS = 32;

const placeholderCache = new Map<string, { text: string; name: string | undefined }>();
let statementCounter = 0;

/** Rewrites `?` to `$1…$n` once per SQL text, and names short statements so pg prepares them once per connection. */
function compile(sql: string): { text: string; name: string | undefined } {
  let compiled = placeholderCache.get(sql);
  if (compiled === undefined) {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    statementCounter += 1;
    compiled = { text, name: n <= MAX_PREPARED_PARAMS ? `crmhub_${statementCounter}` : undefined };
    // Multi-row statements vary in length; they are not cached so the map stays bounded.
    if (compiled.name !== undefined) placeholderCache.set(sql, compiled);
  }
  return compiled;
}

class PgExecutor implements SqlExecutor {
  constructor(private readonly client: pg.PoolClient | pg.Pool) {}

  async all(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    const { text, name } = compile(sql);
    const values = [...params];
    // A Pool hands each query to whichever client is free; named statements are per client, which
    // pg handles (it prepares on first use on each client).
    const res = await this.client.query<SqlRow>(name === undefined ? { text, values } : { name, text, values });
    return res.rows;
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    const { text, name } = compile(sql);
    const values = [...params];
    const res = await this.client.query(name === undefined ? { text, values } : { name, text, values });
    return res.rowCount ?? 0;
  }
}

/**
 * Whether re-running the transaction can succeed: the SQLSTATEs above, or an identifier taken by a
 * concurrent transaction that committed while ours waited on the row (`INSERT … ON CONFLICT` then
 * sees it and the store reports IDENTIFIER_TAKEN; the re-run finds and uses that row).
 */
function isRetryable(err: unknown): boolean {
  if (isCrmhubError(err)) return err.code === 'IDENTIFIER_TAKEN';
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE.has(code);
}

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema holding crmhub's tables (created when missing). Default `public`. */
  schema?: string;
  /** Pool size. Default 10. */
  maxConnections?: number;
}

/**
 * The Postgres adapter: a pg Pool; each transaction gets its own client, READ COMMITTED, and is
 * retried (up to 5 attempts) on serialisation failures, deadlocks and unique violations — the
 * last is how two concurrent first sightings of one identifier settle: the loser re-runs and now
 * finds the winner's row. `fn` may therefore run more than once; keep side effects inside the tx.
 */
export class PostgresStore extends SqlProfileStore {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly poolExecutor: PgExecutor;
  private readonly inTx = new AsyncLocalStorage<true>();

  constructor(options: PostgresStoreOptions) {
    super();
    this.schema = options.schema ?? 'public';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(this.schema)) {
      throw new CrmhubError('config', `invalid Postgres schema name: ${this.schema}`, { code: 'DATABASE_SCHEMA_INVALID' });
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      // Every connection of the pool works in the one schema.
      options: `-c search_path=${this.schema}`,
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.poolExecutor = new PgExecutor(this.pool);
  }

  /** Creates the schema when missing. Called by `openStore` before migrating. */
  async ensureSchema(): Promise<void> {
    try {
      await this.pool.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
    } catch (err) {
      // Two processes creating it at once: IF NOT EXISTS is not atomic; the loser sees a duplicate.
      const code = (err as { code?: unknown }).code;
      if (code !== '23505' && code !== '42P06') throw err;
    }
  }

  /** Drops the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }

  protected async withTx<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.inTx.getStore() === true) throw new TypeError('nested store transaction: use the tx you already have');
    for (let attempt = 1; ; attempt += 1) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await this.inTx.run(true, () => fn(new PgExecutor(client)));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true; // the connection is unusable; drop it from the pool
        }
        if (attempt < MAX_ATTEMPTS && isRetryable(err)) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
          continue;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  protected readExecutor(): SqlExecutor {
    return this.poolExecutor;
  }

  protected async lockForMigration(db: SqlExecutor): Promise<void> {
    // Two processes starting together: the second waits here, then sees the versions applied.
    await db.all('SELECT pg_advisory_xact_lock(hashtext(?))', [`crmhub-migrate:${this.schema}`]);
  }

  protected override claimSql(where: string): string {
    return `UPDATE outbox SET status = 'leased', lease_until = ?, lease_owner = ?
            WHERE id IN (SELECT id FROM outbox WHERE ${where} ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
            RETURNING *`;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
