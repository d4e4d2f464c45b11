import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerSync(program: Command): void {
  program
    .command('sync')
    .description('(sync: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub sync is not built yet');
    });
}
