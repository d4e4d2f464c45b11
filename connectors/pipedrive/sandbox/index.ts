/**
 * Starts the Pipedrive sandbox: a local server that the official `pipedrive` SDK can talk to
 * unchanged (v2 `basePath` `${baseUrl}/api/v2`, v1 `${baseUrl}/v1`), with Pipedrive's auth
 * (`x-api-token` header or `api_token` query), token-based rate limits and their headers, error
 * shapes and webhooks, plus the control API of design.md §6 and Pipedrive-specific controls:
 * `POST /_sandbox/rename-field`, `/_sandbox/delete-field`, `/_sandbox/add-field`, `GET /_sandbox/pipedrive`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { RunningSandbox, SandboxStartOptions } from '../../../src/connector-kit/connector-module.ts';
import { createSandboxServer } from '../../../src/connector-kit/sandbox/sandbox-server.ts';
import type { PipedriveLimitSettings } from './limits.ts';
import { registerV1Routes, sendV1Error } from './routes-v1.ts';
import { registerV2Routes, sendV2Error } from './routes-v2.ts';
import { PipedriveSandboxState, SandboxInputError } from './sandbox-state.ts';

/** `GET /_sandbox/pipedrive?since=MS`: count the burst window's acceptances from then (default: all kept). */
const sinceQuery = z.coerce.number().int().min(0).default(0);

export interface PipedriveSandboxStartOptions extends SandboxStartOptions {
  /** Fixed API token (default: 40 random hex characters, like a real token). */
  apiToken?: string;
  webhookUser?: string;
  webhookPassword?: string;
  limits?: Partial<PipedriveLimitSettings>;
  /** Webhook retry delay per attempt, ms (default 200·2ⁿ⁻¹ capped at 5 s: compressed). */
  webhookRetryDelayMs?: (attempt: number) => number;
  webhookMaxAttempts?: number;
}

export interface RunningPipedriveSandbox extends RunningSandbox {
  state: PipedriveSandboxState;
}

const renameBody = z.object({ object: z.string(), key: z.string(), name: z.string().min(1) });
const deleteFieldBody = z.object({ object: z.string(), key: z.string() });
const addFieldBody = z.object({
  object: z.string(),
  name: z.string().min(1),
  field_type: z.enum(['varchar', 'text', 'double', 'int', 'enum', 'set', 'date', 'phone', 'monetary']),
  options: z.array(z.string()).optional(),
});

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startPipedriveSandbox(options: PipedriveSandboxStartOptions): Promise<RunningPipedriveSandbox> {
  const apiToken = options.apiToken ?? randomBytes(20).toString('hex');
  const webhookUser = options.webhookUser ?? 'crmhub';
  const webhookPassword = options.webhookPassword ?? randomBytes(12).toString('hex');
  const server = createSandboxServer({ name: 'pipedrive', ...(options.stateFile ? { stateFile: options.stateFile } : {}) });
  const state = new PipedriveSandboxState({
    apiToken,
    webhookUser,
    webhookPassword,
    ...(options.webhookTarget ? { webhookUrl: `${options.webhookTarget.replace(/\/+$/, '')}/webhooks/pipedrive` } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.webhookRetryDelayMs ? { webhookRetryDelayMs: options.webhookRetryDelayMs } : {}),
    ...(options.webhookMaxAttempts ? { webhookMaxAttempts: options.webhookMaxAttempts } : {}),
  });
  const { app } = server;

  // Auth, then rate limits, on every vendor route (the frame's hook has counted and faulted first).
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return undefined;
    const header = request.headers['x-api-token'];
    const bearer = request.headers.authorization?.startsWith('Bearer ') ? request.headers.authorization.slice(7) : undefined;
    const query = new URL(request.url, 'http://sandbox').searchParams.get('api_token') ?? undefined;
    const token = (typeof header === 'string' ? header : undefined) ?? bearer ?? query;
    if (token === undefined || !sameSecret(token, apiToken)) return sendV1Error(reply, 401, 'unauthorized access');
    const route = `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0] ?? ''}`;
    const decision = state.limits.take(route, Date.now());
    void reply.headers(decision.headers);
    if (!decision.ok) {
      server.counters.rateLimited++;
      // Same body for burst and daily-budget exhaustion (fixture error.429.constructed.json).
      return reply.code(429).send({ success: false, error: 'Request over limit', errorCode: 429, error_info: 'Please check developers.pipedrive.com' });
    }
    return undefined;
  });

  app.setNotFoundHandler((request, reply) => {
    if (request.url.startsWith('/api/v2/')) return sendV2Error(reply, 404, 'Not found', `Unknown route ${request.method} ${request.url.split('?')[0] ?? ''}`);
    return sendV1Error(reply, 404, 'Unknown method .');
  });

  app.setErrorHandler((error: { statusCode?: number; message: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const message = status === 500 ? 'Internal server error' : error.message;
    if (request.url.startsWith('/v1/')) return sendV1Error(reply, status, message);
    return sendV2Error(reply, status, message);
  });

  registerV2Routes(app, state);
  registerV1Routes(app, state);

  const control = (handler: (body: unknown) => unknown) => (request: { body: unknown }, reply: { code(n: number): { send(b: unknown): unknown } }) => {
    try {
      return { ok: true, ...(handler(request.body) as object) };
    } catch (error) {
      if (error instanceof SandboxInputError || error instanceof z.ZodError) return reply.code(400).send({ error: error.message });
      throw error;
    }
  };
  app.post('/_sandbox/rename-field', control((body) => {
    const b = renameBody.parse(body);
    return { field: state.renameField(b.object, b.key, b.name) };
  }));
  app.post('/_sandbox/delete-field', control((body) => {
    const b = deleteFieldBody.parse(body);
    state.deleteField(b.object, b.key);
    return {};
  }));
  app.post('/_sandbox/add-field', control((body) => {
    const b = addFieldBody.parse(body);
    return { field: state.addField(b.object, b.name, b.field_type, b.options) };
  }));
  app.get('/_sandbox/pipedrive', (request, reply) => {
    const since = sinceQuery.safeParse(new URL(request.url, 'http://sandbox').searchParams.get('since') ?? undefined);
    if (!since.success) return reply.code(400).send({ error: 'since: a time in ms since the epoch' });
    return state.details(Date.now(), since.data);
  });

  server.use(state);
  const baseUrl = await server.listen(options.port, options.host ?? '127.0.0.1');
  return {
    slug: 'pipedrive',
    baseUrl,
    credentials: { baseUrl, apiToken, webhookUser, webhookPassword },
    env: { PIPEDRIVE_BASE_URL: baseUrl, PIPEDRIVE_API_TOKEN: apiToken, PIPEDRIVE_WEBHOOK_USER: webhookUser, PIPEDRIVE_WEBHOOK_PASSWORD: webhookPassword },
    server,
    state,
    close: () => server.close(),
  };
}
