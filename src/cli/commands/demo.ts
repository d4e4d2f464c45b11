/**
 * `crmhub demo [--json]` (design.md §6, issue 9): sandboxes + hub + sample data, a full round trip
 * both ways on embedded defaults, then the story (see `src/demo/run-demo.ts`). Progress goes to
 * stderr; the summary (or one JSON object with `--json`) to stdout. Exit 0 when every step passed,
 * 1 when any failed.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { CliExit } from '../cli-exit.ts';

const optionsSchema = z.object({
  json: z.boolean().optional(),
  people: z.coerce.number({ error: '--people must be a number' }).int().min(30).max(3_000).optional(),
  keep: z.boolean().optional(),
});

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('start the sandboxes and crmhub on SQLite, sync sample data both ways, and show what happened')
    .option('--json', 'print one JSON object on stdout')
    .option('--people <n>', 'people in the sample (each CRM holds two thirds of them)', '300')
    .option('--keep', 'keep the temp folder with the database and the log')
    .action(async (raw: Record<string, unknown>) => {
      const parsed = optionsSchema.safeParse(raw);
      if (!parsed.success) throw new CliExit(2, `crmhub demo: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      const o = parsed.data;
      // Loaded here so `crmhub --help` stays fast.
      const { runDemo } = await import('../../demo/run-demo.ts');
      const { renderDemo } = await import('../../demo/render-demo.ts');
      const report = await runDemo({
        ...(o.people === undefined ? {} : { people: o.people }),
        ...(o.keep ? { keepWorkDir: true } : {}),
        progress: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : renderDemo(report));
      if (!report.ok) process.exitCode = 1;
    });
}
