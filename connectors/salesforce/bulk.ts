/**
 * Bulk API 2.0 ingest for large loads: one job per (operation, key field) — create, upload the CSV,
 * mark UploadComplete, poll, then fetch `successfulResults` and `failedResults` and match every row
 * back to its record (Bulk API 2.0 Developer Guide, "Get Job Successful/Failed Record Results";
 * crm-reference README §2.5). Results come back in no guaranteed order, so rows are matched by
 * their key column (external id or Id), or for plain inserts by the row's own values.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { WriteOutcome } from '../../src/connector-kit/connector.ts';
import type { JsonValue } from '../../src/core/types.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { BulkOperation, SalesforceClient } from './client.ts';
import { classifyRecordError, parseBulkError } from './errors.ts';

export interface BulkRow {
  ref: string;
  /** Column values, including the key column for update/upsert/delete. */
  values: Record<string, JsonValue>;
}

export interface BulkOptions {
  /** Poll interval in ms. Default 1,000. */
  pollIntervalMs: number;
  /** Give up waiting after this many ms (the job may still finish; upserts are safe to repeat). Default 600,000. */
  timeoutMs: number;
  sleep?: (ms: number) => Promise<void>;
  /** Largest CSV per job in bytes. Default 100,000,000 (150 MB base64-encoded). */
  maxUploadBytes?: number;
}

const MAX_UPLOAD_BYTES = 100_000_000;

/** Bulk API CSV cell: `#N/A` sets a field to null; an empty cell leaves it unchanged (Bulk API 2.0 guide, "Prepare CSV Files"). */
export function csvCell(value: JsonValue | undefined): string {
  if (value === undefined) return '';
  if (value === null) return '#N/A';
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(';');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function signature(row: Record<string, string>, columns: readonly string[]): string {
  return columns.map((c) => row[c] ?? '').join('\u0000');
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs one ingest job and resolves with one outcome per row. Rejects only when the job could not be
 * created or uploaded (the whole call failed).
 */
export async function runIngestJob(
  client: SalesforceClient,
  object: string,
  operation: BulkOperation,
  keyField: string | undefined,
  rows: BulkRow[],
  options: BulkOptions,
): Promise<WriteOutcome[]> {
  const columnSet = new Set<string>();
  if (keyField !== undefined) columnSet.add(keyField);
  for (const row of rows) for (const key of Object.keys(row.values)) columnSet.add(key);
  const columns = [...columnSet];
  const records = rows.map((row) => columns.map((c) => csvCell(row.values[c])));
  const csv = stringify([columns, ...records], { record_delimiter: '\n' });
  // One upload may hold at most 150 MB once base64-encoded (Bulk API 2.0 guide, "Bulk API 2.0
  // Limits"); halve the load into separate jobs until each fits.
  if (Buffer.byteLength(csv) > (options.maxUploadBytes ?? MAX_UPLOAD_BYTES) && rows.length > 1) {
    const half = Math.ceil(rows.length / 2);
    return [
      ...(await runIngestJob(client, object, operation, keyField, rows.slice(0, half), options)),
      ...(await runIngestJob(client, object, operation, keyField, rows.slice(half), options)),
    ];
  }

  // Rows waiting for their result, keyed by key column value or by the whole row.
  const pending = new Map<string, string[]>();
  const matchColumns = keyField === undefined ? columns : [keyField];
  rows.forEach((row, i) => {
    const cells = Object.fromEntries(columns.map((c, j) => [c, records[i]?.[j] ?? '']));
    const sig = signature(cells, matchColumns);
    const list = pending.get(sig) ?? [];
    list.push(row.ref);
    pending.set(sig, list);
  });
  const take = (row: Record<string, string>): string | undefined => {
    const sig = signature(row, matchColumns);
    const list = pending.get(sig);
    const ref = list?.shift();
    if (list !== undefined && list.length === 0) pending.delete(sig);
    return ref;
  };

  const job = await client.createIngestJob(object, operation, keyField);
  try {
    await client.uploadIngestData(job.id, csv);
    await client.setIngestJobState(job.id, 'UploadComplete');
  } catch (error) {
    await client.setIngestJobState(job.id, 'Aborted').catch(() => undefined);
    throw error;
  }
  const sleep = options.sleep ?? defaultSleep;
  const started = Date.now();
  let state = 'UploadComplete';
  let errorMessage: string | null | undefined;
  while (state !== 'JobComplete' && state !== 'Failed' && state !== 'Aborted') {
    if (Date.now() - started > options.timeoutMs) {
      const error = new CrmhubError('transient', `Bulk API 2.0 job ${job.id} still ${state} after ${options.timeoutMs} ms`, {
        code: 'BULK_JOB_TIMEOUT',
        context: { connector: 'salesforce', object, job: job.id },
      });
      return rows.map((r) => ({ ref: r.ref, ok: false, error }));
    }
    await sleep(options.pollIntervalMs);
    const info = await client.getIngestJob(job.id);
    state = info.state;
    errorMessage = info.errorMessage;
  }

  const outcomes: WriteOutcome[] = [];
  const parseCsv = (text: string): Record<string, string>[] =>
    text.trim() === '' ? [] : parse<Record<string, string>>(text, { columns: true, skip_empty_lines: true, relax_column_count: true });

  if (state === 'JobComplete' || state === 'Failed') {
    for (const row of parseCsv(await client.getIngestResults(job.id, 'successfulResults'))) {
      const ref = take(row);
      const id = row['sf__Id'] ?? '';
      if (ref !== undefined) outcomes.push({ ref, ok: true, remoteId: id, created: row['sf__Created'] === 'true' });
    }
    for (const row of parseCsv(await client.getIngestResults(job.id, 'failedResults'))) {
      const ref = take(row);
      if (ref === undefined) continue;
      const detail = parseBulkError(row['sf__Error'] ?? '');
      outcomes.push({ ref, ok: false, error: classifyRecordError([detail], { object, record: ref }) });
    }
  }
  // Unprocessed rows (job failed or aborted before reaching them) and anything unmatched: retry later.
  const leftover = new CrmhubError(
    'transient',
    `Bulk API 2.0 job ${job.id} ended ${state}${errorMessage ? `: ${errorMessage}` : ''} without a result for this record`,
    { code: state === 'JobComplete' ? 'BULK_RESULT_MISSING' : 'BULK_JOB_FAILED', context: { connector: 'salesforce', object, job: job.id } },
  );
  for (const refs of pending.values()) for (const ref of refs) outcomes.push({ ref, ok: false, error: leftover });
  return outcomes;
}
