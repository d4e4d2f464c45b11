/**
 * HubSpot connector benchmark against the HubSpot sandbox, counted from `/_sandbox/stats`:
 * - API calls per 1,000 records pushed through the connector's write path (batch upsert by
 *   email, 100 per call) for 10,000 profiles: target ≤ 10 (the batch minimum) + 1 for lookups;
 *   and for a second round of changes to the same records by id (batch update);
 * - push time of 10,000 records when the rate limit binds (sandbox set to 50 requests per 10 s,
 *   calls paced by a rolling-window pacer at that limit, as the engine's limiter does), as a
 *   ratio to the time that limit allows (whole windows plus one window's service time): ≤ 1.10;
 * - initial pull of the 10,000 contacts through search (5 per second): calls and time ratio.
 * Run: `node bin/run-ts.mjs bench/hubspot-bench.ts [--json]` (or `npm run bench -- --only hubspot-bench`).
 */
import hubspot from '../connectors/hubspot/index.ts';
import type { HubSpotConnector } from '../connectors/hubspot/hubspot-connector.ts';
import type { WriteItem, WriteOutcome } from '../src/connector-kit/connector.ts';

interface Stats {
  calls: Record<string, number>;
  totalCalls: number;
  rateLimited: number;
}

async function stats(baseUrl: string): Promise<Stats> {
  return (await (await fetch(`${baseUrl}/_sandbox/stats`)).json()) as Stats;
}

async function control(baseUrl: string, route: string, body: unknown): Promise<void> {
  await fetch(`${baseUrl}/_sandbox/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const PROFILES = 10_000;
const BATCH = 100;

function profiles(prefix: string): WriteItem[] {
  return Array.from({ length: PROFILES }, (_, i) => ({
    ref: `${prefix}-${i}`,
    upsertKey: { field: 'email', value: `${prefix}.${i}@example.com` },
    fields: { firstname: 'Bench', lastname: `Person ${i}`, crmhub_plan: 'pro', crmhub_product_usage_score: i % 100, crmhub_audiences: ['trial_users'] },
  }));
}

/**
 * A rolling-window pacer like the engine's limiter: at most `limit` calls start in any `windowMs`
 * span (HubSpot's TEN_SECONDLY_ROLLING), at most `concurrent` in flight.
 */
function rollingPacer(limit: number, windowMs: number, concurrent: number): <T>(fn: () => Promise<T>) => Promise<T> {
  const starts: number[] = [];
  let inFlight = 0;
  const queue: (() => void)[] = [];
  // A call is stamped when it completes: the CRM counted it on arrival, which is no later than that.
  let timer: NodeJS.Timeout | undefined;
  const pump = (): void => {
    while (queue.length > 0 && inFlight < concurrent) {
      const now = Date.now();
      while (starts.length > 0 && (starts[0] ?? 0) <= now - windowMs) starts.shift();
      if (starts.length + inFlight >= limit) {
        if (starts.length > 0 && !timer) {
          timer = setTimeout(() => {
            timer = undefined;
            pump();
          }, (starts[0] ?? now) + windowMs - now + 1);
        }
        return;
      }
      inFlight++;
      queue.shift()?.();
    }
  };
  return <T>(fn: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        fn().then(resolve, reject).finally(() => {
          inFlight--;
          starts.push(Date.now());
          pump();
        });
      });
      pump();
    });
}

async function pushAll(connector: HubSpotConnector, items: WriteItem[], schedule: <T>(fn: () => Promise<T>) => Promise<T>): Promise<WriteOutcome[]> {
  const batches: WriteItem[][] = [];
  for (let i = 0; i < items.length; i += BATCH) batches.push(items.slice(i, i + BATCH));
  const results = await Promise.all(batches.map((b) => schedule(() => connector.write('contacts', b))));
  return results.flat();
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const sandbox = await hubspot.startSandbox({ port: 0 });
  const connector = hubspot.fromEnv(sandbox.env) as HubSpotConnector;
  const direct = <T>(fn: () => Promise<T>): Promise<T> => fn();
  try {
    // 1. Calls per 1,000 records: 10,000 new profiles upserted by email, then a change to each by id.
    await control(sandbox.baseUrl, 'config', { rateLimit: { tenSecondly: 1_000_000 } });
    const s0 = await stats(sandbox.baseUrl);
    const first = await pushAll(connector, profiles('p'), direct);
    const s1 = await stats(sandbox.baseUrl);
    const upsertCallsPer1000 = ((s1.totalCalls - s0.totalCalls) / PROFILES) * 1000;
    const second: WriteItem[] = first.map((o, i) => ({ ref: `u-${i}`, ...(o.ok ? { remoteId: o.remoteId } : {}), fields: { crmhub_engagement_score: i % 50 } }));
    await pushAll(connector, second, direct);
    const s2 = await stats(sandbox.baseUrl);
    const updateCallsPer1000 = ((s2.totalCalls - s1.totalCalls) / PROFILES) * 1000;
    const failures = first.filter((o) => !o.ok).length;

    // 2. Rate-bound push: 50 requests per rolling 10 s; a limiter from the declared limits paces calls.
    const limit = 50;
    const windowMs = 10_000;
    await control(sandbox.baseUrl, 'config', { rateLimit: { tenSecondly: limit } });
    await new Promise((resolve) => setTimeout(resolve, windowMs)); // let the window empty
    const pace = rollingPacer(limit, windowMs, connector.declaration.limits.maxConcurrent);
    const s3 = await stats(sandbox.baseUrl);
    const t0 = performance.now();
    // Time the first window's calls take to run unthrottled: the limit cannot hide that part.
    let firstWindowMs = 0;
    let done = 0;
    const timed = <T>(fn: () => Promise<T>): Promise<T> =>
      pace(fn).finally(() => {
        if (++done === limit) firstWindowMs = performance.now() - t0;
      });
    const paced = await pushAll(connector, profiles('r'), timed);
    const pushMs = performance.now() - t0;
    const s4 = await stats(sandbox.baseUrl);
    const calls = s4.totalCalls - s3.totalCalls;
    // A rolling window lets `limit` calls through at once and the rest one window later each; the
    // last window's calls then need the same service time the first window's did.
    const allowedMs = Math.max(0, Math.ceil(calls / limit) - 1) * windowMs + firstWindowMs;

    // 3. Initial pull of the first 10,000 contacts through search at the declared 5 per second.
    await control(sandbox.baseUrl, 'config', { rateLimit: { tenSecondly: 1_000_000 } });
    const search = connector.declaration.limits.search ?? { requestsPerWindow: 5, windowMs: 1000 };
    const searchPace = rollingPacer(search.requestsPerWindow, search.windowMs, 1);
    const s5 = await stats(sandbox.baseUrl);
    const t1 = performance.now();
    let cursor: string | null = null;
    let pulled = 0;
    for (;;) {
      const page = await searchPace(() => connector.readChanges('contacts', cursor, { pageSize: 200, fields: ['email', 'firstname', 'lastname', 'crmhub_plan'] }));
      pulled += page.records.length;
      cursor = page.nextCursor ?? cursor;
      if (page.done) break;
    }
    const pullMs = performance.now() - t1;
    const s6 = await stats(sandbox.baseUrl);
    const searchCalls = s6.calls['POST /crm/v3/objects/:objectType/search'] ?? 0;
    const pullAllowedMs = Math.max(1, Math.ceil((s6.totalCalls - s5.totalCalls) / search.requestsPerWindow) - 1) * search.windowMs;

    const result = {
      scenario: 'hubspot-bench',
      figures: {
        profiles: PROFILES,
        upsert_calls_per_1000: upsertCallsPer1000,
        update_calls_per_1000: updateCallsPer1000,
        push_failures: failures + paced.filter((o) => !o.ok).length,
        ratebound_calls: calls,
        ratebound_429s: s4.rateLimited - s3.rateLimited,
        ratebound_push_seconds: Number((pushMs / 1000).toFixed(2)),
        ratebound_allowed_seconds: Number((allowedMs / 1000).toFixed(2)),
        ratebound_time_ratio: Number((pushMs / allowedMs).toFixed(3)),
        pull_records: pulled,
        pull_calls: s6.totalCalls - s5.totalCalls,
        pull_search_calls: searchCalls,
        pull_seconds: Number((pullMs / 1000).toFixed(2)),
        pull_time_ratio: Number((pullMs / pullAllowedMs).toFixed(3)),
      },
      targets: { upsert_calls_per_1000: '<= 11', update_calls_per_1000: '<= 11', ratebound_time_ratio: '<= 1.10', pull_time_ratio: '<= 1.10' },
    };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const [k, v] of Object.entries(result.figures)) process.stdout.write(`${k.padEnd(30)} ${v}\n`);
  } finally {
    await sandbox.close();
  }
}

await main();
