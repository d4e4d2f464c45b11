/**
 * `crmhub sync [--connector S] [--object O] [--direction pull|push|both] [--full] [--dry-run] [--json]`
 * (design.md §6): one sync run; progress bars on a TTY; a summary at the end (JSON with `--json`);
 * `--dry-run` prints the plan and writes nothing. Exit 1 when any object's run failed.
 */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import type { RunOnceOptions, RunSummary } from '../../sync/sync-engine.ts';
import { CliExit } from '../cli-exit.ts';
import { defaultOpenRuntime, type OpenSyncRuntime } from './sync-runtime.ts';

interface SyncFlags {
  connector?: string;
  object?: string;
  direction: 'pull' | 'push' | 'both';
  full?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

function summaryTable(summary: RunSummary): string {
  const head = ['connector', 'object', 'status', 'created', 'updated', 'skipped', 'failed', 'deleted', 'conflicts', 'api calls', 'pending', 'ms'];
  const rows = summary.objects.map((o) => [o.connector, o.object, o.status, o.created, o.updated, o.skipped, o.failed, o.deleted, o.conflicts, o.apiCalls, o.pending, o.durationMs].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const errors = summary.objects.filter((o) => o.error).map((o) => `${o.connector}.${o.object}: ${o.error ?? ''}`);
  const title = `${summary.dryRun ? 'Dry run (nothing written)' : 'Sync run'}: direction ${summary.direction}${summary.full ? ', full' : ''}, ${summary.durationMs} ms`;
  return [title, line(head), ...rows.map(line), ...errors].join('\n') + '\n';
}

export function registerSync(program: Command, open: OpenSyncRuntime = defaultOpenRuntime): void {
  program
    .command('sync')
    .description('run one sync: pull changes from CRMs and push profile changes to them')
    .option('--connector <slug>', 'only this connector (hubspot, salesforce, pipedrive)')
    .option('--object <name>', 'only this CRM object (contacts, Contact, persons, …)')
    .addOption(new Option('--direction <direction>', 'which way').choices(['pull', 'push', 'both']).default('both'))
    .option('--full', 'reconciliation pass: read everything, find missed changes and deletes')
    .option('--dry-run', 'print the plan and write nothing')
    .option('--json', 'print the summary as JSON on stdout')
    .action(async (flags: SyncFlags) => {
      const runtime = await open();
      const tty = process.stderr.isTTY && !flags.json;
      const bars = tty ? new cliProgress.MultiBar({ clearOnComplete: false, hideCursor: true, format: '{name} {phase} [{bar}] {value}/{total}' }, cliProgress.Presets.shades_classic) : null;
      const known = new Map<string, cliProgress.SingleBar>();
      const planLines: string[] = [];
      try {
        const options: RunOnceOptions = {
          direction: flags.direction,
          full: flags.full ?? false,
          dryRun: flags.dryRun ?? false,
          trigger: 'cli',
          ...(flags.connector ? { connector: flags.connector } : {}),
          ...(flags.object ? { object: flags.object } : {}),
          onProgress: (e) => {
            if (!bars) return;
            const key = `${e.connector}.${e.object}`;
            let bar = known.get(key);
            if (!bar) {
              bar = bars.create(Math.max(1, e.total ?? e.done), 0, { name: key, phase: e.phase });
              known.set(key, bar);
            }
            bar.setTotal(Math.max(1, e.total ?? e.done));
            bar.update(e.done, { phase: e.phase });
          },
          ...(flags.dryRun
            ? {
                onPlan: (entry) => {
                  const changes = entry.plan
                    ? [
                        ...entry.plan.toProfile.map((w) => `profile.${w.key}=${JSON.stringify(w.value)}`),
                        ...Object.entries(entry.plan.toRemote).map(([k, v]) => `remote.${k}=${JSON.stringify(v)}`),
                        ...entry.plan.conflicts.map((c) => `conflict ${c.field} (${c.rule} → ${c.resolution})`),
                      ]
                    : [];
                  planLines.push(`${entry.remoteId} ${entry.outcome}${changes.length ? ': ' + changes.join(', ') : ''}`);
                },
              }
            : {}),
        };
        const summary = await runtime.engine.runOnce(options);
        bars?.stop();
        if (flags.json) process.stdout.write(`${JSON.stringify(flags.dryRun ? { ...summary, plan: planLines } : summary)}\n`);
        else {
          if (flags.dryRun) process.stdout.write(planLines.map((l) => `plan ${l}\n`).join(''));
          process.stdout.write(summaryTable(summary));
        }
        if (summary.objects.length === 0) throw new CliExit(2, 'crmhub sync: nothing to sync (no configured connector has a mapping for that selection)');
        if (summary.objects.some((o) => o.status === 'failed')) process.exitCode = 1;
      } finally {
        bars?.stop();
        await runtime.close();
      }
    });
}
