import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerDlq(program: Command): void {
  program
    .command('dlq')
    .description('(dlq: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub dlq is not built yet');
    });
}
