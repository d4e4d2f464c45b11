import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CrmhubError } from '../connector-kit/errors.ts';
import { AsyncMutex } from './async-mutex.ts';
import type { SqlExecutor, SqlParam, SqlRow } from './sql-executor.ts';
import { SqlProfileStore } from './sql-profile-store.ts';

/** How long a writer waits for another process's write lock before SQLITE_BUSY (ms). */
const BUSY_TIMEOUT_MS = 5_000;

/** Runs statements on one better-sqlite3 connection, preparing each distinct SQL text once. */
class SqliteExecutor implements SqlExecutor {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private statement(sql: string): Database.Statement {
    let stmt = this.cache.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
  }

  all(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    const stmt = this.statement(sql);
    if (!stmt.reader) {
      stmt.run(...params);
      return Promise.resolve([]);
    }
    return Promise.resolve(stmt.all(...params) as SqlRow[]);
  }

  run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return Promise.resolve(this.statement(sql).run(...params).changes);
  }
}

export interface SqliteStoreOptions {
  /** File path, or `:memory:`. Parent folders are created. */
  file: string;
  /**
   * Refuse a transaction started inside another (which would deadlock) — at a price: the guard is
   * an AsyncLocalStorage, which makes every promise of the process cost more. Only a connection
   * whose callers are known not to nest may turn it off (the ingest worker thread). Default true.
   */
  nestingGuard?: boolean;
}

/**
 * The embedded default adapter. WAL mode with `synchronous=FULL`: a committed transaction is on
 * disk before COMMIT returns, so "answered 200" survives a process kill (and power loss).
 * Transactions are serialised in-process by a mutex around BEGIN IMMEDIATE … COMMIT on the one
 * write connection (SQLite has one writer anyway; IMMEDIATE takes the write lock up front so two
 * processes never deadlock upgrading a read lock). File databases get a second, read-only
 * connection for {@link read}, so reads outside transactions never see uncommitted writes.
 */
export class SqliteStore extends SqlProfileStore {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly readDb: Database.Database | null;
  private readonly writer: SqliteExecutor;
  private readonly reader: SqliteExecutor;
  private readonly mutex = new AsyncMutex();
  /** Marks the async context of a running transaction, to refuse nested ones (they would deadlock). */
  private readonly inTx: AsyncLocalStorage<true> | null;
  private closed = false;
  /** The database file, absolute (null for `:memory:`): another thread may open its own connection to it. */
  readonly file: string | null;

  constructor(options: SqliteStoreOptions) {
    super();
    const memory = options.file === ':memory:';
    this.file = memory ? null : path.resolve(options.file);
    this.inTx = options.nestingGuard === false ? null : new AsyncLocalStorage<true>();
    if (!memory) mkdirSync(path.dirname(path.resolve(options.file)), { recursive: true });
    this.db = new Database(options.file);
    if (!memory) this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // 64 MiB page cache: identifier lookups stay in memory well past a million rows.
    this.db.pragma('cache_size = -65536');
    // From here on the writer never sleeps inside SQLite: a busy handler would block the event loop
    // (and with it the transaction holding the lock, if that is in this process). BEGIN IMMEDIATE
    // is retried asynchronously instead (see beginImmediate).
    this.db.pragma('busy_timeout = 0');
    this.writer = new SqliteExecutor(this.db);
    if (memory) {
      this.readDb = null;
      this.reader = this.writer;
    } else {
      this.readDb = new Database(options.file, { readonly: true });
      this.readDb.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.reader = new SqliteExecutor(this.readDb);
    }
  }

  /** The underlying write connection, for benchmarks and tests that need raw SQL. */
  get connection(): Database.Database {
    return this.db;
  }

  /**
   * Runs `fn` holding this store's write turn — the mutex its transactions queue on — without
   * opening a transaction here: for a writer on another connection to the same file (the ingest
   * worker thread), so that writer and this store's transactions take turns instead of racing for
   * SQLite's lock. Same nesting rule as a transaction.
   */
  withWriteTurn<T>(fn: () => Promise<T>): Promise<T> {
    const guard = this.inTx;
    if (guard?.getStore() === true) {
      return Promise.reject(new TypeError('nested store transaction: use the tx you already have'));
    }
    if (this.closed) return Promise.reject(new TypeError('store is closed'));
    return this.mutex.run(guard === null ? fn : () => guard.run(true, fn));
  }

  protected withTx<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    const guard = this.inTx;
    if (guard?.getStore() === true) {
      return Promise.reject(new TypeError('nested store transaction: use the tx you already have'));
    }
    if (this.closed) return Promise.reject(new TypeError('store is closed'));
    const body = async (): Promise<T> => {
      await this.beginImmediate();
      try {
        const result = await fn(this.writer);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    };
    return this.mutex.run(guard === null ? body : () => guard.run(true, body));
  }

  /** Takes the write lock, waiting (without blocking the event loop) up to BUSY_TIMEOUT_MS. */
  private async beginImmediate(): Promise<void> {
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        this.db.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code !== 'SQLITE_BUSY' || Date.now() >= deadline) {
          if (code === 'SQLITE_BUSY') {
            throw new CrmhubError('transient', 'database is locked by another process', { code: 'DATABASE_BUSY', cause: err });
          }
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  protected readExecutor(): SqlExecutor {
    return this.reader;
  }

  protected lockForMigration(): Promise<void> {
    // BEGIN IMMEDIATE already holds the database's single write lock.
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Wait for running transactions, then refuse new ones.
    await this.mutex.run(() => Promise.resolve());
    this.closed = true;
    this.readDb?.close();
    this.db.close();
  }
}
