/**
 * `crmhub dlq list [--connector S] [--limit N] [--json]` and `crmhub dlq replay [ID...]`
 * (design.md §6): dead letters with their reason; replay re-enqueues the given ones (all unreplayed
 * when no id is given).
 */
import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';
import { defaultOpenRuntime, type OpenSyncRuntime } from './sync-runtime.ts';

export function registerDlq(program: Command, open: OpenSyncRuntime = defaultOpenRuntime): void {
  const dlq = program.command('dlq').description('dead letters: records a CRM rejected or that ran out of retries');
  dlq
    .command('list')
    .description('list dead letters (newest first)')
    .option('--connector <slug>', 'only this connector')
    .option('--limit <n>', 'how many', '100')
    .option('--all', 'include replayed ones')
    .option('--json', 'JSON on stdout')
    .action(async (flags: { connector?: string; limit: string; all?: boolean; json?: boolean }) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliExit(2, `crmhub dlq list: --limit must be a positive integer (got ${flags.limit})`);
      const runtime = await open();
      try {
        const rows = await runtime.store.listDeadLetters({ limit, includeReplayed: flags.all ?? false, ...(flags.connector ? { connector: flags.connector } : {}) });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ deadLetters: rows })}\n`);
          return;
        }
        if (rows.length === 0) process.stdout.write('no dead letters\n');
        for (const r of rows) {
          process.stdout.write(`${r.id}  ${r.createdAt}  ${r.connector}.${r.object}  profile ${r.profileId}  ${r.reason}  attempts ${r.attempts}${r.replayedAt ? `  replayed ${r.replayedAt}` : ''}\n`);
        }
      } finally {
        await runtime.close();
      }
    });
  dlq
    .command('replay')
    .description('re-enqueue dead letters (all unreplayed ones when no ID is given)')
    .argument('[ids...]', 'dead letter ids')
    .option('--json', 'JSON on stdout')
    .action(async (ids: string[], flags: { json?: boolean }) => {
      const runtime = await open();
      try {
        const replayed = await runtime.store.replayDeadLetters(ids, new Date().toISOString());
        if (flags.json) process.stdout.write(`${JSON.stringify({ replayed })}\n`);
        else process.stdout.write(`replayed ${replayed} dead letter${replayed === 1 ? '' : 's'}\n`);
        if (ids.length > 0 && replayed < ids.length) {
          throw new CliExit(1, `crmhub dlq replay: ${ids.length - replayed} of the given ids are unknown or already replayed`);
        }
      } finally {
        await runtime.close();
      }
    });
}
