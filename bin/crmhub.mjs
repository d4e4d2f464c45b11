#!/usr/bin/env node
// The crmhub command. It runs the TypeScript sources through tsx's loader so that a fresh
// clone works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
