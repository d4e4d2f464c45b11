/**
 * Sync engine bench (issue 5): against the in-memory test connector with a fixed, enforced rate
 * limit, measures
 *  - throughput as a share of the limit's ceiling (target ≥ 95%) and 429s as a share of calls
 *    (target < 1%);
 *  - write batching: calls per 1,000 records (target: 1,000 / max batch size), for creates and for
 *    updates. Updates run behind the lost-update guard (`--read-before-write pull|ids|off`, default
 *    the engine's `pull`; `--no-read-before-write` = `off`).
 *
 * How calls are counted: every call the connector sees during a push is counted — writes, and the
 * guard's reads (`readByIds` batches for `ids`; every `readChanges` page for `pull`, including the
 * last, usually empty one). Target: the batch minimum plus one guard pull call per push round
 * (`all_calls_per_1000 <= 1000 / batch + 1000 / records`); that call is ≤ 1% of the writes when a
 * round makes 100 write calls or more (0.1% at batch 10, 1% at batch 100 and 2% at batch 200 for
 * 10,000 records). `*_guard_share_of_writes` reports it.
 *
 * Between the phases the bench pulls once, as the scheduled pull (or webhooks) of a deployment
 * would, reading back the creates' own writes; that read is reported as `*_readback_pull_calls`,
 * outside the phases and their targets — every guard kind pays it, and it gives the `pull` guard
 * its saved cursor. The engine clock is then moved past the freshness window, so the update round
 * pays for its own guard pull rather than riding on the read-back. After the update phase the
 * echoes of the updates are read back too (reported, not targeted), so the whole cost of each
 * guard kind is visible.
 *
 * `node bin/run-ts.mjs bench/sync-bench.ts [--json] [--quick] [--records N] [--rate R] [--window-ms W]
 *  [--batch B] [--read-before-write pull|ids|off] [--no-read-before-write] [--freshness-ms F]
 *  [--store memory|file|postgres://…]`
 *
 * `--store file` uses a fresh SQLite file (WAL, synchronous=FULL) in a temporary folder;
 * `--store postgres://…` a fresh schema, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Connector } from '../src/connector-kit/connector.ts';
import { MemoryConnector } from '../src/connector-kit/testing/memory-connector.ts';
import type { ProfileId } from '../src/core/types.ts';
import { openStore } from '../src/store/open-store.ts';
import type { ProfileStore } from '../src/store/port.ts';
import { PostgresStore } from '../src/store/postgres-store.ts';
import {
  DEFAULT_READ_BEFORE_WRITE_FRESHNESS_MS,
  READ_BEFORE_WRITE_KINDS,
  type ReadBeforeWrite,
} from '../src/sync/engine-context.ts';
import { SyncEngine } from '../src/sync/sync-engine.ts';
import type { SyncObjectMapping } from '../src/sync/sync-types.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const json = process.argv.includes('--json');
const records = arg('records', process.argv.includes('--quick') ? 1_000 : 3_000);
const rate = arg('rate', 20);
const windowMs = arg('window-ms', 1_000);
const batch = arg('batch', 10);
const freshnessMs = arg('freshness-ms', DEFAULT_READ_BEFORE_WRITE_FRESHNESS_MS);
const guardArg = process.argv.includes('--no-read-before-write')
  ? 'off'
  : (textArg('read-before-write') ?? 'pull');
if (!READ_BEFORE_WRITE_KINDS.includes(guardArg as ReadBeforeWrite)) {
  process.stderr.write(`--read-before-write must be one of ${READ_BEFORE_WRITE_KINDS.join(', ')}\n`);
  process.exit(2);
}
const guard = guardArg as ReadBeforeWrite;
const storeArg = textArg('store') ?? 'memory';

const mapping: SyncObjectMapping = {
  connector: 'bench',
  object: 'contacts',
  profileKind: 'person',
  version: 'bench',
  tieBreaker: 'profile',
  match: [{ remote: 'crmhub_id', identifier: 'profile_id' }],
  onNoMatch: 'create',
  fields: [
    {
      profileKey: 'email',
      remoteField: 'email',
      toProfile: true,
      toRemote: true,
      rule: 'latest_wins',
      onEmpty: 'ignore',
    },
    {
      profileKey: 'plan',
      remoteField: 'crmhub_plan',
      toProfile: true,
      toRemote: true,
      rule: 'prefer_profile',
      onEmpty: 'ignore',
    },
  ],
};

interface Phase {
  phase: string;
  records: number;
  calls: number;
  writeCalls: number;
  /** Reads of the lost-update guard: `readByIds` batches and `readChanges` pages. */
  guardCalls: number;
  rateLimited: number;
  elapsedMs: number;
  /** Calls made ÷ calls the limit allows in the elapsed time. */
  shareOfCeiling: number;
  rateLimitedShare: number;
  writeCallsPer1000: number;
  callsPer1000: number;
  /** Calls of the read-back pull after the phase (not part of the phase). */
  readbackCalls: number;
}

/** The store under test and how to dispose of it. */
async function benchStore(): Promise<{ store: ProfileStore; label: string; dispose: () => Promise<void> }> {
  if (storeArg === 'memory')
    return {
      store: await openStore('sqlite::memory:'),
      label: 'sqlite memory',
      dispose: () => Promise.resolve(),
    };
  if (storeArg === 'file') {
    const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-sync-bench-'));
    const store = await openStore(`sqlite:${path.join(dir, 'bench.db')}`);
    return {
      store,
      label: 'sqlite file (WAL, synchronous=FULL)',
      dispose: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    };
  }
  if (storeArg.startsWith('postgres://') || storeArg.startsWith('postgresql://')) {
    const schema = `sync_bench_${randomBytes(4).toString('hex')}`;
    const store = await openStore(storeArg, { schema });
    return {
      store,
      label: 'postgres',
      async dispose() {
        const admin = new PostgresStore({ connectionString: storeArg, schema });
        await admin.dropSchema();
        await admin.close();
      },
    };
  }
  process.stderr.write('--store must be memory, file or a postgres:// URL\n');
  process.exit(2);
}

async function main(): Promise<void> {
  const { store, label, dispose } = await benchStore();
  let clockOffset = 0;
  const crm = new MemoryConnector({
    slug: 'bench',
    maxBatchSize: batch,
    enforceLimits: true,
    limits: { requestsPerWindow: rate, windowMs, maxConcurrent: 4 },
  });
  const engine = new SyncEngine({
    store,
    connectors: new Map<string, Connector>([['bench', crm]]),
    mappings: { list: () => [mapping], get: () => mapping },
    readBeforeWrite: guard,
    readBeforeWriteFreshnessMs: freshnessMs,
    now: () => Date.now() + clockOffset,
  });
  const ids: ProfileId[] = [];
  const phases: Phase[] = [];
  const snapshot = (): Record<string, number> => ({ ...crm.calls });
  const delta = (before: Record<string, number>, key: string): number =>
    (crm.calls[key] ?? 0) - (before[key] ?? 0);

  const measure = async (phase: string, change: (i: number) => string): Promise<void> => {
    await store.transaction(async (tx) => {
      for (let i = 0; i < records; i++) {
        const at = new Date().toISOString();
        if (ids.length <= i) ids.push((await tx.createProfile('person', at)).id);
        await tx.writeTraits(ids[i]!, [
          { key: 'email', value: `bench${i}@example.com`, source: 'event', changedAt: at },
          { key: 'plan', value: change(i), source: 'event', changedAt: at },
        ]);
      }
      await engine.onProfilesChanged(tx, ids);
    });
    const before = snapshot();
    const started = Date.now();
    await engine.push('bench');
    const elapsedMs = Date.now() - started;
    const calls = delta(before, 'total');
    const writeCalls = delta(before, 'write');
    const guardCalls = delta(before, 'readByIds') + delta(before, 'readChanges');
    const rateLimited = delta(before, 'rateLimited');
    const accepted = calls - rateLimited;
    // The limit allows `rate` calls per window; minTime spacing means no initial burst is assumed.
    const ceiling = (rate * elapsedMs) / windowMs;
    // Read back the phase's own writes, as the scheduled pull would; then let the freshness window
    // pass so the next round's guard pays for its own pull.
    const beforeReadback = snapshot();
    await engine.pull('bench', 'contacts');
    clockOffset += freshnessMs;
    phases.push({
      phase,
      records,
      calls,
      writeCalls,
      guardCalls,
      rateLimited,
      elapsedMs,
      shareOfCeiling: Math.min(1, accepted / ceiling),
      rateLimitedShare: calls === 0 ? 0 : rateLimited / calls,
      writeCallsPer1000: (writeCalls * 1000) / records,
      callsPer1000: (calls * 1000) / records,
      readbackCalls: delta(beforeReadback, 'total'),
    });
  };

  try {
    await measure('create', () => 'free');
    await measure('update', (i) => (i % 2 === 0 ? 'pro' : 'starter'));
  } finally {
    await engine.close();
    await store.close();
    await dispose();
  }

  const minimum = 1000 / batch;
  // The batch minimum plus one guard pull call for the push round (it reads one, usually empty, page).
  const allowed = Math.round((minimum + 1000 / records) * 100) / 100;
  if (json) {
    // bench/run.ts format: one object on the last line, flat figures, targets beside them.
    const figures: Record<string, number | string | boolean> = {
      records,
      limit: `${rate} calls / ${windowMs} ms`,
      batch,
      store: label,
      read_before_write: guard,
      freshness_ms: freshnessMs,
      batch_minimum_write_calls_per_1000: minimum,
    };
    const targets: Record<string, string> = {};
    for (const p of phases) {
      figures[`${p.phase}_share_of_ceiling`] = Math.round(p.shareOfCeiling * 1000) / 1000;
      figures[`${p.phase}_429_share_of_calls`] = Math.round(p.rateLimitedShare * 10_000) / 10_000;
      figures[`${p.phase}_write_calls_per_1000`] = Math.round(p.writeCallsPer1000 * 100) / 100;
      figures[`${p.phase}_guard_read_calls`] = p.guardCalls;
      figures[`${p.phase}_guard_share_of_writes`] =
        p.writeCalls === 0 ? 0 : Math.round((p.guardCalls / p.writeCalls) * 10_000) / 10_000;
      figures[`${p.phase}_all_calls_per_1000`] = Math.round(p.callsPer1000 * 100) / 100;
      figures[`${p.phase}_readback_pull_calls`] = p.readbackCalls;
      targets[`${p.phase}_share_of_ceiling`] = '>= 0.95';
      targets[`${p.phase}_429_share_of_calls`] = '< 0.01';
      targets[`${p.phase}_write_calls_per_1000`] = `<= ${minimum}`;
      targets[`${p.phase}_all_calls_per_1000`] =
        `<= ${allowed} (batch minimum + one guard pull call per push round)`;
    }
    process.stdout.write(`${JSON.stringify({ scenario: 'sync-bench', figures, targets })}\n`);
    return;
  }
  process.stdout.write(
    `sync bench: ${records} records, limit ${rate} calls / ${windowMs} ms, batch ${batch}, store ${label}, read-before-write ${guard} (freshness ${freshnessMs} ms)\n`,
  );
  for (const p of phases) {
    process.stdout.write(
      `${p.phase.padEnd(7)} ${p.elapsedMs} ms  calls ${p.calls} (writes ${p.writeCalls}, guard reads ${p.guardCalls})  ` +
        `share of ceiling ${(p.shareOfCeiling * 100).toFixed(1)}%  429s ${(p.rateLimitedShare * 100).toFixed(2)}%  ` +
        `write calls / 1000 records ${p.writeCallsPer1000.toFixed(2)} (minimum ${minimum.toFixed(1)})  all calls / 1000 ${p.callsPer1000.toFixed(2)} (target <= ${allowed})  ` +
        `then read-back pull ${p.readbackCalls} calls\n`,
    );
  }
}

await main();
