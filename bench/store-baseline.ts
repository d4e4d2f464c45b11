/**
 * The raw-insert baseline: how fast this store can append event rows with nothing else going on —
 * 1,000 rows per transaction, plain INSERTs through the port, no identity, no validation. The
 * ingestion benchmark measures in the same run and reports itself as a fraction of this.
 *
 * Which profile and messageId each row gets (`keys`) matters as much as the row count: the events
 * table is indexed on `message_id` and on `(profile_id, timestamp)`, and a transaction whose rows
 * land in a few B-tree pages writes (and fsyncs, and checkpoints) far fewer pages than one whose
 * rows are spread over thousands of profiles. By default every row goes to ONE profile with
 * sequential messageIds — the cheapest case there is; the ingestion benchmark passes the key
 * pattern of its own traffic instead, so both sides store the same rows (see `keys`).
 *
 *   node bin/run-ts.mjs bench/store-baseline.ts [--postgres URL] [--rows N] [--json]
 */
import { pathToFileURL } from 'node:url';
import type { EventRow, ProfileStore } from '../src/store/port.ts';
import type { ProfileId } from '../src/core/types.ts';

/** Where row `i` goes. */
export interface RowKeys {
  messageId: string;
  profileId: ProfileId;
}

export interface BaselineOptions {
  /** Rows to insert in total. Default 50,000. */
  rows?: number;
  /** Rows per transaction. Default 1,000 (the ingestion group-commit size). */
  batch?: number;
  /**
   * `per-row`: one INSERT statement per row (`tx.insertEvent`), the default and the plain case;
   * `multi-row`: `tx.insertEvents` (one multi-row INSERT per 500 rows on Postgres; same as
   * per-row on SQLite, which has no round trips to save).
   */
  mode?: 'per-row' | 'multi-row';
  /**
   * The messageId and profile of row `i` (0-based). Default: profile `prf_baseline` and messageId
   * `baseline-<pid>-<ms>-<i>` for every row, i.e. all rows in one profile with ascending ids.
   * Returned messageIds must be unique and must not collide with rows already in the store.
   */
  keys?: (i: number) => RowKeys;
  /** Delete the rows afterwards (untimed) so later measurements start from the same table. Default true. */
  cleanup?: boolean;
}

export interface BaselineResult {
  dialect: ProfileStore['dialect'];
  mode: 'per-row' | 'multi-row';
  rows: number;
  batch: number;
  seconds: number;
  rowsPerSecond: number;
}

const PROPS = { path: '/pricing', referrer: 'https://example.com/', title: 'Pricing', plan: 'pro', n: 1 };

/** Measures the raw event-insert rate of `store` (see the module comment). */
export async function measureRawInsertRate(store: ProfileStore, options: BaselineOptions = {}): Promise<BaselineResult> {
  const rows = options.rows ?? 50_000;
  const batch = options.batch ?? 1_000;
  const mode = options.mode ?? 'per-row';
  const prefix = `baseline-${process.pid}-${Date.now()}-`;
  const keys = options.keys ?? ((i: number): RowKeys => ({ messageId: `${prefix}${i}`, profileId: 'prf_baseline' as ProfileId }));
  const make = (i: number, now: string): EventRow => {
    const k = keys(i);
    return { messageId: k.messageId, profileId: k.profileId, type: 'track', name: 'Viewed Page', properties: { ...PROPS, n: i }, timestamp: now, receivedAt: now };
  };
  const messageIds: string[] = [];
  let nanos = 0n;
  for (let from = 0; from < rows; from += batch) {
    // Rows are made before the clock runs (only the transactions are timed); one time per
    // transaction, as a group commit's events share their request's time.
    const now = new Date().toISOString();
    const chunk = Array.from({ length: Math.min(batch, rows - from) }, (_, k) => make(from + k, now));
    for (const row of chunk) messageIds.push(row.messageId);
    const started = process.hrtime.bigint();
    await store.transaction(async (tx) => {
      if (mode === 'multi-row') await tx.insertEvents(chunk);
      else for (const row of chunk) await tx.insertEvent(row);
    });
    nanos += process.hrtime.bigint() - started;
  }
  const seconds = Number(nanos) / 1e9;
  if (options.cleanup !== false) {
    const raw = (store as { execRaw?: (sql: string, params: string[]) => Promise<number> }).execRaw;
    if (raw !== undefined) {
      for (let from = 0; from < rows; from += 500) {
        const ids = messageIds.slice(from, from + 500);
        await raw.call(store, `DELETE FROM events WHERE message_id IN (${ids.map(() => '?').join(', ')})`, ids);
      }
    }
  }
  return { dialect: store.dialect, mode, rows, batch, seconds, rowsPerSecond: Math.round(rows / seconds) };
}

async function main(): Promise<void> {
  const { openStore } = await import('../src/store/open-store.ts');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const rowsArg = args.indexOf('--rows');
  const rows = rowsArg >= 0 ? Number(args[rowsArg + 1]) : 50_000;
  const pgArg = args.indexOf('--postgres');
  const results: BaselineResult[] = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-baseline-'));
  try {
    const sqlite = await openStore(`sqlite:${path.join(dir, 'b.db')}`);
    results.push(await measureRawInsertRate(sqlite, { rows }));
    await sqlite.close();
    if (pgArg >= 0) {
      const next = args[pgArg + 1];
      const url = next !== undefined && !next.startsWith('--') ? next : (process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test');
      const schema = `bench_baseline_${process.pid}`;
      const pg = await openStore(url, { schema });
      try {
        results.push(await measureRawInsertRate(pg, { rows }));
        results.push(await measureRawInsertRate(pg, { rows, mode: 'multi-row' }));
      } finally {
        await (pg as unknown as { dropSchema(): Promise<void> }).dropSchema();
        await pg.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
  else for (const r of results) process.stdout.write(`${r.dialect.padEnd(9)} ${r.mode.padEnd(10)} ${String(r.rows).padStart(8)} rows  ${r.rowsPerSecond.toLocaleString('en-US').padStart(10)} rows/s\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
