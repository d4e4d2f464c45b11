/**
 * Crashes (issue 9): the crmhub process (`node bin/crmhub.mjs sync`) is killed with SIGKILL at
 * random moments of a sync, 20 times, then restarted until a run finds nothing to do. The final
 * state equals a crash-free run on identical data, field by field: every live record of every
 * mapped CRM object with its mapped fields, and every live profile in the store with its
 * identifiers, traits (value and source) and links (support/final-state.ts). No lost and no
 * duplicated writes: no record or profile missing or extra, no two records with one email or one
 * crmhub id, no profile linked twice to one object, nothing pending, no dead letters.
 *
 * Identical data: both runs seed the same people with the control API's `seed` number (the records
 * are then the same names, emails, phones and fields whatever the sandbox already holds) and ingest
 * the same events. The sandboxes run in this process; each crmhub child gets their credentials and
 * a temp SQLite file. Kill moments: a random delay (0–0.8 s, seeded PRNG; the seed is printed and
 * `CRMHUB_CRASH_SEED=<seed>` replays the schedule) after the child's first API call; before each
 * start one CRM gains a new person, so every run has work to be killed in the middle of; a child
 * that finishes before its kill moment does not count (at most 40 starts for 20 kills).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSandboxes } from '../../src/cli/commands/sandbox.ts';
import { connectorModules } from '../../src/cli/connector-modules.ts';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';
import { converge, quiet } from './support/converge.ts';
import { HOST } from './support/http-checks.ts';
import { captureFinalState, diffFinalStates, sizes, type FinalState } from './support/final-state.ts';
import { PEOPLE } from './support/inventory.ts';
import { startHub, WRITE_AUTH, type Hub } from './support/hub.ts';
import { seed } from './support/sandbox-control.ts';
import type { RunSummary } from '../../src/sync/sync-engine.ts';

const SLUGS = ['salesforce', 'hubspot', 'pipedrive'];
const PER_CRM = 20;
const EVENTS = 30;
const KILLS = 20;
/** Seed numbers of the people a CRM gains before crash cycle `c`: CYCLE_SEED + c (PER_CRM start at 0). */
const CYCLE_SEED = 1_000;
/** Outbox lease of the crmhub children, ms (CRMHUB_OUTBOX_LEASE_MS). */
const LEASE_MS = 10_000;
const ROOT = resolve(import.meta.dirname, '../..');
const MAPPINGS = join(ROOT, 'mappings');

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** mulberry32: a small seeded PRNG so a failing kill schedule can be replayed (CRMHUB_CRASH_SEED). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const cycleSlug = (cycle: number): string => SLUGS[cycle % SLUGS.length]!;

/** The person CRM `cycleSlug(cycle)` gains before crash cycle `cycle` (the same in both runs). */
async function seedCyclePerson(sandboxes: ReadonlyMap<string, RunningSandbox>, cycle: number): Promise<void> {
  const slug = cycleSlug(cycle);
  await seed(sandboxes.get(slug)!, PEOPLE[slug]!.object, 1, CYCLE_SEED + cycle);
}

/**
 * Seeds the CRMs (PER_CRM people each, seed numbers 0…, then the people of `cycles` up front) and
 * ingests the profile events into the store at `databaseUrl`.
 */
async function prepare(sandboxes: RunningSandbox[], databaseUrl: string, cycles: number[] = []): Promise<Hub> {
  const hub = await startHub({ sandboxes, env: { CRMHUB_DATABASE_URL: databaseUrl } });
  for (const slug of SLUGS) await seed(hub.sandboxes.get(slug)!, PEOPLE[slug]!.object, PER_CRM, 0);
  for (const cycle of cycles) await seedCyclePerson(hub.sandboxes, cycle);
  const batch = Array.from({ length: EVENTS }, (_, n) => ({
    type: 'identify',
    userId: `crash-u${n}`,
    messageId: `crash-m${n}`,
    traits: { email: `crash.person${n}@crash.example`, first_name: `First${n}`, last_name: `Last${n}`, plan: n % 2 === 0 ? 'pro' : 'starter' },
  }));
  const res = await hub.app.inject({ method: 'POST', url: '/v1/batch', headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload: JSON.stringify({ batch }) });
  expect(res.statusCode, res.body).toBe(200);
  return hub;
}

/**
 * The final state of one run, read through a fresh in-process hub on its store file, after checks
 * that hold in any correct run: no duplicates or dangling links, nothing pending, no dead letters,
 * and every profile linked to one record of every CRM's people object (everyone reached everywhere).
 */
async function finalState(sandboxes: RunningSandbox[], sqliteFile: string): Promise<FinalState> {
  const hub = await startHub({ sandboxes, env: { CRMHUB_DATABASE_URL: `sqlite:${sqliteFile}` } });
  try {
    const state = await captureFinalState(hub, { sqliteFile, mappingsDir: MAPPINGS, connectors: SLUGS });
    expect(state.problems.slice(0, 20), `${state.problems.length} problems`).toEqual([]);
    expect(state.counts).toMatchObject({ 'pending outbox rows': 0, 'dead letters': 0 });
    const profiles = state.entries.get('profiles') ?? new Map<string, Record<string, string>>();
    const unreached = [...profiles]
      .flatMap(([key, entry]) => SLUGS.filter((s) => entry[`linked ${s}.${PEOPLE[s]!.object}`] === undefined).map((s) => `${key} not in ${s}`));
    expect(unreached.slice(0, 20), `${unreached.length} profiles not linked everywhere`).toEqual([]);
    return state;
  } finally {
    await hub.close();
  }
}

function sandboxEnv(sandboxes: RunningSandbox[]): Record<string, string> {
  return Object.assign({}, ...sandboxes.map((s) => s.env)) as Record<string, string>;
}

/** API calls the sandboxes have counted (they run in this process: read their counters, no HTTP poll). */
function totalCalls(sandboxes: RunningSandbox[]): number {
  return sandboxes.reduce((n, s) => n + s.server.counters.totalCalls, 0);
}

interface ChildRun {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startSync(env: Record<string, string>): ChildRun {
  const child = spawn(process.execPath, [join(ROOT, 'bin/crmhub.mjs'), 'sync', '--json'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal, stdout, stderr })),
  );
  return { child, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crmhub sync killed with SIGKILL', () => {
  it(`${KILLS} kills at random moments, then restarts: same final state as a crash-free run`, async () => {
    const started = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const seedValue = Number(process.env['CRMHUB_CRASH_SEED'] ?? Date.now() % 1_000_000);
    // Printed first, so a run that times out can be replayed too.
    process.stdout.write(`crash: kill schedule seed ${seedValue} (replay: CRMHUB_CRASH_SEED=${seedValue} npx vitest run --config vitest.reliability.config.ts test/reliability/crash.test.ts)\n`);
    const dir = mkdtempSync(join(tmpdir(), 'crmhub-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    // Crash-free reference: its own sandboxes and store, synced in process until quiet.
    const refSandboxes = await startSandboxes({});
    cleanups.push(async () => void (await Promise.allSettled(refSandboxes.map((s) => s.close()))));
    // It gets, up front, the people the crashing run's CRMs gain one per cycle (new work for every run).
    const refFile = join(dir, 'reference.db');
    const ref = await prepare(refSandboxes, `sqlite:${refFile}`, Array.from({ length: KILLS }, (_, c) => c));
    const refRun = await converge(ref.engine, { maxRounds: 60, deadline: Date.now() + 90_000, pending: () => ref.store.pendingOutboxCount() });
    await ref.close();
    expect(refRun.converged, refRun.log.join('\n')).toBe(true);
    phase('reference synced');
    const expected = await finalState(refSandboxes, refFile);
    const people = PER_CRM * SLUGS.length + KILLS + EVENTS;
    expect(sizes(expected)).toMatchObject({ profiles: people, ...Object.fromEntries(SLUGS.map((s) => [`${s}.${PEOPLE[s]!.object}`, people])) });

    // The crashing run: same data, synced by crmhub child processes.
    const sandboxes = await startSandboxes({});
    cleanups.push(async () => void (await Promise.allSettled(sandboxes.map((s) => s.close()))));
    const crashFile = join(dir, 'crash.db');
    const databaseUrl = `sqlite:${crashFile}`;
    await (await prepare(sandboxes, databaseUrl)).close();
    const bySlug = new Map(sandboxes.map((s) => [s.slug, s]));
    // Rows a killed child had claimed wait out its lease before another child may send them. One
    // child runs at a time here, so a lease of 10 s (default 60 s) is safe and keeps the suite short;
    // takeover after a lease expires is then exercised during the kill cycles too, not only at the end.
    const env = { ...sandboxEnv(sandboxes), CRMHUB_DATABASE_URL: databaseUrl, CRMHUB_LOG_LEVEL: 'error', CRMHUB_MAPPINGS_DIR: MAPPINGS, CRMHUB_OUTBOX_LEASE_MS: String(LEASE_MS) };

    const random = prng(seedValue);
    let killed = 0;
    let finishedEarly = 0;
    for (let cycle = 0; killed < KILLS && cycle < KILLS * 2; cycle++) {
      // A rep adds a person in one CRM (first KILLS cycles): runs have pulls and pushes to be killed in.
      if (cycle < KILLS) await seedCyclePerson(bySlug, cycle);
      const before = totalCalls(sandboxes);
      const run = startSync(env);
      let exited = false;
      void run.exited.then(() => (exited = true));
      // Wait for the child's first API call (start-up is over), then a random share of a run.
      while (!exited && totalCalls(sandboxes) === before) await sleep(10);
      await sleep(Math.floor(random() * 800));
      if (!exited) {
        run.child.kill('SIGKILL');
        killed++;
      } else finishedEarly++;
      const end = await run.exited;
      if (end.signal !== 'SIGKILL' && end.code !== 0 && end.code !== 1) throw new Error(`crmhub sync exited ${String(end.code)}: ${end.stderr.slice(0, 500)}`);
    }
    phase(`${killed} kills`);

    // Restart until a run finds nothing to do (the last kills' leases expire within LEASE_MS).
    let final: RunSummary | null = null;
    const restarts: string[] = [];
    for (let attempt = 0; attempt < 60 && Date.now() - started < 280_000; attempt++) {
      const end = await startSync(env).exited;
      const line = end.stdout.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) throw new Error(`crmhub sync printed no summary (exit ${String(end.code)}): ${end.stderr.slice(0, 500)}`);
      const summary = JSON.parse(line) as RunSummary;
      restarts.push(`exit ${String(end.code)} pending ${summary.objects.reduce((n, o) => n + o.pending, 0)} moved ${summary.objects.reduce((n, o) => n + o.created + o.updated + o.failed, 0)}`);
      if (quiet(summary)) {
        final = summary;
        break;
      }
      await sleep(2_000);
    }
    phase(`${restarts.length} restarts to quiet`);
    expect(final, restarts.join('\n')).not.toBeNull();
    expect(killed).toBe(KILLS);

    // Compare every side with the reference, through a fresh in-process view of the crashed store.
    const actual = await finalState(sandboxes, crashFile);
    phase('compared');
    process.stdout.write(
      `crash: seed ${seedValue}, ${killed} kills, ${finishedEarly} runs finished before their kill moment; ${phases.join(', ')}; ` +
        `compared ${JSON.stringify(sizes(actual))}\n${restarts.join('\n')}\n`,
    );
    const diff = diffFinalStates(expected, actual);
    const shown = diff.length > 80 ? [...diff.slice(0, 80), `… ${diff.length - 80} more`] : diff;
    expect(diff.length, `final state differs from the crash-free run (seed ${seedValue}):\n${shown.join('\n')}`).toBe(0);
  }, 330_000);
});

// The connector modules must all be present for the comparison to mean anything.
it('covers every connector', () => {
  expect(connectorModules.map((m) => m.slug).sort()).toEqual([...SLUGS].sort());
});
