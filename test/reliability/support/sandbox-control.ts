/** The sandboxes' control API (design.md §6): stats, config, seed, edit, reset. */
import { z } from 'zod';
import type { RunningSandbox } from '../../../src/connector-kit/connector-module.ts';

const statsSchema = z.looseObject({
  calls: z.record(z.string(), z.number()),
  totalCalls: z.number(),
  rateLimited: z.number(),
  faultsInjected: z.number().default(0),
  records: z.record(z.string(), z.number()),
});
export type SandboxStats = z.infer<typeof statsSchema>;

async function control(sandbox: RunningSandbox, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${sandbox.baseUrl}/_sandbox/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${sandbox.slug} /_sandbox/${path}: ${res.status} ${text.slice(0, 300)}`);
  return text === '' ? null : (JSON.parse(text) as unknown);
}

export async function stats(sandbox: RunningSandbox): Promise<SandboxStats> {
  return statsSchema.parse(await control(sandbox, 'GET', 'stats'));
}

export function configure(sandbox: RunningSandbox, config: Record<string, unknown>): Promise<unknown> {
  return control(sandbox, 'POST', 'config', config);
}

/**
 * Adds `count` realistic records. With `from` (the control API's `seed`), the records are numbers
 * `from` … `from + count − 1` of the CRM's fixed sequence: the same call gives the same people in any
 * sandbox of that CRM, whatever it already holds.
 */
export function seed(sandbox: RunningSandbox, object: string, count: number, from?: number): Promise<unknown> {
  return control(sandbox, 'POST', 'seed', { object, count, ...(from === undefined ? {} : { seed: from }) });
}

export function reset(sandbox: RunningSandbox): Promise<unknown> {
  return control(sandbox, 'POST', 'reset', {});
}
