/**
 * Shared set-up for Pipedrive connector tests against the sandbox: a sandbox, a connector pointed at
 * it, rep actions through the control API, and webhook requests as Pipedrive would send them.
 */
import { randomUUID } from 'node:crypto';
import type { WebhookRequest } from '../../../src/connector-kit/connector.ts';
import type { FieldValues } from '../../../src/core/types.ts';
import { PipedriveConnector, type PipedriveConnectorOptions } from '../../../connectors/pipedrive/pipedrive-connector.ts';
import { startPipedriveSandbox, type PipedriveSandboxStartOptions, type RunningPipedriveSandbox } from '../../../connectors/pipedrive/sandbox/index.ts';

export interface PipedriveTestRig {
  sb: RunningPipedriveSandbox;
  connector: PipedriveConnector;
  control(route: string, body?: unknown): Promise<Record<string, unknown> & { status: number }>;
  stats(): Promise<{ calls: Record<string, number>; totalCalls: number; rateLimited: number }>;
  /** A rep creates a person in the UI (no webhook of ours involved); flat crmhub field names. */
  repCreatePerson(fields: FieldValues): Promise<string>;
  /** A valid v2 webhook request for a person, as Pipedrive would POST it. */
  personWebhook(id: string, meta?: Record<string, unknown>, previous?: Record<string, unknown> | null): Promise<WebhookRequest>;
  close(): Promise<void>;
}

/** Flat crmhub fields → a rep's edit body (v2 names; custom fields by name and option label). */
export function repBody(fields: FieldValues): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const first = fields['first_name'];
  const last = fields['last_name'];
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'first_name' || k === 'last_name') continue;
    if (k === 'email') body['emails'] = [{ value: v, primary: true, label: 'work' }];
    else if (k === 'phone') body['phones'] = [{ value: v, primary: true, label: 'work' }];
    else if (k === 'Audiences' && typeof v === 'string') body[k] = v.split(',');
    else body[k] = v;
  }
  if (first !== undefined || last !== undefined) body['name'] = [first, last].filter((s): s is string => typeof s === 'string' && s !== '').join(' ');
  return body;
}

export async function startPipedriveRig(options: Partial<PipedriveSandboxStartOptions> = {}, connectorOptions: Partial<PipedriveConnectorOptions> = {}): Promise<PipedriveTestRig> {
  const sb = await startPipedriveSandbox({ port: 0, webhookRetryDelayMs: () => 20, ...options });
  const connector = new PipedriveConnector({
    baseUrl: sb.credentials['baseUrl']!,
    apiToken: sb.credentials['apiToken']!,
    webhookUser: sb.credentials['webhookUser']!,
    webhookPassword: sb.credentials['webhookPassword']!,
    ...connectorOptions,
  });
  const control = async (route: string, body?: unknown): Promise<Record<string, unknown> & { status: number }> => {
    const res = await fetch(`${sb.baseUrl}/_sandbox/${route}`, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, ...((await res.json()) as Record<string, unknown>) };
  };
  return {
    sb,
    connector,
    control,
    stats: async () => (await control('stats')) as unknown as { calls: Record<string, number>; totalCalls: number; rateLimited: number },
    async repCreatePerson(fields) {
      const body = repBody(fields);
      if (typeof body['name'] !== 'string' || body['name'] === '') body['name'] = 'Rep Created';
      const [id] = (await control('seed', { object: 'persons', count: 1 }))['ids'] as string[];
      const res = await control('edit', { object: 'persons', id, fields: body });
      if (res.status !== 200) throw new TypeError(`rep edit failed: ${JSON.stringify(res)}`);
      return id!;
    },
    personWebhook(id, meta = {}, previous = { name: 'Before' }) {
      const record = sb.state.store.get('person', Number(id));
      const current = record ? sb.state.store.render(record) : null;
      const body = {
        meta: {
          action: 'change',
          entity: 'person',
          entity_id: id,
          id: randomUUID(),
          company_id: '7700001',
          user_id: '2',
          correlation_id: randomUUID(),
          is_bulk_edit: false,
          timestamp: new Date().toISOString(),
          type: 'general',
          version: '2.0',
          webhook_id: '1',
          webhook_owner_id: '1',
          change_source: 'app',
          permitted_user_ids: ['1'],
          attempt: 1,
          host: 'sandbox.pipedrive.test',
          ...meta,
        },
        data: current,
        previous,
      };
      const user = sb.credentials['webhookUser']!;
      const password = sb.credentials['webhookPassword']!;
      return Promise.resolve({
        method: 'POST',
        url: 'http://127.0.0.1/webhooks/pipedrive',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
        rawBody: Buffer.from(JSON.stringify(body)),
        now: Date.now(),
      });
    },
    async close() {
      await sb.close();
    },
  };
}
