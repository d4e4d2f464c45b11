import type { FieldValues } from '../core/types.ts';
import { CrmhubError } from '../connector-kit/errors.ts';
import { newId } from './ids.ts';
import { MIGRATIONS } from './migrations/index.ts';
import type {
  ClaimOptions,
  ConflictRow,
  DeadLetterRow,
  MappingVersionRow,
  OutboxDeadLetter,
  OutboxRetry,
  OutboxRow,
  ProfileStore,
  StoreTx,
  SyncRunRow,
  WebhookClaimOptions,
  WebhookReceiptRow,
} from './port.ts';
import { toConflict, toDeadLetter, toOutbox, toSyncRun, toWebhookReceipt } from './row-mappers.ts';
import type { SqlExecutor, SqlParam } from './sql-executor.ts';
import { type Dialect, SqlStoreTx } from './sql-store-tx.ts';
import { int, iso, placeholders } from './sql-values.ts';

/**
 * What both adapters share: everything above "run this in a transaction on a connection". The
 * adapters supply the connection handling ({@link SqlProfileStore.withTx}, {@link SqlProfileStore.readExecutor})
 * and the dialect-specific bits (migration lock, claim query).
 */
export abstract class SqlProfileStore implements ProfileStore {
  abstract readonly dialect: Dialect;

  /** Runs `fn` in one transaction on one connection. */
  protected abstract withTx<T>(fn: (db: SqlExecutor) => Promise<T>): Promise<T>;
  /** A connection for reads outside a transaction. */
  protected abstract readExecutor(): SqlExecutor;
  /** Serialises migrators across processes (Postgres advisory lock; SQLite's write lock suffices). */
  protected abstract lockForMigration(db: SqlExecutor): Promise<void>;
  abstract close(): Promise<void>;

  /**
   * Runs one raw statement (`?` placeholders) in its own transaction; resolves to rows changed.
   * For benchmarks, bulk loads and admin tooling only: application code goes through the port.
   */
  execRaw(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return this.withTx((db) => db.run(sql, params));
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.withTx((db) => fn(new SqlStoreTx(db, this.dialect)));
  }

  read(): StoreTx {
    return new SqlStoreTx(this.readExecutor(), this.dialect);
  }

  async migrate(): Promise<number[]> {
    return this.withTx(async (db) => {
      await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
      await this.lockForMigration(db);
      const done = new Set((await db.all('SELECT version FROM schema_migrations')).map((r) => int(r, 'version')));
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const statement of this.dialect === 'sqlite' ? m.sqlite : m.postgres) await db.run(statement);
        await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
        applied.push(m.version);
      }
      return applied;
    });
  }

  // ---- outbox workers ----------------------------------------------------------------------

  /** The dialect's claim statement: picks due rows and leases them, returning the claimed rows. */
  protected claimSql(where: string): string {
    return `UPDATE outbox SET status = 'leased', lease_until = ?, lease_owner = ?
            WHERE id IN (SELECT id FROM outbox WHERE ${where} ORDER BY created_at, id LIMIT ?)
            RETURNING *`;
  }

  async claimOutbox(options: ClaimOptions): Promise<OutboxRow[]> {
    const now = iso(options.now);
    const until = new Date(Date.parse(now) + options.leaseMs).toISOString();
    // Due: pending and its time has come, or leased by a worker whose lease ran out (crashed).
    let where = `((status = 'pending' AND next_at <= ?) OR (status = 'leased' AND lease_until <= ?))`;
    const params: SqlParam[] = [until, options.owner, now, now];
    if (options.connector !== undefined) {
      where += ' AND connector = ?';
      params.push(options.connector);
    }
    if (options.object !== undefined) {
      where += ' AND object = ?';
      params.push(options.object);
    }
    params.push(options.limit);
    const rows = await this.withTx((db) => db.all(this.claimSql(where), params));
    return rows.map(toOutbox).sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
  }

  /**
   * No-op when `owner` no longer holds the row (its lease ran out and another worker claimed it):
   * that worker now owns the outcome, and marking the row done here could drop fields coalesced
   * into it since.
   */
  async completeOutbox(id: string, owner: string): Promise<void> {
    await this.withTx((db) =>
      db.run(
        `UPDATE outbox SET status = 'done', lease_until = NULL, lease_owner = NULL
         WHERE id = ? AND lease_owner = ? AND status = 'leased'`,
        [id, owner],
      ),
    );
  }

  /** No-op when `owner` no longer holds the row (see completeOutbox). */
  async retryOutbox(id: string, owner: string, nextAt: string, error: string, countAttempt: boolean): Promise<void> {
    await this.withTx((db) =>
      db.run(
        `UPDATE outbox SET status = 'pending', next_at = ?, last_error = ?, attempts = attempts + ?,
           lease_until = NULL, lease_owner = NULL
         WHERE id = ? AND lease_owner = ? AND status = 'leased'`,
        [iso(nextAt), error, countAttempt ? 1 : 0, id, owner],
      ),
    );
  }

  /**
   * The final attempt is counted in `attempts`.
   * @throws CrmhubError `conflict`/`OUTBOX_LEASE_LOST` when `owner` no longer holds the row.
   */
  async deadLetterOutbox(id: string, owner: string, reason: string, error: string, at: string): Promise<DeadLetterRow> {
    return this.withTx(async (db) => {
      const dl = await deadLetterRow(db, id, owner, reason, error, at);
      if (dl === null) throw leaseLost(id);
      return dl;
    });
  }

  async markOutboxSent(rows: readonly { id: string; fields: FieldValues }[], owner: string): Promise<number> {
    if (rows.length === 0) return 0;
    return this.withTx(async (db) => {
      let changed = 0;
      for (const r of rows) {
        changed += await db.run(`UPDATE outbox SET sent_fields = ? WHERE id = ? AND lease_owner = ? AND status = 'leased'`, [JSON.stringify(r.fields), r.id, owner]);
      }
      return changed;
    });
  }

  async completeOutboxMany(ids: readonly string[], owner: string): Promise<number> {
    if (ids.length === 0) return 0;
    return this.withTx(async (db) => {
      let changed = 0;
      for (const group of this.outboxIdGroups(ids)) {
        changed += await db.run(
          `UPDATE outbox SET status = 'done', lease_until = NULL, lease_owner = NULL
           WHERE ${group.where} AND lease_owner = ? AND status = 'leased'`,
          [...group.ids, owner],
        );
      }
      return changed;
    });
  }

  async retryOutboxMany(rows: readonly OutboxRetry[], owner: string): Promise<number> {
    if (rows.length === 0) return 0;
    // Rows of one batch mostly share their outcome: one statement per distinct (nextAt, error, counted).
    const byOutcome = new Map<string, { r: OutboxRetry; ids: string[] }>();
    for (const r of rows) {
      const key = JSON.stringify([iso(r.nextAt), r.error, r.countAttempt]);
      const entry = byOutcome.get(key);
      if (entry === undefined) byOutcome.set(key, { r, ids: [r.id] });
      else entry.ids.push(r.id);
    }
    return this.withTx(async (db) => {
      let changed = 0;
      for (const { r, ids } of byOutcome.values()) {
        for (const group of this.outboxIdGroups(ids)) {
          changed += await db.run(
            `UPDATE outbox SET status = 'pending', next_at = ?, last_error = ?, attempts = attempts + ?,
               lease_until = NULL, lease_owner = NULL
             WHERE ${group.where} AND lease_owner = ? AND status = 'leased'`,
            [iso(r.nextAt), r.error, r.countAttempt ? 1 : 0, ...group.ids, owner],
          );
        }
      }
      return changed;
    });
  }

  async deadLetterOutboxMany(rows: readonly OutboxDeadLetter[], owner: string, at: string): Promise<DeadLetterRow[]> {
    if (rows.length === 0) return [];
    return this.withTx(async (db) => {
      const out: DeadLetterRow[] = [];
      for (const r of rows) {
        const dl = await deadLetterRow(db, r.id, owner, r.reason, r.error, at);
        if (dl !== null) out.push(dl);
      }
      return out;
    });
  }

  /**
   * Outbox ids as `WHERE` groups for the bulk updates above. SQLite: one id per statement — with an
   * `IN` list its planner picks the `(status, next_at)` index for `status = 'leased'` and walks every
   * leased row, while a prepared single-row statement costs microseconds in-process. Postgres: up to
   * 500 ids per statement (a round trip each).
   */
  private outboxIdGroups(ids: readonly string[]): { where: string; ids: string[] }[] {
    if (this.dialect === 'sqlite') return ids.map((id) => ({ where: 'id = ?', ids: [id] }));
    const out: { where: string; ids: string[] }[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      out.push({ where: `id IN (${placeholders(part.length)})`, ids: part });
    }
    return out;
  }

  /** Rows still to deliver: pending or leased. */
  async pendingOutboxCount(connector?: string): Promise<number> {
    const rows = await this.readExecutor().all(
      `SELECT COUNT(*) AS n FROM outbox WHERE status IN ('pending', 'leased')${connector === undefined ? '' : ' AND connector = ?'}`,
      connector === undefined ? [] : [connector],
    );
    return rows[0] === undefined ? 0 : int(rows[0], 'n');
  }

  /** Newest first. */
  async listDeadLetters(options: { limit: number; connector?: string; includeReplayed?: boolean }): Promise<DeadLetterRow[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (options.includeReplayed !== true) where.push('replayed_at IS NULL');
    if (options.connector !== undefined) {
      where.push('connector = ?');
      params.push(options.connector);
    }
    params.push(options.limit);
    const rows = await this.readExecutor().all(
      `SELECT * FROM dead_letters ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY created_at DESC, id DESC LIMIT ?`,
      params,
    );
    return rows.map(toDeadLetter);
  }

  /** Each replayed letter becomes a fresh pending outbox row (attempts 0, due at `at`). */
  async replayDeadLetters(ids: string[], at: string): Promise<number> {
    const t = iso(at);
    return this.withTx(async (db) => {
      const rows =
        ids.length === 0
          ? await db.all('SELECT * FROM dead_letters WHERE replayed_at IS NULL ORDER BY created_at, id')
          : await db.all(
              `SELECT * FROM dead_letters WHERE replayed_at IS NULL AND id IN (${placeholders(ids.length)}) ORDER BY created_at, id`,
              ids,
            );
      for (const dl of rows.map(toDeadLetter)) {
        await db.run(
          `INSERT INTO outbox (id, connector, object, profile_id, op, fields, status, attempts, next_at, created_at)
           VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
          [newId('obx'), dl.connector, dl.object, dl.profileId, dl.op, JSON.stringify(dl.fields), t, t],
        );
        await db.run('UPDATE dead_letters SET replayed_at = ? WHERE id = ?', [t, dl.id]);
      }
      return rows.length;
    });
  }

  // ---- webhook inbox -----------------------------------------------------------------------

  async claimWebhookReceipts(options: WebhookClaimOptions): Promise<WebhookReceiptRow[]> {
    const now = iso(options.now);
    const until = new Date(Date.parse(now) + options.leaseMs).toISOString();
    const sources = options.sources ?? null;
    if (sources !== null && sources.length === 0) return [];
    // Free: never leased, released for a retry whose time has come, or held by an engine whose
    // lease ran out (it died mid-way). A receipt without payload has nothing to process.
    let where = 'processed_at IS NULL AND payload IS NOT NULL AND (lease_until IS NULL OR lease_until <= ?)';
    const params: SqlParam[] = [options.owner, until, now];
    if (sources !== null) {
      where += ` AND source IN (${placeholders(sources.length)})`;
      params.push(...sources);
    }
    params.push(options.limit);
    const lock = this.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows = await this.withTx((db) =>
      db.all(
        `UPDATE webhook_receipts SET lease_owner = ?, lease_until = ?
         WHERE (source, delivery_id) IN (
           SELECT source, delivery_id FROM webhook_receipts WHERE ${where} ORDER BY changed_at, delivery_id LIMIT ?${lock})
         RETURNING *`,
        params,
      ),
    );
    const byChange = (a: WebhookReceiptRow, b: WebhookReceiptRow): number =>
      (a.changedAt ?? '') < (b.changedAt ?? '') ? -1 : (a.changedAt ?? '') > (b.changedAt ?? '') ? 1 : a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0;
    return rows.map(toWebhookReceipt).sort(byChange);
  }

  async finishWebhookReceipts(source: string, deliveryIds: readonly string[], at: string, error?: string): Promise<void> {
    if (deliveryIds.length === 0) return;
    const t = iso(at);
    await this.withTx(async (db) => {
      for (const part of idChunks(deliveryIds)) {
        await db.run(
          `UPDATE webhook_receipts SET processed_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
           WHERE source = ? AND delivery_id IN (${placeholders(part.length)}) AND processed_at IS NULL`,
          [t, error ?? null, source, ...part],
        );
      }
    });
  }

  async retryWebhookReceipts(source: string, deliveryIds: readonly string[], nextAt: string, error: string, countAttempt: boolean): Promise<void> {
    if (deliveryIds.length === 0) return;
    const t = iso(nextAt);
    await this.withTx(async (db) => {
      for (const part of idChunks(deliveryIds)) {
        await db.run(
          `UPDATE webhook_receipts SET attempts = attempts + ?, last_error = ?, lease_owner = NULL, lease_until = ?
           WHERE source = ? AND delivery_id IN (${placeholders(part.length)}) AND processed_at IS NULL`,
          [countAttempt ? 1 : 0, error, t, source, ...part],
        );
      }
    });
  }

  async pendingWebhookCount(source?: string): Promise<number> {
    const rows = await this.readExecutor().all(
      `SELECT COUNT(*) AS n FROM webhook_receipts WHERE processed_at IS NULL${source === undefined ? '' : ' AND source = ?'}`,
      source === undefined ? [] : [source],
    );
    return rows[0] === undefined ? 0 : int(rows[0], 'n');
  }

  async pruneWebhookReceipts(before: string): Promise<number> {
    return this.withTx((db) => db.run('DELETE FROM webhook_receipts WHERE processed_at IS NOT NULL AND processed_at < ?', [iso(before)]));
  }

  // ---- runs, conflicts, mappings -----------------------------------------------------------

  async startSyncRun(row: Omit<SyncRunRow, 'id' | 'finishedAt' | 'status' | 'error'>): Promise<SyncRunRow> {
    const run: SyncRunRow = { ...row, id: newId('run'), status: 'running', startedAt: iso(row.startedAt), finishedAt: null, error: null };
    await this.withTx((db) =>
      db.run(
        `INSERT INTO sync_runs (id, connector, object, direction, "trigger", status, started_at, finished_at, counts, mapping_version, error)
         VALUES (?, ?, ?, ?, ?, 'running', ?, NULL, ?, ?, NULL)`,
        [run.id, run.connector, run.object, run.direction, run.trigger, run.startedAt, JSON.stringify(run.counts), run.mappingVersion],
      ),
    );
    return run;
  }

  async finishSyncRun(id: string, update: Pick<SyncRunRow, 'status' | 'counts' | 'error' | 'finishedAt'>): Promise<void> {
    await this.withTx((db) =>
      db.run('UPDATE sync_runs SET status = ?, counts = ?, error = ?, finished_at = ? WHERE id = ?', [
        update.status,
        JSON.stringify(update.counts),
        update.error,
        update.finishedAt === null ? null : iso(update.finishedAt),
        id,
      ]),
    );
  }

  /** Newest first. */
  async listSyncRuns(limit: number): Promise<SyncRunRow[]> {
    const rows = await this.readExecutor().all('SELECT * FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT ?', [limit]);
    return rows.map(toSyncRun);
  }

  /** Newest first. */
  async listConflicts(options: { limit: number; unresolvedOnly?: boolean }): Promise<ConflictRow[]> {
    const rows = await this.readExecutor().all(
      `SELECT * FROM conflicts ${options.unresolvedOnly === true ? 'WHERE resolved_at IS NULL' : ''} ORDER BY at DESC, id DESC LIMIT ?`,
      [options.limit],
    );
    return rows.map(toConflict);
  }

  async recordMappingVersion(row: MappingVersionRow): Promise<void> {
    await this.withTx((db) =>
      db.run(
        `INSERT INTO mapping_versions (connector, object, hash, loaded_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (connector, object, hash) DO NOTHING`,
        [row.connector, row.object, row.hash, iso(row.loadedAt)],
      ),
    );
  }

  // ---- leases ------------------------------------------------------------------------------

  async acquireLease(name: string, owner: string, until: string, now: string): Promise<boolean> {
    const rows = await this.withTx((db) =>
      db.all(
        `INSERT INTO leases (name, owner, lease_until) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
         WHERE leases.owner = excluded.owner OR leases.lease_until <= ?
         RETURNING owner`,
        [name, owner, iso(until), iso(now)],
      ),
    );
    return rows.length === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.withTx((db) => db.run('DELETE FROM leases WHERE name = ? AND owner = ?', [name, owner]));
  }
}

/** Delivery ids in chunks small enough for one statement's parameters on both dialects. */
function idChunks(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(ids.slice(i, i + 500));
  return out;
}

/**
 * Moves one claimed row to dead_letters inside `db`'s transaction; null when `owner` no longer holds
 * it. The final attempt is counted in `attempts`.
 */
async function deadLetterRow(db: SqlExecutor, id: string, owner: string, reason: string, error: string, at: string): Promise<DeadLetterRow | null> {
  const rows = await db.all(`SELECT * FROM outbox WHERE id = ? AND lease_owner = ? AND status = 'leased'`, [id, owner]);
  if (rows[0] === undefined) return null;
  const o = toOutbox(rows[0]);
  const dl: DeadLetterRow = {
    id: newId('dlq'),
    outboxId: o.id,
    connector: o.connector,
    object: o.object,
    profileId: o.profileId,
    op: o.op,
    fields: o.fields,
    reason,
    error,
    attempts: o.attempts + 1,
    createdAt: iso(at),
    replayedAt: null,
  };
  await db.run(
    `INSERT INTO dead_letters (id, outbox_id, connector, object, profile_id, op, fields, reason, error, attempts, created_at, replayed_at)
     VALUES (${placeholders(11)}, NULL)`,
    [dl.id, dl.outboxId, dl.connector, dl.object, dl.profileId, dl.op, JSON.stringify(dl.fields), reason, error, dl.attempts, dl.createdAt],
  );
  await db.run(`UPDATE outbox SET status = 'dead', attempts = ?, last_error = ?, lease_until = NULL, lease_owner = NULL WHERE id = ?`, [
    dl.attempts,
    error,
    id,
  ]);
  return dl;
}

function leaseLost(id: string): CrmhubError {
  return new CrmhubError('conflict', 'outbox row is no longer leased by this owner', {
    code: 'OUTBOX_LEASE_LOST',
    context: { record: id },
  });
}
