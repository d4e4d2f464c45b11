/**
 * `npm run bench [-- --json] [-- --quick] [-- --only a,b]`: runs every benchmark scenario once, each in its own
 * process (so one scenario's heap and sockets do not colour the next), and prints one table. Each
 * scenario is a script `bench/<name>.ts` that prints, with `--json`, one JSON object on its last
 * stdout line: `{ "scenario": string, "figures": { [name]: number | string }, "targets"?: {...} }`.
 * Figures are ratios and distributions measured within one run, never a single absolute time.
 * `--quick` is passed to every scenario (smaller sizes; about a third of the full run's time).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

/** Scenario scripts in the order the table shows them. Missing files are reported, not fatal. */
export const SCENARIOS = [
  'ingest-bench',
  'identity-bench',
  'sync-bench',
  'hubspot-bench',
  'salesforce-bench',
  'pipedrive-bench',
  'hub-bench',
] as const;

const resultSchema = z.object({
  scenario: z.string(),
  figures: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
  targets: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])).optional(),
});
type ScenarioResult = z.infer<typeof resultSchema> & { seconds?: number };

/** A scenario that runs longer than this is stopped and reported as not measured. */
const SCENARIO_TIMEOUT_MS = 20 * 60_000;

function runScenario(name: string, extraArgs: string[]): Promise<ScenarioResult | { scenario: string; error: string }> {
  const file = path.join(here, `${name}.ts`);
  if (!existsSync(file)) return Promise.resolve({ scenario: name, error: 'scenario file missing' });
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/run-ts.mjs'), file, '--json', ...extraArgs], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGTERM'), SCENARIO_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      try {
        resolve({ ...resultSchema.parse(JSON.parse(last)), seconds });
      } catch {
        resolve({ scenario: name, error: `exit ${code ?? signal ?? 'unknown'} after ${seconds} s; no JSON result on the last line` });
      }
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : null;
  const quick = args.includes('--quick') ? ['--quick'] : [];
  const machine = { cpus: os.cpus().length, loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100, totalMemoryMb: Math.round(os.totalmem() / 2 ** 20) };
  const started = Date.now();
  const results = [];
  for (const name of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    if (!json) process.stderr.write(`running ${name}…\n`);
    results.push(await runScenario(name, quick));
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ generatedAt: new Date().toISOString(), node: process.version, quick: quick.length > 0, machine, seconds: Math.round((Date.now() - started) / 1000), results })}\n`);
    return;
  }
  process.stdout.write(`crmhub bench${quick.length > 0 ? ' --quick' : ''}: node ${process.version}, ${machine.cpus} CPUs, load average ${machine.loadAverage1m} at start; took ${Math.round((Date.now() - started) / 1000)} s\n`);
  for (const r of results) {
    process.stdout.write(`\n## ${r.scenario}${'seconds' in r && r.seconds !== undefined ? ` (${r.seconds} s)` : ''}\n`);
    if ('error' in r) {
      process.stdout.write(`  (not measured: ${r.error})\n`);
      continue;
    }
    for (const [k, v] of Object.entries(r.figures)) {
      const target = r.targets?.[k];
      process.stdout.write(`  ${k.padEnd(48)} ${String(v).padStart(14)}${target === undefined ? '' : `   target ${String(target)}`}\n`);
    }
  }
}

await main();
