/**
 * End-to-end harness: one CRM sandbox, crmhub (`startServer` with the real serve hook: webhook and
 * admin routes, ingest → outbox, workers) on a temp SQLite file, and a recording relay between the
 * sandbox's webhooks and crmhub, so tests can see each delivery arrive and replay or tamper with it.
 * The relay's URL is crmhub's public base URL (signatures such as HubSpot v3 cover the URL).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';
import type { Connector } from '../../src/connector-kit/connector.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import type { JsonValue, Profile } from '../../src/core/types.ts';
import { getProfileView } from '../../src/identity/profile-view.ts';
import { startSandboxes } from '../../src/cli/commands/sandbox.ts';
import { startServer, type RunningServer } from '../../src/cli/commands/serve.ts';
import { connectorsFromEnv, type Runtime } from '../../src/cli/runtime.ts';
import { createSyncServeHook } from '../../src/cli/serve-wiring.ts';
import { SandboxControl } from '../../src/demo/sandbox-control.ts';

export interface RecordedDelivery {
  method: string;
  /** Path and query as the sandbox called them. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** crmhub's answer. */
  status: number;
}

export interface Hub {
  slug: string;
  url: string;
  relayUrl: string;
  runtime: Runtime;
  connector: Connector;
  control: SandboxControl;
  sandbox: RunningSandbox;
  env: Record<string, string>;
  deliveries: RecordedDelivery[];
  writeKey: string;
  /** Sends Segment events through the event API over HTTP. */
  send(events: Record<string, JsonValue>[]): Promise<void>;
  profile(email: string): Promise<Profile | null>;
  /** Replays a recorded delivery (optionally altered) to crmhub; resolves with the HTTP status. */
  replay(delivery: RecordedDelivery, alter?: { body?: Buffer; headers?: Record<string, string>; url?: string }): Promise<number>;
  /** The sandbox's webhook URL for crmhub (through the relay); null stops deliveries. */
  webhooks(on: boolean): Promise<void>;
  close(): Promise<void>;
}

export async function waitFor<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new TypeError(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const HOP_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'keep-alive']);

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_HEADERS.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export async function startHub(slug: string): Promise<Hub> {
  const dir = await mkdtemp(path.join(tmpdir(), `crmhub-e2e-${slug}-`));
  const [sandbox] = await startSandboxes({ only: [slug] });
  if (!sandbox) throw new TypeError(`no ${slug} sandbox`);
  const deliveries: RecordedDelivery[] = [];
  let hubUrl = '';
  const post = async (url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; type: string; text: string }> => {
    const response = await fetch(`${hubUrl}${url}`, { method: 'POST', headers, body });
    return { status: response.status, type: response.headers.get('content-type') ?? 'text/plain', text: await response.text() };
  };
  const relay: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void post(req.url ?? '/', forwardHeaders(req.headers), body).then(
        (r) => {
          deliveries.push({ method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body, status: r.status });
          res.writeHead(r.status, { 'content-type': r.type }).end(r.text);
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  const writeKey = `e2e-${slug}`;
  const config = loadConfig(
    {
      ...sandbox.env,
      CRMHUB_DATABASE_URL: `sqlite:${path.join(dir, 'hub.db')}`,
      CRMHUB_PORT: '0',
      CRMHUB_WRITE_KEYS: writeKey,
      CRMHUB_ADMIN_TOKEN: `e2e-admin-${slug}`,
      CRMHUB_MAPPINGS_DIR: path.resolve('mappings'),
      CRMHUB_LOG_LEVEL: 'warn',
    },
    null,
  );
  const logger = pino({ level: 'warn' }, pino.destination({ dest: path.join(dir, 'hub.log'), sync: true }));
  let runtime: Runtime | undefined;
  const server: RunningServer = await startServer(config, {
    logger,
    hooks: [createSyncServeHook({ connectors: connectorsFromEnv(sandbox.env, logger), schedule: [], workerPollMs: 25, publicBaseUrl: relayUrl, onRuntime: (r) => (runtime = r) })],
  });
  hubUrl = server.url;
  if (!runtime) throw new TypeError('the serve hook did not open the runtime');
  const rt = runtime;
  const control = new SandboxControl(slug, sandbox.baseUrl);
  const webhookPath = slug === 'salesforce' ? `/webhooks/salesforce?token=${encodeURIComponent(sandbox.env['SALESFORCE_WEBHOOK_TOKEN'] ?? '')}` : `/webhooks/${slug}`;
  return {
    slug,
    url: server.url,
    relayUrl,
    runtime: rt,
    connector: rt.connectors.get(slug) ?? (() => { throw new TypeError(`${slug} not configured`); })(),
    control,
    sandbox,
    env: sandbox.env,
    deliveries,
    writeKey,
    async send(events) {
      const response = await fetch(`${server.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
        body: JSON.stringify({ batch: events }),
      });
      if (response.status !== 200) throw new TypeError(`event API: ${response.status} ${await response.text()}`);
    },
    profile: (email) => getProfileView(rt.store.read(), `email:${email}`),
    async replay(delivery, alter = {}) {
      const r = await post(alter.url ?? delivery.url, { ...forwardHeaders(delivery.headers), ...alter.headers }, alter.body ?? delivery.body);
      return r.status;
    },
    webhooks: (on) => control.configure({ webhookUrl: on ? `${relayUrl}${webhookPath}` : null }),
    async close() {
      await server.stop();
      relay.closeAllConnections();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      await sandbox.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
