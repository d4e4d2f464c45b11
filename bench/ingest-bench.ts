/**
 * Ingestion through the HTTP API, next to the store's raw-insert baseline measured in the same run.
 *
 *   node bin/run-ts.mjs bench/ingest-bench.ts [--json] [--events N] [--clients C] [--batch B] [--spread] [--rounds R] [--no-postgres] [--no-sqlite] [--baseline-keys traffic|sequential]
 *
 * The server (Fastify app + group commit + identity resolution) runs in this process; the load
 * comes from C client threads (worker_threads, each with its own event loop and keep-alive
 * connection) that each loop `POST /v1/batch` with B events. Traffic `sessions` (default): 10
 * visitors per request, 10 events each (pages as anonymous, an identify linking anonymous id, user
 * id and email, tracks as the user), over a pool of users so identity resolution creates, attaches
 * and merges. `--spread` adds a run where every event comes from a different user (worst case).
 * Reported: events/s (end to end: every event answered 200, so committed), p50/p99 request latency,
 * the raw-insert baseline (bench/store-baseline.ts: 1,000 plain event INSERTs per transaction, run
 * on a fresh store just before and just after each ingest run; the ratio uses their mean; its rows
 * carry the messageIds and visitor profiles of the same traffic, so both sides write the same index
 * entries — see `baselineKeys`), and
 * ingest ÷ baseline (target ≥ 0.40). With `--rounds R` all of it repeats R times and a summary
 * gives the median ratio and its range (the JSON figures are medians). Postgres uses CRMHUB_TEST_POSTGRES_URL (or the local default).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { runInThisContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/load-config.ts';
import { buildApp } from '../src/server/app.ts';
import { createLogger } from '../src/server/logger.ts';
import { openStore } from '../src/store/open-store.ts';
import type { ProfileStore } from '../src/store/port.ts';
import type { PostgresStore } from '../src/store/postgres-store.ts';
import { newId } from '../src/store/ids.ts';
import type { ProfileId } from '../src/core/types.ts';
import { measureRawInsertRate, type RowKeys } from './store-baseline.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const JSON_OUT = args.includes('--json');
const EVENTS = flag('--events', 100_000);
const CLIENTS = flag('--clients', 16);
/** Load-generator threads (the clients are spread over them). */
const CLIENT_THREADS = flag('--client-threads', 2);
const BATCH = flag('--batch', 100);
const PG_URL = process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const WRITE_KEY = 'wk_bench';
/** Repeats of the whole measurement (baseline, ingest, baseline per store); the summary gives the median ratio. */
const ROUNDS = Math.max(1, flag('--rounds', 1));
const PATTERNS: Pattern[] = args.includes('--spread') ? ['sessions', 'spread'] : ['sessions'];
const BASELINE_KEYS_ARG = args.includes('--baseline-keys') ? args[args.indexOf('--baseline-keys') + 1] : 'traffic';
if (BASELINE_KEYS_ARG !== 'traffic' && BASELINE_KEYS_ARG !== 'sequential') throw new TypeError('--baseline-keys: traffic or sequential');
const BASELINE_KEYS: 'traffic' | 'sequential' = BASELINE_KEYS_ARG;
/** Size of the visitor pool the traffic draws from (each visitor becomes one profile). */
const usersFor = (events: number): number => Math.max(1000, Math.floor(events / 20));

/**
 * Who sends item `j` of request `r` of client `clientId`, and its messageId (plain JS, shared by the
 * client threads and the like-for-like baseline's keys). `sessions`: 10 visitors per request, 10
 * events each (2 pages as anonymous, an identify that links anonymous and user ids with an email,
 * then tracks as the user) — what a server-side Segment library batches. `spread`: every event from
 * a different user (worst case for identity). `step` picks the event kind (see CLIENT_SOURCE).
 */
const VISITOR_SOURCE = `(clientId, r, j, pattern, users) => {
  const perSession = pattern === 'sessions' ? 10 : 1;
  const session = Math.floor(j / perSession);
  return {
    n: (clientId * 7919 + r * 104729 + session * 31) % users,
    step: pattern === 'sessions' ? j % perSession : j % 10,
    messageId: 'b-' + clientId + '-' + r + '-' + j + '-' + pattern,
  };
}`;
const visitorOf = runInThisContext(VISITOR_SOURCE) as (clientId: number, r: number, j: number, pattern: Pattern, users: number) => { n: number; step: number; messageId: string };

/** Client thread: plain JS (no loader needed); runs several clients, each a keep-alive connection with one request in flight. */
const CLIENT_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, requests, batch, clientIds, writeKey, users, pattern } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: clientIds.length });
const target = new URL(url + '/v1/batch');
const auth = 'Basic ' + Buffer.from(writeKey + ':').toString('base64');
const visitorOf = ${VISITOR_SOURCE};
function body(clientId, r) {
  const items = [];
  const sentAt = new Date().toISOString();
  for (let j = 0; j < batch; j++) {
    const { n, step, messageId: mid } = visitorOf(clientId, r, j, pattern, users);
    if (step === 2) items.push({ type: 'identify', userId: 'user-' + n, anonymousId: 'anon-' + n, messageId: mid, timestamp: sentAt,
      traits: { email: 'user' + n + '@example.com', plan: n % 3 === 0 ? 'pro' : 'free', seats: n % 50 } });
    else if (step < 2) items.push({ type: 'page', anonymousId: 'anon-' + n, name: 'Pricing', messageId: mid, timestamp: sentAt,
      properties: { path: '/pricing', referrer: 'https://example.com/', title: 'Pricing' } });
    else items.push({ type: 'track', userId: 'user-' + n, event: 'Feature Used', messageId: mid, timestamp: sentAt,
      properties: { feature: 'export', count: j, source: 'web' }, context: { library: { name: 'bench' } } });
  }
  return JSON.stringify({ batch: items, sentAt });
}
function send(payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method: 'POST', agent, headers: { authorization: auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
async function loop(c) {
  const latencies = [];
  let failures = 0;
  for (let r = 0; r < requests; r++) {
    const payload = body(c, r);
    const t0 = process.hrtime.bigint();
    const status = await send(payload);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (status !== 200) failures++;
  }
  return { latencies, failures };
}
(async () => {
  const results = await Promise.all(clientIds.map(loop));
  agent.destroy();
  parentPort.postMessage({ latencies: results.flatMap((r) => r.latencies), failures: results.reduce((n, r) => n + r.failures, 0) });
})();
`;

type Pattern = 'sessions' | 'spread';

interface IngestResult {
  dialect: string;
  pattern: Pattern;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  /** Mean of the baseline runs just before and just after this ingest run. */
  baselineRowsPerSecond: number;
  baselineBefore: number;
  baselineAfter: number;
  ratio: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function runIngest(store: ProfileStore, pattern: Pattern): Promise<Omit<IngestResult, 'baselineRowsPerSecond' | 'baselineBefore' | 'baselineAfter' | 'ratio'>> {
  const config = loadConfig({ CRMHUB_WRITE_KEYS: WRITE_KEY, CRMHUB_LOG_LEVEL: 'warn' }, null);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const app = await buildApp({ config, store, logger: createLogger({ level: 'warn', destination: sink }) });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const requestsPerClient = Math.ceil(EVENTS / BATCH / CLIENTS);
  const users = usersFor(EVENTS);
  // Warm-up: JIT, connection set-up, first profiles.
  await runClients(url, 2, Math.max(2, Math.floor(requestsPerClient / 20)), users, 1000, pattern);
  const started = process.hrtime.bigint();
  const results = await runClients(url, CLIENTS, requestsPerClient, users, 0, pattern);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.close();
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const events = requestsPerClient * CLIENTS * BATCH;
  return {
    dialect: store.dialect,
    pattern,
    events,
    seconds,
    eventsPerSecond: Math.round(events / seconds),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    failures: results.reduce((n, r) => n + r.failures, 0),
  };
}

/** Runs `clients` clients spread over at most CLIENT_THREADS worker threads. */
function runClients(url: string, clients: number, requests: number, users: number, idOffset: number, pattern: Pattern): Promise<{ latencies: number[]; failures: number }[]> {
  const threads = Math.min(clients, CLIENT_THREADS);
  return Promise.all(
    Array.from(
      { length: threads },
      (_, t) =>
        new Promise<{ latencies: number[]; failures: number }>((resolve, reject) => {
          const clientIds = Array.from({ length: clients }, (_, c) => c).filter((c) => c % threads === t).map((c) => c + idOffset);
          const worker = new Worker(CLIENT_SOURCE, { eval: true, workerData: { url, requests, batch: BATCH, clientIds, writeKey: WRITE_KEY, users, pattern } });
          worker.once('message', (m: { latencies: number[]; failures: number }) => resolve(m));
          worker.once('error', reject);
        }),
    ),
  );
}

/**
 * The baseline rows' keys: `traffic` (default) gives row i the messageId and the visitor's profile
 * of the i-th event the clients send (requests taken round-robin over the clients, a profile per
 * visitor as ingest creates them), so the baseline writes the same index entries ingest must write;
 * `sequential` (`--baseline-keys sequential`) is the module default of store-baseline.ts — one
 * profile, ascending ids — the cheapest pattern the indexes can get, for comparison.
 */
function baselineKeys(pattern: Pattern): ((i: number) => RowKeys) | undefined {
  if (BASELINE_KEYS === 'sequential') return undefined;
  const users = usersFor(EVENTS);
  const profiles = new Map<number, ProfileId>();
  return (i) => {
    const request = Math.floor(i / BATCH);
    const v = visitorOf(request % CLIENTS, Math.floor(request / CLIENTS), i % BATCH, pattern, users);
    let profileId = profiles.get(v.n);
    if (profileId === undefined) profiles.set(v.n, (profileId = newId('prf') as ProfileId));
    return { messageId: v.messageId, profileId };
  };
}

/** Raw-insert rate of a fresh store (opened and disposed here). */
async function baselineOf(open: () => Promise<ProfileStore>, dispose: (s: ProfileStore) => Promise<void>, pattern: Pattern): Promise<number> {
  const store = await open();
  try {
    const keys = baselineKeys(pattern);
    // A fresh store, dropped right after: nothing to clean up.
    return (await measureRawInsertRate(store, { rows: Math.min(50_000, EVENTS), cleanup: false, ...(keys === undefined ? {} : { keys }) })).rowsPerSecond;
  } finally {
    await dispose(store);
  }
}

/**
 * One ingest run per pattern, each between two baseline runs on fresh stores: the ratio uses their
 * mean, so load that changes during the run (shared machines) weighs on both sides alike.
 */
async function measure(open: () => Promise<ProfileStore>, dispose: (s: ProfileStore) => Promise<void>, patterns: Pattern[]): Promise<IngestResult[]> {
  const results: IngestResult[] = [];
  for (const pattern of patterns) {
    // Each pattern's baselines use its own keys (one baseline serves two patterns only with sequential keys).
    const before = results.length > 0 && BASELINE_KEYS === 'sequential' ? (results[results.length - 1] as IngestResult).baselineAfter : await baselineOf(open, dispose, pattern);
    const store = await open();
    let ingest: Awaited<ReturnType<typeof runIngest>>;
    try {
      ingest = await runIngest(store, pattern);
    } finally {
      await dispose(store);
    }
    const after = await baselineOf(open, dispose, pattern);
    const baseline = Math.round((before + after) / 2);
    results.push({ ...ingest, baselineBefore: before, baselineAfter: after, baselineRowsPerSecond: baseline, ratio: Number((ingest.eventsPerSecond / baseline).toFixed(3)) });
  }
  return results;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-ingest-bench-'));
  const results: IngestResult[] = [];
  let n = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      if (!args.includes('--no-sqlite')) {
        results.push(
          ...(await measure(
            () => openStore(`sqlite:${path.join(dir, `bench-${(n += 1)}.db`)}`),
            (s) => s.close(),
            PATTERNS,
          )),
        );
      }
      if (!args.includes('--no-postgres')) {
        results.push(
          ...(await measure(
            () => openStore(PG_URL, { schema: `bench_ingest_${process.pid}_${(n += 1)}` }),
            async (s) => {
              await (s as PostgresStore).dropSchema();
              await s.close();
            },
            PATTERNS,
          )),
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const header = ['store', 'traffic', 'events', 'events/s', 'p50 ms', 'p99 ms', 'baseline rows/s (before/after)', 'ingest/baseline', 'failures'];
  const rows = results.map((r) => [
    r.dialect,
    r.pattern,
    String(r.events),
    r.eventsPerSecond.toLocaleString('en-US'),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    `${r.baselineRowsPerSecond.toLocaleString('en-US')} (${r.baselineBefore.toLocaleString('en-US')}/${r.baselineAfter.toLocaleString('en-US')})`,
    `${(r.ratio * 100).toFixed(1)}%`,
    String(r.failures),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padStart(widths[c] ?? 0)).join('  ');
  process.stdout.write(`ingest through POST /v1/batch: ${CLIENTS} clients × ${BATCH} events per request, ${ROUNDS} round(s)\n${line(header)}\n${rows.map(line).join('\n')}\n`);
  // Per store and traffic: the median over rounds (and the spread), what the issue note quotes.
  const groups = new Map<string, IngestResult[]>();
  for (const r of results) groups.set(`${r.dialect}/${r.pattern}`, [...(groups.get(`${r.dialect}/${r.pattern}`) ?? []), r]);
  const summary = [...groups].map(([key, rs]) => {
    const ratios = rs.map((r) => r.ratio).sort((a, b) => a - b);
    return { key, rs, median: median(ratios), min: ratios[0] ?? Number.NaN, max: ratios[ratios.length - 1] ?? Number.NaN };
  });
  if (ROUNDS > 1) {
    for (const g of summary) {
      process.stdout.write(`${g.key}: ingest/baseline median ${(g.median * 100).toFixed(1)}% (min ${(g.min * 100).toFixed(1)}%, max ${(g.max * 100).toFixed(1)}%) over ${g.rs.length} rounds\n`);
    }
  }
  if (JSON_OUT) {
    const figures: Record<string, number | string> = {};
    for (const { rs, median: ratio } of summary) {
      const r = rs[0] as IngestResult;
      const k = r.pattern === 'sessions' ? r.dialect : `${r.dialect}_${r.pattern}`;
      figures[`${k}_events_per_s`] = median(rs.map((x) => x.eventsPerSecond));
      figures[`${k}_p50_ms`] = median(rs.map((x) => x.p50Ms));
      figures[`${k}_p99_ms`] = median(rs.map((x) => x.p99Ms));
      figures[`${r.dialect}_baseline_rows_per_s`] = median(rs.map((x) => x.baselineRowsPerSecond));
      figures[`${k}_ratio`] = ratio;
      figures[`${k}_failures`] = rs.reduce((sum, x) => sum + x.failures, 0);
    }
    // Which baseline the ratios are against (see baselineKeys).
    figures['baseline_keys'] = BASELINE_KEYS;
    const targets = Object.fromEntries(results.map((r) => [`${r.dialect}_ratio`, '>= 0.40']));
    process.stdout.write(`${JSON.stringify({ scenario: 'ingest-bench', figures, targets })}\n`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

await main();
