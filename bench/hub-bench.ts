/**
 * Whole-hub benchmark (issue 9): crmhub as `crmhub serve` runs it (composition root, webhook routes,
 * outbox workers, SQLite store) against the three CRM sandboxes, which run in a child process so
 * their memory and CPU never colour crmhub's figures. Measures
 *  - propagation latency p50/p99: a rep's edit in one CRM (`POST /_sandbox/edit`) → webhook → crmhub
 *    → the write confirmed in the other two CRMs (their shadows updated after a successful write);
 *    sandbox limits are raised far above the pace so no rate-limit wait is inside the figure;
 *  - peak RSS of crmhub while a full pull syncs N profiles from HubSpot into the store, each N in a
 *    fresh process, and the ratio peak(largest)/peak(smallest) (flat = streaming pages);
 *  - sync throughput as a share of Pipedrive's rate-limit ceiling (accepted calls / calls the
 *    sandbox's window allows in the elapsed time) while the outbox creates records there;
 *  - API calls per 1,000 records per CRM through the engine (pull and create) vs the batch minimum.
 *
 * `node bin/run-ts.mjs bench/hub-bench.ts [--json] [--quick] [--sizes 10000,30000,100000]`
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { z } from 'zod';
import { startServer, type RunningServer } from '../src/cli/commands/serve.ts';
import { startSandboxes } from '../src/cli/commands/sandbox.ts';
import { connectorsFromEnv, openRuntime, type Runtime } from '../src/cli/runtime.ts';
import { createSyncServeHook } from '../src/cli/serve-wiring.ts';
import { loadConfig } from '../src/config/load-config.ts';
import type { JsonValue, ProfileId } from '../src/core/types.ts';
import { PERSON_OBJECT } from '../src/demo/demo-data.ts';
import { SandboxControl, type SandboxStatsBody } from '../src/demo/sandbox-control.ts';
import { createLogger } from '../src/server/logger.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const SLUGS = ['hubspot', 'salesforce', 'pipedrive'] as const;
type Slug = (typeof SLUGS)[number];
const LAST_NAME: Record<Slug, string> = { hubspot: 'lastname', salesforce: 'LastName', pipedrive: 'last_name' };
/** Far above anything the bench sends: no rate-limit wait inside latency or memory figures. */
const GENEROUS: Record<Slug, Record<string, unknown>> = {
  hubspot: { rateLimit: { tenSecondly: 100_000, daily: 100_000_000, search: 10_000 } },
  salesforce: { rateLimit: {}, dailyQuota: 100_000_000 },
  pipedrive: { rateLimit: { burst: 100_000, windowMs: 2000, searchBurst: 10_000 }, dailyQuota: 100_000_000 },
};
/** The engine's own limiter for HubSpot, raised with the sandbox's (connector setting HUBSPOT_RATE_LIMIT_PER_10S). */
const HUBSPOT_ENGINE_LIMIT = '100000';
/** Pipedrive's ceiling for the throughput figure: its sandbox default burst (80 per 2 s). */
const PIPEDRIVE_CEILING = { burst: 80, windowMs: 2000, searchBurst: 10 };

/** The connector issues' targets for records pushed (issues 6, 7, 8). */
const CREATE_TARGET: Record<Slug, string> = {
  hubspot: '<= batch minimum + 1 (issue 6)',
  salesforce: '<= 5 at scale, = batch minimum (issue 7)',
  pipedrive: '<= 2000 first-time (issue 8)',
};
/** The engine's default pull page size (`SyncEngineOptions.pageSize`). */
const PULL_PAGE = 100;

const log = (line: string): void => {
  if (!json) process.stderr.write(`${line}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pct = (values: number[], p: number): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
};
const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

const sandboxInfo = z.array(z.object({ slug: z.enum(SLUGS), baseUrl: z.string(), env: z.record(z.string(), z.string()) }));
type SandboxInfo = z.infer<typeof sandboxInfo>;

/** `--serve-sandboxes`: this file as the sandbox process; one JSON line with URLs and env, then waits for stdin to close. */
async function serveSandboxes(): Promise<void> {
  const sandboxes = await startSandboxes({});
  process.stdout.write(`${JSON.stringify(sandboxes.map((s) => ({ slug: s.slug, baseUrl: s.baseUrl, env: s.env })))}\n`);
  process.stdin.resume();
  await new Promise<void>((resolve) => process.stdin.once('close', resolve));
  await Promise.allSettled(sandboxes.map((s) => s.close()));
  process.exit(0);
}

/** Spawns this file with `mode` args and resolves the first stdout line (parsed JSON). */
function spawnSelf(mode: string[], input?: string, nodeFlags: string[] = []): { child: ChildProcess; first: Promise<unknown>; done: Promise<number | null> } {
  const child = spawn(process.execPath, [...nodeFlags, path.join(root, 'bin/run-ts.mjs'), fileURLToPath(import.meta.url), ...mode], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  if (input !== undefined) child.stdin?.write(`${input}\n`);
  const first = new Promise<unknown>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      try {
        resolve(JSON.parse(line));
      } catch (error) {
        reject(error instanceof Error ? error : new TypeError(String(error)));
      }
    });
    child.once('exit', (code) => reject(new TypeError(`child ${mode.join(' ')} exited ${String(code)} before answering`)));
  });
  const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, first, done };
}

function settings(env: Record<string, string>, dbFile: string, extra: Record<string, string> = {}): ReturnType<typeof loadConfig> {
  return loadConfig(
    {
      ...env,
      HUBSPOT_RATE_LIMIT_PER_10S: HUBSPOT_ENGINE_LIMIT,
      CRMHUB_DATABASE_URL: `sqlite:${dbFile}`,
      CRMHUB_PORT: '0',
      CRMHUB_HOST: '127.0.0.1',
      CRMHUB_WRITE_KEYS: 'bench-write-key',
      CRMHUB_ADMIN_TOKEN: 'bench-admin-token',
      CRMHUB_MAPPINGS_DIR: path.join(root, 'mappings'),
      CRMHUB_LOG_LEVEL: 'error',
      ...extra,
    },
    null,
  );
}

/**
 * `--memory-step`: one full pull of every HubSpot contact into a fresh SQLite store, in a fresh
 * process; prints `{ profiles, peakRssMb, baseRssMb, durationMs, apiCalls }`. Input (stdin): the HubSpot env.
 */
async function memoryStep(): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  const line = await new Promise<string>((resolve) => rl.once('line', resolve));
  rl.close();
  const env = z.record(z.string(), z.string()).parse(JSON.parse(line));
  const dir = await mkdtemp(path.join(tmpdir(), 'crmhub-hubbench-mem-'));
  const withLimit = { ...env, HUBSPOT_RATE_LIMIT_PER_10S: HUBSPOT_ENGINE_LIMIT };
  const config = settings(env, path.join(dir, 'mem.db'));
  const logger = pino({ level: 'error' }, pino.destination(2));
  const runtime = await openRuntime({ config, env: withLimit, connectors: connectorsFromEnv(withLimit, logger), logger });
  collectGarbage();
  const baseRss = process.memoryUsage().rss;
  let peak = baseRss;
  let peakHeap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const t0 = Date.now();
  const counts = await runtime.engine.pull('hubspot', 'contacts', { full: true, trigger: 'bench' });
  const durationMs = Date.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  // Heap still reachable right after the pull (before close): what the pull retained, not garbage.
  collectGarbage();
  const retainedHeap = process.memoryUsage().heapUsed;
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
  const mb = (n: number): number => round(n / 2 ** 20, 1);
  process.stdout.write(`${JSON.stringify({ profiles: counts.created + counts.updated + counts.skipped, failed: counts.failed, peakRssMb: mb(peak), baseRssMb: mb(baseRss), peakHeapMb: mb(peakHeap), retainedHeapMb: mb(retainedHeap), durationMs, apiCalls: counts.apiCalls })}\n`);
}

/** `global.gc` exists when the step runs with `--expose-gc` (it does: `spawnSelf` passes it). */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const memoryResult = z.object({ profiles: z.number(), failed: z.number(), peakRssMb: z.number(), baseRssMb: z.number(), peakHeapMb: z.number(), retainedHeapMb: z.number(), durationMs: z.number(), apiCalls: z.number() });

function delta(after: SandboxStatsBody, before: SandboxStatsBody): { calls: number; byRoute: Record<string, number>; rateLimited: number } {
  const byRoute: Record<string, number> = {};
  for (const [route, n] of Object.entries(after.calls)) {
    const d = n - (before.calls[route] ?? 0);
    if (d > 0) byRoute[route] = d;
  }
  return { calls: after.totalCalls - before.totalCalls, byRoute, rateLimited: after.rateLimited - before.rateLimited };
}

async function main(): Promise<void> {
  const sizesAt = args.indexOf('--sizes');
  const sizes = sizesAt >= 0 ? (args[sizesAt + 1] ?? '').split(',').map(Number) : quick ? [3_000, 10_000, 30_000] : [10_000, 30_000, 100_000];
  // Pipedrive receives 2 × perCrm creates at its search pace (5/s): this sets the phase's length.
  const perCrm = quick ? 60 : 150;
  const edits = quick ? 20 : 50;
  const figures: Record<string, number | string | boolean | null> = {};
  const targets: Record<string, number | string> = {};
  const workDir = await mkdtemp(path.join(tmpdir(), 'crmhub-hubbench-'));
  const sb = spawnSelf(['--serve-sandboxes']);
  let server: RunningServer | null = null;
  let runtime: Runtime | null = null;
  try {
    const infos: SandboxInfo = sandboxInfo.parse(await sb.first);
    const control = new Map(infos.map((i) => [i.slug, new SandboxControl(i.slug, i.baseUrl)]));
    const ctl = (slug: Slug): SandboxControl => control.get(slug)!;
    const env: Record<string, string> = Object.assign({}, ...infos.map((i) => i.env)) as Record<string, string>;
    for (const slug of SLUGS) await ctl(slug).configure(GENEROUS[slug]);

    // ---- Peak RSS vs profile count (each N in its own process; the sandbox holds the records).
    const hubspotEnv = infos.find((i) => i.slug === 'hubspot')!.env;
    let seeded = 0;
    const peaks: number[] = [];
    const retained: number[] = [];
    for (const n of sizes) {
      await ctl('hubspot').seed('contacts', n - seeded);
      seeded = n;
      log(`memory: full pull of ${n} HubSpot contacts…`);
      const step = spawnSelf(['--memory-step'], JSON.stringify(hubspotEnv), ['--expose-gc']);
      const r = memoryResult.parse(await step.first);
      await step.done;
      peaks.push(r.peakRssMb);
      retained.push(r.retainedHeapMb);
      const k = `${n / 1000}k`;
      figures[`rss_peak_mb_${k}_profiles`] = r.peakRssMb;
      figures[`heap_peak_mb_${k}_profiles`] = r.peakHeapMb;
      figures[`heap_retained_after_pull_mb_${k}_profiles`] = r.retainedHeapMb;
      figures[`pull_records_per_s_${k}`] = Math.round((r.profiles * 1000) / Math.max(1, r.durationMs));
      if (r.profiles !== n || r.failed > 0) figures[`pull_${k}_short`] = `${r.profiles} of ${n} applied, ${r.failed} failed`;
      log(`  ${r.profiles} profiles, peak RSS ${r.peakRssMb} MB (base ${r.baseRssMb} MB), heap peak ${r.peakHeapMb} MB, retained ${r.retainedHeapMb} MB, ${r.durationMs} ms, ${r.apiCalls} calls`);
    }
    const ratioKey = `rss_peak_ratio_${sizes[2]! / 1000}k_vs_${sizes[0]! / 1000}k`;
    figures[ratioKey] = round(peaks[2]! / peaks[0]!);
    targets[ratioKey] = 'flat (issue 9)';
    // RSS includes garbage V8 has not collected yet; the heap still reachable after the pull is what grows if pages are kept.
    const retainedKey = `heap_retained_ratio_${sizes[2]! / 1000}k_vs_${sizes[0]! / 1000}k`;
    figures[retainedKey] = round(retained[2]! / retained[0]!);
    targets[retainedKey] = 'flat (issue 9)';
    // Reset HubSpot to the propagation phase's records only.
    await fetch(`${ctl('hubspot').baseUrl}/_sandbox/reset`, { method: 'POST' });
    await ctl('hubspot').configure(GENEROUS.hubspot);

    // ---- crmhub as `serve` runs it, webhooks on.
    const config = settings(env, path.join(workDir, 'hub.db'));
    const logger = createLogger({ level: 'error', secrets: config.secrets, destination: pino.destination({ dest: path.join(workDir, 'crmhub.log'), sync: false }) });
    const connectors = connectorsFromEnv({ ...env, HUBSPOT_RATE_LIMIT_PER_10S: HUBSPOT_ENGINE_LIMIT }, logger);
    server = await startServer(config, { logger, hooks: [createSyncServeHook({ connectors, schedule: [], workers: false, workerPollMs: 10, onRuntime: (r) => (runtime = r) })] });
    const rt = (): Runtime => runtime!;

    // ---- Calls per 1,000 records through the engine: seed, full pull, create everywhere else.
    for (const slug of SLUGS) await ctl(slug).seed(PERSON_OBJECT[slug]!, perCrm);
    const before = new Map<Slug, SandboxStatsBody>();
    for (const slug of SLUGS) before.set(slug, await ctl(slug).stats());
    const pulled = await rt().engine.runOnce({ direction: 'pull', full: true, trigger: 'bench' });
    const afterPull = new Map<Slug, SandboxStatsBody>();
    for (const slug of SLUGS) afterPull.set(slug, await ctl(slug).stats());
    for (const slug of SLUGS) {
      const o = pulled.objects.filter((x) => x.connector === slug);
      const read = o.reduce((s, x) => s + x.created + x.updated + x.skipped + x.failed, 0);
      const d = delta(afterPull.get(slug)!, before.get(slug)!);
      figures[`${slug}_pull_calls_per_1000_records`] = read === 0 ? null : round((d.calls * 1000) / read, 1);
      figures[`${slug}_pull_page_minimum_per_1000`] = round(1000 / PULL_PAGE, 1);
      log(`pull ${slug}: ${read} records in ${d.calls} calls ${JSON.stringify(d.byRoute)}`);
    }
    // Pipedrive at its default ceiling while creates drain there: the throughput figure.
    await ctl('pipedrive').configure({ rateLimit: { ...PIPEDRIVE_CEILING } });
    for (const slug of SLUGS) {
      const b = await ctl(slug).stats();
      const t0 = Date.now();
      const c = await rt().engine.push(slug);
      const elapsed = Date.now() - t0;
      const d = delta(await ctl(slug).stats(), b);
      const written = c.created + c.updated;
      const decl = rt().connectors.get(slug)!.declaration;
      const batch = decl.objects.find((o) => o.name === PERSON_OBJECT[slug])?.maxBatchSize ?? 1;
      figures[`${slug}_create_calls_per_1000_records`] = written === 0 ? null : round((d.calls * 1000) / written, 1);
      // The floor for exactly these records: full batches (one call per record without a batch write, Pipedrive).
      const minimumCalls = decl.capabilities.batchUpsert ? Math.ceil(written / batch) : written;
      figures[`${slug}_create_batch_minimum_per_1000`] = written === 0 ? null : round((minimumCalls * 1000) / written, 1);
      targets[`${slug}_create_calls_per_1000_records`] = CREATE_TARGET[slug];
      figures[`${slug}_records_created`] = written;
      if (c.deadLettered > 0) figures[`${slug}_dead_letters`] = c.deadLettered;
      log(`push ${slug}: ${written} written in ${d.calls} calls (${d.rateLimited} × 429) in ${elapsed} ms ${JSON.stringify(d.byRoute)}`);
      if (slug === 'pipedrive') {
        // Creates look each person up first (no native upsert), so the search window (10 per 2 s)
        // binds, not the general one: the share is reported against both.
        const searches = Object.entries(d.byRoute).filter(([route]) => /search/.test(route)).reduce((n, [, v]) => n + v, 0);
        const allowed = (PIPEDRIVE_CEILING.burst * elapsed) / PIPEDRIVE_CEILING.windowMs;
        const searchAllowed = (PIPEDRIVE_CEILING.searchBurst * elapsed) / PIPEDRIVE_CEILING.windowMs;
        figures['pipedrive_search_share_of_search_ceiling'] = round(Math.min(1, searches / searchAllowed), 3);
        figures['pipedrive_calls_share_of_general_ceiling'] = round(Math.min(1, (d.calls - d.rateLimited - searches) / allowed), 3);
        figures['pipedrive_429_share_of_calls'] = round(d.calls === 0 ? 0 : d.rateLimited / d.calls, 4);
        targets['pipedrive_search_share_of_search_ceiling'] = '>= 0.95 (issue 5)';
        targets['pipedrive_429_share_of_calls'] = '< 0.01 (issue 5)';
      }
    }
    await ctl('pipedrive').configure(GENEROUS.pipedrive);

    // ---- Propagation latency: edits rotate over the three CRMs; each waits for the other two.
    const base = server.url;
    await ctl('hubspot').configure({ webhookUrl: `${base}/webhooks/hubspot` });
    await ctl('pipedrive').configure({ webhookUrl: `${base}/webhooks/pipedrive` });
    await ctl('salesforce').configure({ webhookUrl: `${base}/webhooks/salesforce?token=${encodeURIComponent(env['SALESFORCE_WEBHOOK_TOKEN'] ?? '')}` });
    rt().engine.startWorkers({ pollMs: 10 });
    const links = await linkedProfiles(rt(), edits);
    const latencies: number[] = [];
    let missed = 0;
    const rlBefore = new Map<Slug, number>();
    for (const slug of SLUGS) rlBefore.set(slug, (await ctl(slug).stats()).rateLimited);
    for (const [i, link] of links.entries()) {
      const source = SLUGS[i % SLUGS.length]!;
      const value = `Bench${i}x${Date.now() % 100_000}`;
      const t0 = performance.now();
      // Pipedrive's person takes `name` and splits it into first_name / last_name (its sandbox does the same).
      const change = source === 'pipedrive' ? { name: `Bench ${value}` } : { [LAST_NAME[source]]: value };
      await ctl(source).edit(PERSON_OBJECT[source]!, link.remote[source], change);
      const others = SLUGS.filter((s) => s !== source);
      const arrived = await Promise.all(others.map((s) => waitShadow(rt(), s, link.profileId, value, 15_000)));
      if (arrived.some((ok) => !ok)) missed++;
      else latencies.push(performance.now() - t0);
    }
    let rateLimitedDuring = 0;
    for (const slug of SLUGS) rateLimitedDuring += (await ctl(slug).stats()).rateLimited - (rlBefore.get(slug) ?? 0);
    figures['propagation_p50_ms'] = round(pct(latencies, 50) ?? NaN, 1);
    figures['propagation_p99_ms'] = round(pct(latencies, 99) ?? NaN, 1);
    figures['propagation_edits'] = links.length;
    figures['propagation_missed'] = missed;
    figures['propagation_429s'] = rateLimitedDuring;
    targets['propagation_missed'] = 0;
    targets['propagation_429s'] = '0 (rate-limit waits excluded)';
  } finally {
    await (runtime as Runtime | null)?.engine.stopWorkers().catch(() => undefined);
    await (server)?.stop().catch(() => undefined);
    sb.child.stdin?.end();
    await sb.done;
    await rm(workDir, { recursive: true, force: true });
  }
  const result = { scenario: 'hub-bench', figures, targets };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(44)} ${String(v)}${targets[k] === undefined ? '' : `   target ${String(targets[k])}`}\n`);
}

/** Profiles linked to a record in every CRM, with those records' ids. */
async function linkedProfiles(rt: Runtime, count: number): Promise<{ profileId: ProfileId; remote: Record<Slug, string> }[]> {
  const rows = await rt.store.read().listRemoteRecords?.('hubspot', 'contacts', { limit: count * 4 });
  const out: { profileId: ProfileId; remote: Record<Slug, string> }[] = [];
  for (const row of rows ?? []) {
    if (out.length >= count) break;
    const remote: Partial<Record<Slug, string>> = { hubspot: row.remoteId };
    for (const slug of ['salesforce', 'pipedrive'] as const) {
      const r = (await rt.store.read().findRemoteRecordsByProfile(slug, PERSON_OBJECT[slug]!, row.profileId)).find((x) => !x.deleted);
      if (r) remote[slug] = r.remoteId;
    }
    if (remote.salesforce && remote.pipedrive) out.push({ profileId: row.profileId, remote: remote as Record<Slug, string> });
  }
  return out;
}

/** Polls the store until the write of `value` to `slug` is confirmed (its shadow holds it). */
async function waitShadow(rt: Runtime, slug: Slug, profileId: ProfileId, value: JsonValue, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const rows = await rt.store.read().findRemoteRecordsByProfile(slug, PERSON_OBJECT[slug]!, profileId);
    if (rows.find((r) => !r.deleted)?.shadow[LAST_NAME[slug]] === value) return true;
    await sleep(5);
  }
  return false;
}

if (args.includes('--serve-sandboxes')) await serveSandboxes();
else if (args.includes('--memory-step')) await memoryStep();
else await main();
