import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('(serve: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub serve is not built yet');
    });
}
