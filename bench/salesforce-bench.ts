/**
 * Salesforce connector benchmark against the sandbox, counted from `/_sandbox/stats`:
 * - API calls per 1,000 records pushed through sObject Collections (target ≤ 5);
 * - a 50,000-record load through Bulk API 2.0: calls besides polling (target: constant, 5 per
 *   job — create, upload, close, successfulResults, failedResults — plus polls).
 * Run: `node bin/run-ts.mjs bench/salesforce-bench.ts [--json]` (or `npm run bench -- --only salesforce-bench`).
 */
import salesforce from '../connectors/salesforce/index.ts';
import type { SalesforceConnector } from '../connectors/salesforce/salesforce-connector.ts';
import type { WriteItem } from '../src/connector-kit/connector.ts';

interface Stats {
  calls: Record<string, number>;
  totalCalls: number;
}

async function stats(baseUrl: string): Promise<Stats> {
  const res = await fetch(`${baseUrl}/_sandbox/stats`);
  return (await res.json()) as Stats;
}

function items(prefix: string, count: number): WriteItem[] {
  return Array.from({ length: count }, (_, i) => ({
    ref: `${prefix}-${i}`,
    upsertKey: { field: 'Crmhub_Id__c', value: `${prefix}_${i}` },
    fields: { LastName: `Bench${i}`, FirstName: 'Bench', Email: `${prefix}.${i}@example.com` },
  }));
}

function diff(before: Stats, after: Stats, match: (key: string) => boolean): number {
  return Object.keys(after.calls)
    .filter(match)
    .reduce((n, k) => n + (after.calls[k] ?? 0) - (before.calls[k] ?? 0), 0);
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const sandbox = await salesforce.startSandbox({ port: 0 });
  const connector = salesforce.fromEnv({ ...sandbox.env, SALESFORCE_BULK_THRESHOLD: '2000' }) as SalesforceConnector;
  try {
    // 1,000 records through collections: the engine hands the connector batches of maxBatchSize (200).
    const pushed = items('coll', 1_000);
    const s0 = await stats(sandbox.baseUrl);
    let failures = 0;
    for (let i = 0; i < pushed.length; i += 200) {
      const outcomes = await connector.write('Contact', pushed.slice(i, i + 200));
      failures += outcomes.filter((o) => !o.ok).length;
    }
    const s1 = await stats(sandbox.baseUrl);
    const callsPer1000 = s1.totalCalls - s0.totalCalls;

    // 50,000 records in one Bulk API 2.0 load.
    const load = items('bulk', 50_000);
    const outcomes = await connector.write('Contact', load);
    const s2 = await stats(sandbox.baseUrl);
    const bulkTotal = s2.totalCalls - s1.totalCalls;
    const polls = diff(s1, s2, (k) => k.startsWith('GET') && /\/jobs\/ingest\/[^/]+$/.test(k));
    const bulkFailures = outcomes.filter((o) => !o.ok).length;

    const result = {
      scenario: 'salesforce-bench',
      figures: {
        collections_records: pushed.length,
        collections_calls_per_1000: callsPer1000,
        collections_failures: failures,
        bulk_records: load.length,
        bulk_calls_total: bulkTotal,
        bulk_calls_without_polling: bulkTotal - polls,
        bulk_polls: polls,
        bulk_outcomes: outcomes.length,
        bulk_failures: bulkFailures,
      },
      targets: { collections_calls_per_1000: '<= 5', bulk_calls_without_polling: 'constant (5 per job)' },
    };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      for (const [k, v] of Object.entries(result.figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
    }
  } finally {
    await connector.close();
    await sandbox.close();
  }
}

await main();
