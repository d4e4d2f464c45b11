import type { Command } from 'commander';
import { CliExit } from '../cli-exit.ts';

// Placeholder until its issue lands; replaced by the real command.
export function registerMappings(program: Command): void {
  program
    .command('mappings')
    .description('(mappings: not built yet)')
    .action(() => {
      throw new CliExit(1, 'crmhub mappings is not built yet');
    });
}
