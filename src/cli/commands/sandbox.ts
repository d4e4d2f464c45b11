import type { Command } from 'commander';
import { z } from 'zod';
import { CliExit } from '../cli-exit.ts';
import { connectorModules } from '../connector-modules.ts';
import type { RunningSandbox } from '../../connector-kit/connector-module.ts';

const optionsSchema = z.object({
  json: z.boolean().optional(),
  portBase: z.coerce.number().int().min(0).max(65533).optional(),
  host: z.string().min(1).default('127.0.0.1'),
  webhookTarget: z.url().optional(),
  stateDir: z.string().optional(),
  only: z.string().optional(),
});

/** Starts every sandbox (or the `--only` ones) and returns them; closes what started if one fails. */
export async function startSandboxes(options: {
  portBase?: number;
  host?: string;
  webhookTarget?: string;
  stateDir?: string;
  only?: string[];
}): Promise<RunningSandbox[]> {
  const started: RunningSandbox[] = [];
  try {
    for (const [index, module] of connectorModules.entries()) {
      if (options.only && !options.only.includes(module.slug)) continue;
      started.push(
        await module.startSandbox({
          port: options.portBase === undefined ? 0 : options.portBase + index,
          host: options.host ?? '127.0.0.1',
          ...(options.webhookTarget === undefined ? {} : { webhookTarget: options.webhookTarget }),
          ...(options.stateDir === undefined ? {} : { stateFile: `${options.stateDir}/${module.slug}.json` }),
        }),
      );
    }
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.close()));
    throw error;
  }
  return started;
}

export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description('start the Salesforce, HubSpot and Pipedrive simulators on loopback and print their URLs and credentials')
    .option('--json', 'print one JSON object on the first stdout line')
    .option('--port-base <n>', 'use ports N, N+1, N+2 (Salesforce, HubSpot, Pipedrive); default: free ports')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--webhook-target <url>', 'deliver webhooks to crmhub at this base URL (e.g. http://127.0.0.1:8080)')
    .option('--state-dir <dir>', 'persist sandbox state to files in this folder')
    .option('--only <slugs>', 'comma-separated subset, e.g. hubspot,pipedrive')
    .action(async (raw: Record<string, unknown>) => {
      const parsed = optionsSchema.safeParse(raw);
      if (!parsed.success) {
        throw new CliExit(2, `crmhub sandbox: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      const o = parsed.data;
      const sandboxes = await startSandboxes({
        host: o.host,
        ...(o.portBase === undefined ? {} : { portBase: o.portBase }),
        ...(o.webhookTarget === undefined ? {} : { webhookTarget: o.webhookTarget }),
        ...(o.stateDir === undefined ? {} : { stateDir: o.stateDir }),
        ...(o.only === undefined ? {} : { only: o.only.split(',').map((s) => s.trim()) }),
      });
      if (o.json) {
        const out: Record<string, Record<string, string>> = {};
        for (const s of sandboxes) out[s.slug] = s.credentials;
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        for (const s of sandboxes) {
          process.stdout.write(`\n${s.slug}  ${s.baseUrl}\n`);
          for (const [k, v] of Object.entries(s.env)) process.stdout.write(`  export ${k}=${v}\n`);
        }
        process.stdout.write('\nSandboxes are up; press Ctrl-C to stop.\n');
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await Promise.allSettled(sandboxes.map((s) => s.close()));
    });
}
