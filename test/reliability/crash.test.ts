/**
 * Crashes (issue 9): the crmhub process (`node bin/crmhub.mjs sync`) is killed with SIGKILL at
 * random moments of a sync, 20 times, then restarted until a run finds nothing to do. The final
 * state — every CRM's people and the store's links — equals a crash-free run on identical data:
 * no lost and no duplicated writes.
 *
 * The sandboxes run in this process; each crmhub child gets their credentials and a temp SQLite file.
 * Kill moments: a random delay (0–0.8 s, seeded PRNG, seed printed) after the child's first API call;
 * before each start one CRM gains a new person, so every run has work to be killed in the middle of;
 * a child that finishes before its kill moment does not count (at most 40 starts for 20 kills).
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
import { duplicates, inventory, PEOPLE, projection, storeLinks } from './support/inventory.ts';
import { startHub, WRITE_AUTH, type Hub } from './support/hub.ts';
import { seed, stats } from './support/sandbox-control.ts';
import type { RunSummary } from '../../src/sync/sync-engine.ts';

const SLUGS = ['salesforce', 'hubspot', 'pipedrive'];
const PER_CRM = 20;
const EVENTS = 30;
const KILLS = 20;
const ROOT = resolve(import.meta.dirname, '../..');

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

/** Seeds the CRMs and ingests the profile events into the store at `databaseUrl`. */
async function prepare(sandboxes: RunningSandbox[], databaseUrl: string, extra: string[] = []): Promise<Hub> {
  const hub = await startHub({ sandboxes, env: { CRMHUB_DATABASE_URL: databaseUrl } });
  for (const slug of SLUGS) await seed(hub.sandboxes.get(slug)!, PEOPLE[slug]!.object, PER_CRM);
  // Seeded records depend on the sequence of seed calls, so extra people are seeded one call each.
  for (const slug of extra) await seed(hub.sandboxes.get(slug)!, PEOPLE[slug]!.object, 1);
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

interface Snapshot {
  people: Map<string, string[]>;
  profiles: number;
}

/** What the CRMs hold (compared fields per email) and how many profiles the store links everywhere. */
async function snapshot(hub: Hub): Promise<Snapshot> {
  const people = new Map<string, string[]>();
  for (const slug of SLUGS) {
    const p = PEOPLE[slug]!;
    const inv = await inventory(hub.engine.ctx.connector(slug), p.object, p.email);
    expect(duplicates(inv).slice(0, 5), `${slug} duplicates`).toEqual([]);
    people.set(slug, projection(inv, p.compare));
  }
  const links = await storeLinks(hub.store, SLUGS);
  expect(links.multiLinked.slice(0, 5)).toEqual([]);
  const sizes = SLUGS.map((s) => links.profiles.get(s)?.size ?? 0);
  expect(new Set(sizes).size, `profiles linked per CRM ${sizes.join('/')}`).toBe(1);
  return { people, profiles: sizes[0] ?? 0 };
}

function sandboxEnv(sandboxes: RunningSandbox[]): Record<string, string> {
  return Object.assign({}, ...sandboxes.map((s) => s.env)) as Record<string, string>;
}

async function totalCalls(sandboxes: RunningSandbox[]): Promise<number> {
  let n = 0;
  for (const s of sandboxes) n += (await stats(s)).totalCalls;
  return n;
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
    const dir = mkdtempSync(join(tmpdir(), 'crmhub-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    // Crash-free reference: its own sandboxes and store, synced in process until quiet.
    const refSandboxes = await startSandboxes({});
    cleanups.push(async () => void (await Promise.allSettled(refSandboxes.map((s) => s.close()))));
    // It gets, up front, the records the crashing run's CRMs gain one per cycle (new work for every run).
    const cycleSlug = (cycle: number): string => SLUGS[cycle % SLUGS.length]!;
    const ref = await prepare(refSandboxes, `sqlite:${join(dir, 'reference.db')}`, Array.from({ length: KILLS }, (_, c) => cycleSlug(c)));
    const refRun = await converge(ref.engine, { maxRounds: 60, deadline: Date.now() + 90_000, pending: () => ref.store.pendingOutboxCount() });
    expect(refRun.converged, refRun.log.join('\n')).toBe(true);
    const expected = await snapshot(ref);
    await ref.close();
    expect(expected.profiles).toBe((PER_CRM * SLUGS.length) + KILLS + EVENTS);

    // The crashing run: same data, synced by crmhub child processes.
    const sandboxes = await startSandboxes({});
    cleanups.push(async () => void (await Promise.allSettled(sandboxes.map((s) => s.close()))));
    const databaseUrl = `sqlite:${join(dir, 'crash.db')}`;
    await (await prepare(sandboxes, databaseUrl)).close();
    const env = { ...sandboxEnv(sandboxes), CRMHUB_DATABASE_URL: databaseUrl, CRMHUB_LOG_LEVEL: 'error', CRMHUB_MAPPINGS_DIR: join(ROOT, 'mappings') };

    const seedValue = Number(process.env['CRMHUB_CRASH_SEED'] ?? Date.now() % 1_000_000);
    const random = prng(seedValue);
    let killed = 0;
    let finishedEarly = 0;
    for (let cycle = 0; killed < KILLS && cycle < KILLS * 2; cycle++) {
      // A rep adds a person in one CRM (first KILLS cycles): runs have pulls and pushes to be killed in.
      if (cycle < KILLS) {
        const target = sandboxes.find((s) => s.slug === cycleSlug(cycle))!;
        await seed(target, PEOPLE[target.slug]!.object, 1);
      }
      const before = await totalCalls(sandboxes);
      const run = startSync(env);
      let exited = false;
      void run.exited.then(() => (exited = true));
      // Wait for the child's first API call (start-up is over), then a random share of a run.
      while (!exited && (await totalCalls(sandboxes)) === before) await sleep(10);
      await sleep(Math.floor(random() * 800));
      if (!exited) {
        run.child.kill('SIGKILL');
        killed++;
      } else finishedEarly++;
      const end = await run.exited;
      if (end.signal !== 'SIGKILL' && end.code !== 0 && end.code !== 1) throw new Error(`crmhub sync exited ${String(end.code)}: ${end.stderr.slice(0, 500)}`);
    }

    // Restart until a run finds nothing to do. Rows leased by a killed process wait out their
    // lease (60 s by default) before another process may send them.
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
    process.stdout.write(`crash: seed ${seedValue}, ${killed} kills, ${finishedEarly} runs finished before their kill moment, ${restarts.length} restarts to quiet, ${Date.now() - started} ms\n${restarts.join('\n')}\n`);
    expect(final, restarts.join('\n')).not.toBeNull();
    expect(killed).toBe(KILLS);

    // Compare with the reference, through a fresh in-process view of the crashed store.
    const after = await startHub({ sandboxes, env: { CRMHUB_DATABASE_URL: databaseUrl } });
    try {
      const actual = await snapshot(after);
      expect(actual.profiles).toBe(expected.profiles);
      // Seeded identities depend on the sandbox's record count at seed time (the crashing run seeds
      // while it syncs), so seeded people are compared by count and presence in every CRM; the
      // event-sourced people, whose data is fixed, are compared field by field.
      const emails = (slug: string, snap: Snapshot) => (snap.people.get(slug) ?? []).map((l) => l.split(' ')[0] ?? '');
      const first = emails(SLUGS[0]!, actual);
      for (const slug of SLUGS) {
        expect(actual.people.get(slug)?.length, slug).toBe(expected.people.get(slug)?.length);
        expect(emails(slug, actual), `${slug} holds the same people as ${SLUGS[0]!}`).toEqual(first);
        const fromEvents = (snap: Snapshot) => (snap.people.get(slug) ?? []).filter((l) => l.includes('@crash.example'));
        expect(fromEvents(actual), slug).toEqual(fromEvents(expected));
      }
      const dead = await after.store.listDeadLetters({ limit: 10, includeReplayed: false });
      expect(dead.map((d) => `${d.connector}.${d.object} ${d.reason}`)).toEqual([]);
    } finally {
      await after.close();
    }
  }, 330_000);
});

// The connector modules must all be present for the comparison to mean anything.
it('covers every connector', () => {
  expect(connectorModules.map((m) => m.slug).sort()).toEqual([...SLUGS].sort());
});
