import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('(demo: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub demo is not built yet');
    });
}
