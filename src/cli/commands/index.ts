import type { Command } from 'commander';
import { registerServe } from './serve.ts';
import { registerProfiles } from './profiles.ts';
import { registerSync } from './sync.ts';
import { registerDlq } from './dlq.ts';
import { registerMappings } from './mappings.ts';
import { registerSandbox } from './sandbox.ts';
import { registerDemo } from './demo.ts';

/** Every command of `crmhub`, in the order `--help` lists them. */
export const commands: ((program: Command) => void)[] = [
  registerServe,
  registerSync,
  registerMappings,
  registerProfiles,
  registerDlq,
  registerSandbox,
  registerDemo,
];
