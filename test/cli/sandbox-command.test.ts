/**
 * `crmhub sandbox --json` (design.md §6): one JSON object on the first stdout line with the three
 * sandboxes' URLs and credentials, every sandbox answering its control API, and a clean exit on
 * SIGINT.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

describe('crmhub sandbox', () => {
  it('prints the design.md §6 JSON shape, serves each control API, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [path.join(root, 'bin/crmhub.mjs'), 'sandbox', '--json'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const firstLine = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout });
      rl.once('line', resolve);
      child.once('exit', () => reject(new Error('crmhub sandbox exited before printing')));
    });
    const out = JSON.parse(firstLine) as Record<string, Record<string, unknown>>;
    expect(Object.keys(out).sort()).toEqual(['hubspot', 'pipedrive', 'salesforce']);
    for (const key of ['instanceUrl', 'loginUrl', 'accessToken', 'clientId', 'clientSecret', 'orgId', 'webhookToken']) {
      expect(typeof out.salesforce![key]).toBe('string');
    }
    for (const key of ['baseUrl', 'accessToken', 'clientSecret']) expect(typeof out.hubspot![key]).toBe('string');
    for (const key of ['baseUrl', 'apiToken', 'webhookUser', 'webhookPassword']) expect(typeof out.pipedrive![key]).toBe('string');

    for (const base of [out.salesforce!.instanceUrl, out.hubspot!.baseUrl, out.pipedrive!.baseUrl] as string[]) {
      const stats = (await (await fetch(`${base}/_sandbox/stats`)).json()) as Record<string, unknown>;
      expect(stats).toMatchObject({ totalCalls: 0, rateLimited: 0 });
      expect(typeof stats.calls).toBe('object');
      expect(typeof stats.records).toBe('object');
    }

    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
