/**
 * A small client for the sandboxes' control API (design.md §6: `/_sandbox/stats|edit|seed|config`),
 * used by the demo and the end-to-end tests. Every answer is parsed with zod.
 */
import { z } from 'zod';
import { CrmhubError } from '../connector-kit/errors.ts';

const statsSchema = z.looseObject({
  calls: z.record(z.string(), z.number()),
  totalCalls: z.number(),
  rateLimited: z.number(),
  records: z.record(z.string(), z.number()),
});
export type SandboxStatsBody = z.infer<typeof statsSchema>;

const seedSchema = z.looseObject({ ids: z.array(z.union([z.string(), z.number()]).transform(String)) });
const okSchema = z.looseObject({ ok: z.literal(true) });

export class SandboxControl {
  constructor(
    readonly slug: string,
    readonly baseUrl: string,
  ) {}

  private async call(method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.baseUrl}/_sandbox/${route}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new CrmhubError('transient', `${this.slug} sandbox ${route}: HTTP ${response.status} ${text.slice(0, 200)}`, { code: 'SANDBOX_CONTROL_FAILED', context: { connector: this.slug } });
    }
    return JSON.parse(text) as unknown;
  }

  async stats(): Promise<SandboxStatsBody> {
    return statsSchema.parse(await this.call('GET', 'stats'));
  }

  /** Adds `count` realistic records; returns their ids. */
  async seed(object: string, count: number): Promise<string[]> {
    return seedSchema.parse(await this.call('POST', 'seed', { object, count })).ids;
  }

  /** Changes a record as a rep in the CRM's UI would (webhooks fire). */
  async edit(object: string, id: string, fields: Record<string, unknown>): Promise<void> {
    okSchema.parse(await this.call('POST', 'edit', { object, id, fields }));
  }

  /** Deletes (archives) a record as a rep would (webhooks fire). */
  async remove(object: string, id: string): Promise<void> {
    okSchema.parse(await this.call('POST', 'delete', { object, id }));
  }

  /** `rateLimit`, `dailyQuota`, `faults`, `webhookUrl` (null stops deliveries). */
  async configure(config: Record<string, unknown>): Promise<void> {
    await this.call('POST', 'config', config);
  }
}
