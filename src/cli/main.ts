/**
 * The `crmhub` command (design.md §6). Exit codes: 0 success, 1 failure, 2 usage or config error.
 * Each command lives in `commands/<name>.ts` and registers itself on the program.
 */
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.ts';
import { CliExit } from './cli-exit.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('crmhub')
    .description('crmhub — the open-source CRM sync hub')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  for (const register of commands) register(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CliExit) {
      if (error.message) process.stderr.write(`${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`crmhub: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}
