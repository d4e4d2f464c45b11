/**
 * Identity benchmark: identifier lookup latency, resolve latency and merge cost as the store grows
 * 10k → 100k → 1M identifiers (two per profile: user_id + email). Lookups should stay flat: every
 * lookup is a primary-key probe on identifiers(type, value).
 *
 *   node bin/run-ts.mjs bench/identity-bench.ts [--json] [--quick] [--postgres [URL]] [--sizes 10000,100000,1000000] [--samples 2000]
 *
 * Bulk data is generated inside the database (recursive CTE on SQLite, generate_series on
 * Postgres) so the 1M step loads in seconds; the measured operations go through the port and the
 * resolver exactly as ingestion does. Each measured call runs inside an open transaction, so the
 * figures are the identity work itself, not the commit (fsync) that a batch shares.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IdentityResolver } from '../src/identity/identity-resolver.ts';
import { openStore } from '../src/store/open-store.ts';
import type { ProfileStore } from '../src/store/port.ts';
import type { SqlProfileStore } from '../src/store/sql-profile-store.ts';
import type { PostgresStore } from '../src/store/postgres-store.ts';

interface Row {
  dialect: string;
  identifiers: number;
  profiles: number;
  loadSeconds: number;
  lookupP50us: number;
  lookupP99us: number;
  resolveP50us: number;
  resolveP99us: number;
  mergeP50us: number;
  mergeP99us: number;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (flag('--sizes') ?? (args.includes('--quick') ? '10000,100000' : '10000,100000,1000000')).split(',').map(Number);
const samples = Number(flag('--samples') ?? 2000);
const mergeSamples = Math.max(50, Math.floor(samples / 10));
const pgIndex = args.indexOf('--postgres');
const pgUrl =
  pgIndex >= 0
    ? args[pgIndex + 1] !== undefined && !args[pgIndex + 1]!.startsWith('--')
      ? args[pgIndex + 1]!
      : (process.env['CRMHUB_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test')
    : undefined;

const T = '2026-01-01T00:00:00.000Z';
const CHUNK = 100_000;

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);
}

const micros = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1000;

/** Adds profiles [from, to) with user_id `u<i>` and email `e<i>@bench.example`. */
async function grow(store: ProfileStore, from: number, to: number): Promise<void> {
  const raw = store as unknown as SqlProfileStore;
  for (let a = from; a < to; a += CHUNK) {
    const b = Math.min(to, a + CHUNK) - 1;
    if (store.dialect === 'sqlite') {
      // better-sqlite3 binds JS numbers as REAL; cast so ids read 'u42', not 'u42.0'.
      const series = 'WITH RECURSIVE s(i) AS (SELECT CAST(? AS INTEGER) UNION ALL SELECT i + 1 FROM s WHERE i < ?)';
      await raw.execRaw(`${series} INSERT INTO profiles (id, kind, created_at, updated_at, merged_into) SELECT 'prf_bench' || i, 'person', ?, ?, NULL FROM s`, [a, b, T, T]);
      await raw.execRaw(`${series} INSERT INTO identifiers (type, value, profile_id, source, first_seen, last_seen) SELECT 'user_id', 'u' || i, 'prf_bench' || i, 'bench', ?, ? FROM s`, [a, b, T, T]);
      await raw.execRaw(`${series} INSERT INTO identifiers (type, value, profile_id, source, first_seen, last_seen) SELECT 'email', 'e' || i || '@bench.example', 'prf_bench' || i, 'bench', ?, ? FROM s`, [a, b, T, T]);
    } else {
      const series = 'FROM generate_series(?::int, ?::int) AS s(i)';
      await raw.execRaw(`INSERT INTO profiles (id, kind, created_at, updated_at, merged_into) SELECT 'prf_bench' || i, 'person', ?, ?, NULL ${series}`, [T, T, a, b]);
      await raw.execRaw(`INSERT INTO identifiers (type, value, profile_id, source, first_seen, last_seen) SELECT 'user_id', 'u' || i, 'prf_bench' || i, 'bench', ?, ? ${series}`, [T, T, a, b]);
      await raw.execRaw(`INSERT INTO identifiers (type, value, profile_id, source, first_seen, last_seen) SELECT 'email', 'e' || i || '@bench.example', 'prf_bench' || i, 'bench', ?, ? ${series}`, [T, T, a, b]);
    }
  }
  if (store.dialect === 'postgres') await (store as unknown as SqlProfileStore).execRaw('ANALYZE');
}

async function measure(store: ProfileStore, profiles: number, step: number): Promise<Omit<Row, 'dialect' | 'identifiers' | 'profiles' | 'loadSeconds'>> {
  const resolver = new IdentityResolver();
  const pick = (): number => Math.floor(Math.random() * profiles);

  const lookups: number[] = [];
  const r = store.read();
  for (let k = 0; k < samples; k += 1) {
    const i = pick();
    const start = process.hrtime.bigint();
    const found = await r.findIdentifiers([{ type: 'email', value: `e${i}@bench.example` }]);
    lookups.push(micros(start));
    if (found.length !== 1) throw new TypeError(`bench data missing e${i}`);
  }

  // Resolve of a returning user (user_id + email, both known): the ingestion hot path.
  const resolves: number[] = [];
  await store.transaction(async (tx) => {
    for (let k = 0; k < samples; k += 1) {
      const i = pick();
      const start = process.hrtime.bigint();
      await resolver.resolve(tx, {
        kind: 'person',
        identifiers: [{ type: 'user_id', value: `u${i}`, source: 'event' }, { type: 'email', value: `e${i}@bench.example`, source: 'event' }],
        at: T,
        trigger: `bench-resolve-${k}`,
      });
      resolves.push(micros(start));
    }
  });

  // Merge: an anonymous profile with history (3 events, 2 traits) signs up as a known user.
  const anon = (j: number): string => `bench-anon-${step}-${j}`;
  await store.transaction(async (tx) => {
    for (let j = 0; j < mergeSamples; j += 1) {
      const res = await resolver.resolve(tx, { kind: 'person', identifiers: [{ type: 'anonymous_id', value: anon(j), source: 'event' }], at: T, trigger: `seed-${step}-${j}` });
      await tx.writeTraits(res.profileId, [
        { key: 'utm_source', value: 'ads', source: 'event', changedAt: T },
        { key: 'plan', value: 'free', source: 'event', changedAt: T },
      ]);
      for (let e = 0; e < 3; e += 1) {
        await tx.insertEvent({ messageId: `bench-ev-${step}-${j}-${e}`, profileId: res.profileId, type: 'page', name: 'Pricing', properties: { e }, timestamp: T, receivedAt: T });
      }
    }
  });
  const merges: number[] = [];
  await store.transaction(async (tx) => {
    for (let j = 0; j < mergeSamples; j += 1) {
      const i = pick();
      const start = process.hrtime.bigint();
      const res = await resolver.resolve(tx, {
        kind: 'person',
        identifiers: [{ type: 'user_id', value: `u${i}`, source: 'event' }, { type: 'anonymous_id', value: anon(j), source: 'event' }],
        at: '2026-01-02T00:00:00.000Z',
        trigger: `bench-merge-${step}-${j}`,
      });
      merges.push(micros(start));
      if (res.mergedFrom.length !== 1) throw new TypeError('expected a merge');
    }
  });
  return {
    lookupP50us: pct(lookups, 50),
    lookupP99us: pct(lookups, 99),
    resolveP50us: pct(resolves, 50),
    resolveP99us: pct(resolves, 99),
    mergeP50us: pct(merges, 50),
    mergeP99us: pct(merges, 99),
  };
}

async function runOn(dialect: 'sqlite' | 'postgres'): Promise<Row[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-idbench-'));
  if (dialect === 'postgres' && pgUrl === undefined) throw new TypeError('--postgres URL missing');
  const store =
    dialect === 'sqlite'
      ? await openStore(`sqlite:${path.join(dir, 'bench.db')}`)
      : await openStore(pgUrl ?? '', { schema: `bench_identity_${process.pid}` });
  const rows: Row[] = [];
  try {
    let profiles = 0;
    for (const [step, identifiers] of sizes.entries()) {
      const target = Math.floor(identifiers / 2);
      const start = process.hrtime.bigint();
      await grow(store, profiles, target);
      const loadSeconds = Math.round(micros(start) / 1e4) / 100;
      profiles = target;
      const m = await measure(store, profiles, step);
      const row = { dialect, identifiers, profiles, loadSeconds, ...m };
      rows.push(row);
      if (!json) process.stderr.write(`  ${dialect} ${identifiers} done\n`);
    }
  } finally {
    if (dialect === 'postgres') await (store as unknown as PostgresStore).dropSchema();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const all: Row[] = [...(await runOn('sqlite')), ...(pgUrl === undefined ? [] : await runOn('postgres'))];
if (json) {
  // bench/run.ts format: one object on the last line, flat figures, targets beside them.
  const figures: Record<string, number> = { samples, merge_samples: mergeSamples };
  const targets: Record<string, string> = {};
  for (const r of all) {
    const k = `${r.dialect}_${r.identifiers / 1000}k`;
    Object.assign(figures, { [`${k}_lookup_p50_us`]: r.lookupP50us, [`${k}_lookup_p99_us`]: r.lookupP99us, [`${k}_resolve_p50_us`]: r.resolveP50us, [`${k}_resolve_p99_us`]: r.resolveP99us, [`${k}_merge_p50_us`]: r.mergeP50us, [`${k}_merge_p99_us`]: r.mergeP99us, [`${k}_load_s`]: r.loadSeconds });
  }
  // Flatness (issue 2): lookup p50 at the largest size over the smallest, per dialect.
  for (const dialect of new Set(all.map((r) => r.dialect))) {
    const rows = all.filter((r) => r.dialect === dialect);
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (!first || !last || first === last) continue;
    const key = `${dialect}_lookup_p50_ratio_${last.identifiers / 1000}k_vs_${first.identifiers / 1000}k`;
    figures[key] = Math.round((last.lookupP50us / Math.max(1, first.lookupP50us)) * 100) / 100;
    targets[key] = 'flat (issue 2)';
  }
  process.stdout.write(`${JSON.stringify({ scenario: 'identity-bench', figures, targets })}\n`);
} else {
  const head = ['dialect', 'identifiers', 'load s', 'lookup p50 µs', 'lookup p99 µs', 'resolve p50 µs', 'resolve p99 µs', 'merge p50 µs', 'merge p99 µs'];
  const lines = all.map((r) => [r.dialect, r.identifiers.toLocaleString('en-US'), String(r.loadSeconds), ...[r.lookupP50us, r.lookupP99us, r.resolveP50us, r.resolveP99us, r.mergeP50us, r.mergeP99us].map(String)]);
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const fmt = (cells: string[]): string => cells.map((cell, c) => (c < 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  process.stdout.write(`${fmt(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${lines.map(fmt).join('\n')}\n`);
  process.stdout.write(`(${samples} lookups/resolves and ${mergeSamples} merges per size; each inside an open transaction, commit excluded)\n`);
}
