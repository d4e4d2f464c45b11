/**
 * Pipedrive connector benchmark against the Pipedrive sandbox, counted from `/_sandbox/stats`
 * (issue 8 targets):
 * - with 5,000 persons already linked (ids known), API calls per 1,000 updates through the engine's
 *   path — one `readByIds` per batch of 100 (the engine reads linked records before writing) plus one
 *   PATCH per record: target ≤ 1,010;
 * - API calls per 1,000 first-time records (one exact email search + one POST each): target ≤ 2,000;
 * - how much of the burst ceiling the updates used, counted where the limit is enforced: the
 *   sandbox's burst is 80 per 2 s (Pipedrive's api_token default) during the updates; N calls under
 *   a rolling window of L per W span at least (⌈N/L⌉ − 1)·W from the first accepted call to the
 *   last, so ideal span ÷ the span the sandbox saw is ≤ 1.0 (1.0 = every window full the moment it
 *   opened); target ≥ 0.90 (within 10 % of the ceiling). Beside it, the most calls the sandbox
 *   accepted in any 2-s window ÷ the burst, which is ≤ 1.0 by construction (over-limit calls are
 *   answered 429 and counted in `rate_limited_429s`).
 *   Why 80 and not more: the client and the sandbox process ≈ 100–110 calls/s on a busy 2-core
 *   machine, so at 200 per 2 s (100/s) the machine, not the pacing, set the pace, and the figure
 *   swung with machine load (1.05–1.18 as time ÷ ideal). The pacer counts each call from its answer
 *   (it cannot see when the CRM stamped it), so each window turn still costs one answer's latency:
 *   that, over 2 s per turn, is what keeps the share under 1.0.
 *   First-time records run at 200 per 2 s (only their call counts are targets).
 * Run: `node bin/run-ts.mjs bench/pipedrive-bench.ts [--json]` (or `npm run bench -- --only pipedrive-bench`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PipedriveConnector } from '../connectors/pipedrive/pipedrive-connector.ts';
import { startPipedriveSandbox } from '../connectors/pipedrive/sandbox/index.ts';
import type { AcceptedCalls } from '../connectors/pipedrive/sandbox/limits.ts';
import type { WriteItem, WriteOutcome } from '../src/connector-kit/connector.ts';

interface Stats {
  calls: Record<string, number>;
  totalCalls: number;
  rateLimited: number;
}

const LINKED = 5_000;
const UPDATES = 1_000;
const NEW_RECORDS = 1_000;
const BATCH = 100;
/** Burst during the updates (the figure under test), and during the first-time records. */
const BURST = 80;
const FIRST_TIME_BURST = 200;
const WINDOW_MS = 2_000;
const SEARCH_BURST = 100;

/** `--serve-sandbox`: this file run as the sandbox process (prints its credentials as JSON). */
async function serveSandbox(): Promise<void> {
  const sb = await startPipedriveSandbox({ port: 0, limits: { burst: BURST, windowMs: WINDOW_MS, searchBurst: SEARCH_BURST, dailyTokens: 10_000_000 } });
  process.stdout.write(`${JSON.stringify(sb.credentials)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void sb.close().then(() => process.exit(0)));
}

/**
 * The sandbox runs in its own process, as a real CRM is remote: in one process the client's and
 * the sandbox's work share an event loop and answers come late for reasons no real account has.
 */
async function spawnSandbox(): Promise<{ credentials: Record<string, string>; child: ChildProcess }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const child = spawn(process.execPath, [path.join(here, '..', 'bin/run-ts.mjs'), fileURLToPath(import.meta.url), '--serve-sandbox'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on('exit', (code) => reject(new TypeError(`sandbox exited with ${code ?? 'signal'}`)));
  });
  return { credentials: JSON.parse(line) as Record<string, string>, child };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const { credentials, child } = await spawnSandbox();
  const sb = { baseUrl: credentials['baseUrl']!, credentials, close: () => Promise.resolve(void child.stdin?.end()) };
  const stats = async (): Promise<Stats> => (await (await fetch(`${sb.baseUrl}/_sandbox/stats`)).json()) as Stats;
  /** The sandbox's own accounting of the requests its burst window accepted since `since` (ms epoch). */
  const accepted = async (since: number): Promise<AcceptedCalls> =>
    ((await (await fetch(`${sb.baseUrl}/_sandbox/pipedrive?since=${since}`)).json()) as { burstWindow: AcceptedCalls }).burstWindow;
  const control = async (route: string, body: unknown) => {
    await fetch(`${sb.baseUrl}/_sandbox/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  };
  try {
    await control('seed', { object: 'organizations', count: 200 });
    await control('seed', { object: 'persons', count: LINKED });
    const connector = new PipedriveConnector({ baseUrl: sb.baseUrl, apiToken: sb.credentials['apiToken']!, burst: BURST, windowMs: WINDOW_MS, searchBurst: SEARCH_BURST });
    await connector.describe('persons'); // field names → keys, once per TTL, not per record
    // Let the window empty so the timed run starts from a fresh 2-second window.
    await new Promise((r) => setTimeout(r, WINDOW_MS + 100));

    // 1. Updates of linked records: the engine's batches of 100, sent concurrently.
    const ids = Array.from({ length: UPDATES }, (_, i) => String(1 + ((i * 7) % LINKED)));
    const unique = [...new Set(ids)];
    const before = await stats();
    // Same machine, same clock: the sandbox stamps acceptances with Date.now() too.
    const since = Date.now();
    const t0 = performance.now();
    const batches: Promise<WriteOutcome[]>[] = [];
    for (let i = 0; i < unique.length; i += BATCH) {
      const chunk = unique.slice(i, i + BATCH);
      batches.push(
        (async () => {
          await connector.readByIds('persons', chunk);
          const items: WriteItem[] = chunk.map((id, k) => ({ ref: `u${i + k}`, remoteId: id, fields: { Plan: (i + k) % 2 ? 'pro' : 'enterprise', 'Product usage score': (i + k) % 97, 'Engagement score': (i + k) % 89 } }));
          return connector.write('persons', items);
        })(),
      );
    }
    const updateOutcomes = (await Promise.all(batches)).flat();
    const updateMs = performance.now() - t0;
    const afterUpdates = await stats();
    const updateCalls = afterUpdates.totalCalls - before.totalCalls;
    const updateOk = updateOutcomes.filter((o) => o.ok).length;
    const acc = await accepted(since);
    const idealSpan = (Math.ceil(acc.calls / BURST) - 1) * WINDOW_MS;
    const span = (acc.lastAt ?? 0) - (acc.firstAt ?? 0);

    // The first-time records need only their call counts: a higher burst keeps the run short. A
    // connector configured for it (as for an account on that plan): one told 80 would learn 200 only
    // from a non-search answer, and here every search queued ahead of the creates spends the window.
    await control('config', { rateLimit: { burst: FIRST_TIME_BURST } });
    const firstTimeConnector = new PipedriveConnector({ baseUrl: sb.baseUrl, apiToken: sb.credentials['apiToken']!, burst: FIRST_TIME_BURST, windowMs: WINDOW_MS, searchBurst: SEARCH_BURST });
    await firstTimeConnector.describe('persons');
    const beforeCreates = await stats();

    // 2. First-time records: search by email, then create.
    await new Promise((r) => setTimeout(r, WINDOW_MS + 100));
    const t1 = performance.now();
    const created: Promise<WriteOutcome[]>[] = [];
    for (let i = 0; i < NEW_RECORDS; i += BATCH) {
      const items: WriteItem[] = Array.from({ length: Math.min(BATCH, NEW_RECORDS - i) }, (_, k) => {
        const n = i + k;
        return { ref: `n${n}`, upsertKey: { field: 'crmhub id', value: `prf_bench_${n}` }, fields: { first_name: 'Bench', last_name: `New ${n}`, email: `bench.new.${n}@example.com`, Plan: 'starter' } };
      });
      created.push(firstTimeConnector.write('persons', items));
    }
    const createOutcomes = (await Promise.all(created)).flat();
    const createMs = performance.now() - t1;
    const afterCreates = await stats();
    const createCalls = afterCreates.totalCalls - beforeCreates.totalCalls;

    const figures = {
      linked_persons: LINKED,
      calls_per_1000_updates: Math.round((updateCalls / unique.length) * 1000),
      updates_ok: updateOk,
      update_calls: updateCalls,
      update_seconds: Number((updateMs / 1000).toFixed(2)),
      update_throughput_rps: Number((updateCalls / (updateMs / 1000)).toFixed(1)),
      burst_ceiling_rps: BURST / (WINDOW_MS / 1000),
      update_accepted_calls: acc.calls,
      update_span_seconds: Number((span / 1000).toFixed(2)),
      update_ideal_span_seconds: idealSpan / 1000,
      update_share_of_burst_ceiling: span > 0 ? Number((idealSpan / span).toFixed(3)) : null,
      update_peak_window_vs_burst: Number((acc.peakInWindow / BURST).toFixed(3)),
      calls_per_1000_first_time: Math.round((createCalls / NEW_RECORDS) * 1000),
      first_time_ok: createOutcomes.filter((o) => o.ok && o.created).length,
      first_time_seconds: Number((createMs / 1000).toFixed(2)),
      searches: (afterCreates.calls['GET /api/v2/persons/search'] ?? 0) - (beforeCreates.calls['GET /api/v2/persons/search'] ?? 0),
      rate_limited_429s: afterCreates.rateLimited,
    };
    const targets = {
      calls_per_1000_updates: '<= 1010',
      calls_per_1000_first_time: '<= 2000',
      update_share_of_burst_ceiling: '>= 0.90',
      update_peak_window_vs_burst: '<= 1.0',
    };
    if (json) process.stdout.write(`${JSON.stringify({ scenario: 'pipedrive-bench', figures, targets })}\n`);
    else {
      for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(28)} ${String(v)}\n`);
      process.stdout.write(`targets: ${JSON.stringify(targets)}\n`);
    }
  } finally {
    await sb.close();
  }
}

if (process.argv.includes('--serve-sandbox')) await serveSandbox();
else await main();
