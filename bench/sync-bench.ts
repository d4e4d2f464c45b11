/**
 * Sync engine bench (issue 5): against the in-memory test connector with a fixed, enforced rate
 * limit, measures
 *  - throughput as a share of the limit's ceiling (target ≥ 95%) and 429s as a share of calls
 *    (target < 1%);
 *  - write batching: calls per 1,000 records (target: 1,000 / max batch size), for creates and for
 *    updates (updates also read the linked records first — the lost-update guard — unless
 *    `--no-read-before-write`).
 *
 * `node bin/run-ts.mjs bench/sync-bench.ts [--json] [--quick] [--records N] [--rate R] [--window-ms W] [--batch B]`
 */
import type { Connector } from '../src/connector-kit/connector.ts';
import { MemoryConnector } from '../src/connector-kit/testing/memory-connector.ts';
import type { ProfileId } from '../src/core/types.ts';
import { openStore } from '../src/store/open-store.ts';
import { SyncEngine } from '../src/sync/sync-engine.ts';
import type { SyncObjectMapping } from '../src/sync/sync-types.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const json = process.argv.includes('--json');
const records = arg('records', process.argv.includes('--quick') ? 1_000 : 3_000);
const rate = arg('rate', 20);
const windowMs = arg('window-ms', 1_000);
const batch = arg('batch', 10);
const readBeforeWrite = !process.argv.includes('--no-read-before-write');

const mapping: SyncObjectMapping = {
  connector: 'bench',
  object: 'contacts',
  profileKind: 'person',
  version: 'bench',
  tieBreaker: 'profile',
  match: [{ remote: 'crmhub_id', identifier: 'profile_id' }],
  onNoMatch: 'create',
  fields: [
    { profileKey: 'email', remoteField: 'email', toProfile: true, toRemote: true, rule: 'latest_wins', onEmpty: 'ignore' },
    { profileKey: 'plan', remoteField: 'crmhub_plan', toProfile: true, toRemote: true, rule: 'prefer_profile', onEmpty: 'ignore' },
  ],
};

interface Phase {
  phase: string;
  records: number;
  calls: number;
  writeCalls: number;
  readCalls: number;
  rateLimited: number;
  elapsedMs: number;
  /** Calls made ÷ calls the limit allows in the elapsed time. */
  shareOfCeiling: number;
  rateLimitedShare: number;
  writeCallsPer1000: number;
  callsPer1000: number;
}

async function main(): Promise<void> {
  const store = await openStore('sqlite::memory:');
  const crm = new MemoryConnector({ slug: 'bench', maxBatchSize: batch, enforceLimits: true, limits: { requestsPerWindow: rate, windowMs, maxConcurrent: 4 } });
  const engine = new SyncEngine({ store, connectors: new Map<string, Connector>([['bench', crm]]), mappings: { list: () => [mapping], get: () => mapping }, readBeforeWrite });
  const ids: ProfileId[] = [];
  const phases: Phase[] = [];

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
    const before = { total: crm.calls.total ?? 0, write: crm.calls.write ?? 0, read: crm.calls.readByIds ?? 0, limited: crm.calls.rateLimited ?? 0 };
    const started = Date.now();
    await engine.push('bench');
    const elapsedMs = Date.now() - started;
    const calls = (crm.calls.total ?? 0) - before.total;
    const writeCalls = (crm.calls.write ?? 0) - before.write;
    const readCalls = (crm.calls.readByIds ?? 0) - before.read;
    const rateLimited = (crm.calls.rateLimited ?? 0) - before.limited;
    const accepted = calls - rateLimited;
    // The limit allows `rate` calls per window; minTime spacing means no initial burst is assumed.
    const ceiling = (rate * elapsedMs) / windowMs;
    phases.push({
      phase,
      records,
      calls,
      writeCalls,
      readCalls,
      rateLimited,
      elapsedMs,
      shareOfCeiling: Math.min(1, accepted / ceiling),
      rateLimitedShare: calls === 0 ? 0 : rateLimited / calls,
      writeCallsPer1000: (writeCalls * 1000) / records,
      callsPer1000: (calls * 1000) / records,
    });
  };

  await measure('create', () => 'free');
  await measure('update', (i) => (i % 2 === 0 ? 'pro' : 'starter'));
  await engine.close();
  await store.close();

  if (json) {
    // bench/run.ts format: one object on the last line, flat figures, targets beside them.
    const figures: Record<string, number | string | boolean> = { records, limit: `${rate} calls / ${windowMs} ms`, batch, read_before_write: readBeforeWrite, batch_minimum_write_calls_per_1000: 1000 / batch };
    const targets: Record<string, string> = {};
    for (const p of phases) {
      figures[`${p.phase}_share_of_ceiling`] = Math.round(p.shareOfCeiling * 1000) / 1000;
      figures[`${p.phase}_429_share_of_calls`] = Math.round(p.rateLimitedShare * 10_000) / 10_000;
      figures[`${p.phase}_write_calls_per_1000`] = Math.round(p.writeCallsPer1000 * 10) / 10;
      figures[`${p.phase}_all_calls_per_1000`] = Math.round(p.callsPer1000 * 10) / 10;
      targets[`${p.phase}_share_of_ceiling`] = '>= 0.95';
      targets[`${p.phase}_429_share_of_calls`] = '< 0.01';
      targets[`${p.phase}_write_calls_per_1000`] = `<= ${1000 / batch}`;
    }
    process.stdout.write(`${JSON.stringify({ scenario: 'sync-bench', figures, targets })}\n`);
    return;
  }
  process.stdout.write(`sync bench: ${records} records, limit ${rate} calls / ${windowMs} ms, batch ${batch}, read-before-write ${readBeforeWrite}\n`);
  for (const p of phases) {
    process.stdout.write(
      `${p.phase.padEnd(7)} ${p.elapsedMs} ms  calls ${p.calls} (writes ${p.writeCalls}, reads ${p.readCalls})  ` +
        `share of ceiling ${(p.shareOfCeiling * 100).toFixed(1)}%  429s ${(p.rateLimitedShare * 100).toFixed(2)}%  ` +
        `write calls / 1000 records ${p.writeCallsPer1000.toFixed(1)} (minimum ${(1000 / batch).toFixed(1)})  all calls / 1000 ${p.callsPer1000.toFixed(1)}\n`,
    );
  }
}

await main();
