import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description('(sandbox: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub sandbox is not built yet');
    });
}
