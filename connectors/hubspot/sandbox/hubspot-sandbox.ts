/**
 * The HubSpot sandbox: a local HTTP server that `@hubspot/api-client` works against unchanged
 * (`basePath`), on the shared sandbox frame (control API of design.md §6). It adds bearer-token
 * auth, HubSpot's rate limits (rolling 10-second window, a separate ~5/s search limit, a daily
 * budget) with the `X-HubSpot-RateLimit-*` headers on every response and HubSpot's 429 bodies,
 * and webhooks v3: batches of up to 100 events posted to `webhookUrl`, signed with
 * `X-HubSpot-Signature-v3` (HMAC-SHA256 over method + URI + body + timestamp, base64) and the v1
 * signature, retried on failure.
 */
import { createHash, createHmac } from 'node:crypto';
import { z } from 'zod';
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import type { RunningSandbox, SandboxStartOptions } from '../../../src/connector-kit/connector-module.ts';
import { createSandboxServer, type SandboxBehaviour, type SandboxConfig } from '../../../src/connector-kit/sandbox/sandbox-server.ts';
import { DailyBudget, RollingWindowLimiter } from '../../../src/connector-kit/sandbox/window-limiter.ts';
import { WebhookDispatcher } from '../../../src/connector-kit/sandbox/webhook-dispatcher.ts';
import { OBJECT_NAMES, resolveObjectName, type ObjectName } from './property-catalog.ts';
import { RecordStore, defaultTypeId, type ChangeEvent, type ChangeSource, type StoreSnapshot } from './record-store.ts';
import { errorBody } from './http-shapes.ts';
import { registerObjectRoutes, type RouteContext } from './object-routes.ts';
import { registerMetaRoutes } from './meta-routes.ts';
import { seedProperties } from './seed-data.ts';

/** Private app, Professional tier (reference §1.6): 190 per 10 s, 625,000 per day; search ~5/s. */
export const DEFAULT_LIMITS = { tenSecondly: 190, daily: 625_000, search: 5 } as const;

/** A webhook event as HubSpot posts it (reference §1.8). */
export interface WebhookEvent extends ChangeEvent {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  attemptNumber: number;
}

export interface HubSpotSandboxOptions extends SandboxStartOptions {
  /** Bearer token the sandbox accepts. Default `pat-na1-crmhub-sandbox-token`. */
  accessToken?: string;
  /** The app's client secret that signs webhooks. Default `crmhub-sandbox-client-secret`. */
  clientSecret?: string;
  /** App id of the token (webhook `appId`, `sourceId` of its writes). Default 1160452. */
  appId?: number;
  /** Portal (hub) id. Default 62515. */
  portalId?: number;
  /** Webhook retry delay per attempt, ms (HubSpot spreads 10 retries over ~24 h; compressed here). */
  webhookRetryDelayMs?: (attempt: number) => number;
  /** Gathering time before a webhook batch goes out, ms. Default 20. */
  webhookLingerMs?: number;
}

const configSchema = z.object({
  rateLimit: z.object({ tenSecondly: z.number().int().min(1).optional(), daily: z.number().int().min(0).optional(), search: z.number().int().min(1).optional() }).partial().optional(),
  dailyQuota: z.number().int().min(0).optional(),
  webhookUrl: z.string().url().nullable().optional(),
});

const RATE_HEADERS = {
  daily: 'X-HubSpot-RateLimit-Daily',
  dailyRemaining: 'X-HubSpot-RateLimit-Daily-Remaining',
  interval: 'X-HubSpot-RateLimit-Interval-Milliseconds',
  max: 'X-HubSpot-RateLimit-Max',
  remaining: 'X-HubSpot-RateLimit-Remaining',
  secondly: 'X-HubSpot-RateLimit-Secondly',
  secondlyRemaining: 'X-HubSpot-RateLimit-Secondly-Remaining',
} as const;

/** v3 signature (HubSpot "Validating requests"): base64(HMAC-SHA256(secret, method + uri + body + timestamp)). */
export function signV3(clientSecret: string, method: string, uri: string, body: string, timestamp: number): string {
  return createHmac('sha256', clientSecret).update(`${method}${uri}${body}${timestamp}`).digest('base64');
}

export async function startHubSpotSandbox(options: HubSpotSandboxOptions): Promise<RunningSandbox> {
  const accessToken = options.accessToken ?? 'pat-na1-crmhub-sandbox-token';
  const clientSecret = options.clientSecret ?? 'crmhub-sandbox-client-secret';
  const appId = options.appId ?? 1160452;
  const portalId = options.portalId ?? 62515;
  const server = createSandboxServer({ name: 'hubspot', ...(options.stateFile ? { stateFile: options.stateFile } : {}) });
  const { app, counters } = server;

  const now = Date.now;
  const limits = { tenSecondly: new RollingWindowLimiter(DEFAULT_LIMITS.tenSecondly, 10_000), search: new RollingWindowLimiter(DEFAULT_LIMITS.search, 1_000), daily: new DailyBudget(DEFAULT_LIMITS.daily, now()) };
  const webhook = {
    url: options.webhookTarget ? `${options.webhookTarget.replace(/\/$/, '')}/webhooks/hubspot` : null as string | null,
    eventId: 100,
    rejected: 0,
  };
  const subscriptionIds = new Map<string, number>();

  const dispatcher = new WebhookDispatcher<WebhookEvent>({
    maxBatch: 100,
    lingerMs: options.webhookLingerMs ?? 20,
    ...(options.webhookRetryDelayMs ? { retryDelayMs: options.webhookRetryDelayMs } : {}),
    send: async (batch, attempt) => {
      const url = webhook.url;
      if (!url) return true;
      const body = JSON.stringify(batch.map((e) => ({ ...e, attemptNumber: attempt - 1 })));
      const timestamp = Date.now();
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'X-HubSpot-Signature-v3': signV3(clientSecret, 'POST', url, body, timestamp),
            'X-HubSpot-Request-Timestamp': String(timestamp),
            'X-HubSpot-Signature': createHash('sha256').update(clientSecret + body).digest('hex'),
            'X-HubSpot-Signature-Version': 'v1',
            'User-Agent': 'HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio) - WebhooksExecutorDaemon-executor',
          },
          body,
          // HubSpot's webhook timeout is 5 s (webhooks guide).
          signal: AbortSignal.timeout(5_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        // HubSpot does not retry most 4xx answers (webhooks guide); 429 and 5xx are retried.
        if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          webhook.rejected += batch.length;
          return true;
        }
        return false;
      } catch {
        return false;
      }
    },
  });

  const emit = (event: ChangeEvent): void => {
    if (!webhook.url) return;
    let subscriptionId = subscriptionIds.get(event.subscriptionType);
    if (subscriptionId === undefined) subscriptionIds.set(event.subscriptionType, (subscriptionId = 1000 + subscriptionIds.size));
    dispatcher.enqueue({ ...event, eventId: webhook.eventId++, subscriptionId, portalId, appId, attemptNumber: 0 });
  };
  const store = new RecordStore(emit, now);
  const apiSource: ChangeSource = { changeSource: 'INTEGRATION', sourceId: String(appId) };
  const uiSource: ChangeSource = { changeSource: 'CRM_UI', sourceId: 'userId:2304915' };
  const ctx: RouteContext = { store, apiSource };

  const setRateHeaders = (reply: { header(k: string, v: string): unknown }, t: number): void => {
    const max = limits.tenSecondly.limit;
    const remaining = limits.tenSecondly.remaining(t);
    reply.header(RATE_HEADERS.daily, String(limits.daily.limit));
    reply.header(RATE_HEADERS.dailyRemaining, String(limits.daily.remaining(t)));
    reply.header(RATE_HEADERS.interval, '10000');
    reply.header(RATE_HEADERS.max, String(max));
    reply.header(RATE_HEADERS.remaining, String(remaining));
    reply.header(RATE_HEADERS.secondly, String(Math.ceil(max / 10)));
    reply.header(RATE_HEADERS.secondlyRemaining, String(Math.min(Math.ceil(max / 10), remaining)));
  };

  // Auth and rate limits for every vendor route; runs after the frame's counting/fault hook.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox/')) return undefined;
    const t = now();
    const auth = request.headers.authorization;
    if (auth !== `Bearer ${accessToken}`) {
      setRateHeaders(reply, t);
      const message = auth
        ? 'Authentication credentials not found. The access token is invalid or expired.'
        : 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview';
      return reply.code(401).send(errorBody('INVALID_AUTHENTICATION', message));
    }
    const isSearch = request.method === 'POST' && request.url.split('?')[0]?.endsWith('/search') === true;
    const limited = (body: object): unknown => {
      counters.rateLimited++;
      setRateHeaders(reply, t);
      return reply.code(429).header('content-type', 'application/json;charset=utf-8').send(body);
    };
    const rate = (message: string, policyName: string | undefined): object => ({
      status: 'error',
      message,
      errorType: 'RATE_LIMIT',
      correlationId: errorBody('RATE_LIMITS', '').correlationId,
      ...(policyName ? { policyName } : {}),
      requestId: errorBody('RATE_LIMITS', '').correlationId,
    });
    if (limits.daily.remaining(t) <= 0) return limited(rate('You have reached your daily limit.', 'DAILY'));
    // Search endpoints are exempt from the ten-secondly limit (spec: x-hubspot-rate-limit-exemptions) but have their own.
    if (isSearch) {
      if (!limits.search.take(t).ok) return limited(rate('You have reached your secondly limit.', undefined));
    } else if (!limits.tenSecondly.take(t).ok) {
      return limited(rate('You have reached your ten_secondly_rolling limit.', 'TEN_SECONDLY_ROLLING'));
    }
    limits.daily.take(t);
    setRateHeaders(reply, t);
    return undefined;
  });

  registerObjectRoutes(app, ctx);
  registerMetaRoutes(app, ctx, () => ({
    limit: limits.daily.limit,
    used: limits.daily.used,
    resetsAt: new Date(Math.floor(now() / 86_400_000 + 1) * 86_400_000).toISOString(),
  }));

  const objectOrThrow = (name: string): ObjectName => {
    const object = resolveObjectName(name);
    if (!object) throw new CrmhubError('payload', `unknown HubSpot object "${name}" (contacts, companies, deals)`, { code: 'SANDBOX_UNKNOWN_OBJECT' });
    return object;
  };

  const behaviour: SandboxBehaviour = {
    edit(objectName, id, fields) {
      const object = objectOrThrow(objectName);
      const result = store.update(object, id, fields, uiSource);
      if (!result.ok) {
        const detail = result.kind === 'validation' ? result.issues.map((i) => i.message).join('; ') : result.kind;
        throw new CrmhubError('payload', `edit of ${object}/${id} failed: ${detail}`, { code: 'SANDBOX_EDIT_FAILED' });
      }
      return { id: result.record.id, properties: result.record.props, updatedAt: new Date(result.record.updatedAt).toISOString() };
    },
    remove(objectName, id) {
      const object = objectOrThrow(objectName);
      if (!store.archive(object, id, uiSource)) throw new CrmhubError('payload', `${object}/${id} not found`, { code: 'SANDBOX_NOT_FOUND' });
    },
    seed(objectName, count, seed) {
      const object = objectOrThrow(objectName);
      // Seeding stands for data already in the portal: it fires no webhooks.
      const url = webhook.url;
      webhook.url = null;
      try {
        const offset = seed ?? store.records[object].size;
        const companies = [...store.records.companies.values()].filter((r) => !r.archived).map((r) => r.id);
        const contacts = [...store.records.contacts.values()].filter((r) => !r.archived).map((r) => r.id);
        const ids: string[] = [];
        seedProperties(object, count, offset).forEach((props, i) => {
          const result = store.create(object, props, { changeSource: 'IMPORT', sourceId: 'sandbox-seed' });
          if (!result.ok) return;
          const id = result.record.id;
          ids.push(id);
          const company = companies[(offset + i) % Math.max(1, companies.length)];
          const contact = contacts[(offset + i) % Math.max(1, contacts.length)];
          if (object !== 'companies' && company !== undefined) {
            const typeId = defaultTypeId(object, 'companies');
            if (typeId !== null) store.associate(object, id, 'companies', company, [{ category: 'HUBSPOT_DEFINED', typeId }], uiSource);
          }
          if (object === 'deals' && contact !== undefined) store.associate('deals', id, 'contacts', contact, [{ category: 'HUBSPOT_DEFINED', typeId: 3 }], uiSource);
        });
        return ids;
      } finally {
        webhook.url = url;
      }
    },
    reset() {
      store.reset();
      dispatcher.clear();
      // Reset also restores the default limits a test or demo may have changed through config.
      limits.tenSecondly.reset();
      limits.search.reset();
      limits.daily.reset();
      limits.tenSecondly.limit = DEFAULT_LIMITS.tenSecondly;
      limits.search.limit = DEFAULT_LIMITS.search;
      limits.daily.limit = DEFAULT_LIMITS.daily;
      webhook.eventId = 100;
      webhook.rejected = 0;
    },
    recordCounts() {
      const out: Record<string, number> = {};
      for (const object of OBJECT_NAMES) {
        let live = 0;
        for (const r of store.records[object].values()) if (!r.archived) live++;
        out[object] = live;
      }
      return out;
    },
    configure(config: SandboxConfig) {
      const parsed = configSchema.safeParse(config);
      if (!parsed.success) throw new CrmhubError('config', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), { code: 'SANDBOX_BAD_CONFIG' });
      const c = parsed.data;
      if (c.rateLimit?.tenSecondly !== undefined) limits.tenSecondly.limit = c.rateLimit.tenSecondly;
      if (c.rateLimit?.search !== undefined) limits.search.limit = c.rateLimit.search;
      if (c.rateLimit?.daily !== undefined) limits.daily.limit = c.rateLimit.daily;
      if (c.dailyQuota !== undefined) limits.daily.limit = c.dailyQuota;
      if (c.webhookUrl !== undefined) webhook.url = c.webhookUrl;
    },
    snapshot() {
      return store.snapshot();
    },
    restore(state) {
      store.restore(state as StoreSnapshot);
    },
    drainWebhooks(timeoutMs) {
      return dispatcher.drain(timeoutMs);
    },
    extraStats() {
      return {
        recordsWritten: { ...store.written },
        webhooks: { ...dispatcher.stats, rejected: webhook.rejected },
        limits: { tenSecondly: limits.tenSecondly.limit, search: limits.search.limit, daily: limits.daily.limit, dailyUsed: limits.daily.used },
      };
    },
    close() {
      dispatcher.close();
    },
  };
  server.use(behaviour);

  const baseUrl = await server.listen(options.port, options.host ?? '127.0.0.1');
  return {
    slug: 'hubspot',
    baseUrl,
    credentials: { baseUrl, accessToken, clientSecret },
    env: {
      HUBSPOT_BASE_URL: baseUrl,
      HUBSPOT_ACCESS_TOKEN: accessToken,
      HUBSPOT_CLIENT_SECRET: clientSecret,
      // Optional extras the connector reads: the token's app id and the sandbox's tier limits.
      HUBSPOT_APP_ID: String(appId),
      HUBSPOT_RATE_LIMIT_PER_10S: String(DEFAULT_LIMITS.tenSecondly),
      HUBSPOT_DAILY_LIMIT: String(DEFAULT_LIMITS.daily),
    },
    server,
    close: () => server.close(),
  };
}
