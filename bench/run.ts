/**
 * `npm run bench [-- --json] [-- --only a,b]`: runs every benchmark scenario once, each in its own
 * process (so one scenario's heap and sockets do not colour the next), and prints one table. Each
 * scenario is a script `bench/<name>.ts` that prints, with `--json`, one JSON object on its last
 * stdout line: `{ "scenario": string, "figures": { [name]: number | string }, "targets"?: {...} }`.
 * Figures are ratios and distributions measured within one run, never a single absolute time.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
type ScenarioResult = z.infer<typeof resultSchema>;

function runScenario(name: string, extraArgs: string[]): Promise<ScenarioResult | { scenario: string; error: string }> {
  const file = path.join(here, `${name}.ts`);
  if (!existsSync(file)) return Promise.resolve({ scenario: name, error: 'scenario file missing' });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/run-ts.mjs'), file, '--json', ...extraArgs], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(resultSchema.parse(JSON.parse(last)));
      } catch {
        resolve({ scenario: name, error: `exit ${code ?? 'signal'}; no JSON result on the last line` });
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
  const results = [];
  for (const name of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    if (!json) process.stderr.write(`running ${name}…\n`);
    results.push(await runScenario(name, quick));
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ generatedAt: new Date().toISOString(), node: process.version, results })}\n`);
    return;
  }
  for (const r of results) {
    process.stdout.write(`\n## ${r.scenario}\n`);
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
