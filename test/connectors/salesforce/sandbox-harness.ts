/**
 * Starts the Salesforce sandbox with a capture server standing in for crmhub's webhook endpoint,
 * and builds the connector from the sandbox's environment, as `crmhub serve` would.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import salesforce from '../../../connectors/salesforce/index.ts';
import type { SalesforceConnector } from '../../../connectors/salesforce/salesforce-connector.ts';
import type { WebhookRequest } from '../../../src/connector-kit/connector.ts';
import type { RunningSandbox } from '../../../src/connector-kit/connector-module.ts';
import type { FieldValues } from '../../../src/core/types.ts';
import { OUTBOUND_MESSAGE_ACK } from '../../../connectors/salesforce/outbound-message.ts';

export interface CapturedWebhook extends WebhookRequest {
  text: string;
}

export interface SalesforceSandboxHarness {
  sandbox: RunningSandbox;
  connector: SalesforceConnector;
  captured: CapturedWebhook[];
  control(path: string, body: unknown): Promise<unknown>;
  stats(): Promise<{ calls: Record<string, number>; totalCalls: number; records: Record<string, number> }>;
  /** Creates a record the way another integration would (REST, no crmhub client name). */
  createAsRep(object: string, fields: FieldValues): Promise<string>;
  waitForWebhook(predicate: (w: CapturedWebhook) => boolean, timeoutMs?: number): Promise<CapturedWebhook>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startHarness(extraEnv: Record<string, string> = {}, connectorEnvOverrides: Record<string, string | undefined> = {}): Promise<SalesforceSandboxHarness> {
  const captured: CapturedWebhook[] = [];
  const capture: Server = createServer((req, res) => {
    void readBody(req).then((raw) => {
      const host = req.headers.host ?? '127.0.0.1';
      captured.push({ method: req.method ?? 'POST', url: `http://${host}${req.url ?? '/'}`, headers: req.headers, rawBody: raw, now: Date.now(), text: raw.toString('utf8') });
      const xml = (req.headers['content-type'] ?? '').includes('xml');
      res.writeHead(200, { 'content-type': xml ? 'text/xml' : 'application/json' });
      res.end(xml ? OUTBOUND_MESSAGE_ACK : '{}');
    });
  });
  await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', resolve));
  const capturePort = (capture.address() as AddressInfo).port;
  const sandbox = await salesforce.startSandbox({ port: 0, webhookTarget: `http://127.0.0.1:${capturePort}` });
  const env = { ...sandbox.env, ...extraEnv, ...connectorEnvOverrides };
  const connector = salesforce.fromEnv(env) as SalesforceConnector | null;
  if (connector === null) throw new TypeError('sandbox env did not build a connector');
  const control = async (path: string, body: unknown): Promise<unknown> => {
    const res = await fetch(`${sandbox.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json: unknown = await res.json();
    if (!res.ok) throw new TypeError(`control ${path} failed: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    sandbox,
    connector,
    captured,
    control,
    async stats() {
      const res = await fetch(`${sandbox.baseUrl}/_sandbox/stats`);
      return (await res.json()) as { calls: Record<string, number>; totalCalls: number; records: Record<string, number> };
    },
    async createAsRep(object, fields) {
      const res = await fetch(`${sandbox.baseUrl}/services/data/v62.0/sobjects/${object}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${sandbox.env['SALESFORCE_ACCESS_TOKEN'] ?? ''}` },
        body: JSON.stringify(fields),
      });
      const json = (await res.json()) as { id?: string };
      if (!res.ok || json.id === undefined) throw new TypeError(`create ${object} failed: ${res.status} ${JSON.stringify(json)}`);
      return json.id;
    },
    async waitForWebhook(predicate, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = captured.find(predicate);
        if (hit !== undefined) return hit;
        if (Date.now() > until) throw new TypeError('webhook not delivered in time');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await connector.close();
      await sandbox.close();
      await new Promise<void>((resolve) => capture.close(() => resolve()));
    },
  };
}
