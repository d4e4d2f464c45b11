import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerProfiles(program: Command): void {
  program
    .command('profiles')
    .description('(profiles: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub profiles is not built yet');
    });
}
