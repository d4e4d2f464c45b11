/**
 * Starts the Salesforce sandbox: a local server that jsforce 3.10.16 drives unchanged (REST,
 * OAuth, Bulk API 2.0), with the control API of design.md §6 plus `POST /_sandbox/convert-lead`.
 * Credentials are fixed, well-known values: the sandbox only listens on loopback.
 */
/* eslint-disable @typescript-eslint/require-await -- Fastify handlers are async on purpose: return values are sent and throws become rejections for the error handler. */
import { z } from 'zod';
import type { RunningSandbox, SandboxStartOptions } from '../../../src/connector-kit/connector-module.ts';
import { createSandboxServer } from '../../../src/connector-kit/sandbox/sandbox-server.ts';
import { idSuffix } from './ids.ts';
import { registerBulk2Routes } from './bulk2-routes.ts';
import { installHttp } from './http.ts';
import { registerOAuthRoutes } from './oauth-routes.ts';
import { SfRequestError } from './org.ts';
import { registerRestRoutes } from './rest-routes.ts';
import { SalesforceSandbox } from './salesforce-sandbox.ts';

export { SalesforceSandbox } from './salesforce-sandbox.ts';
export { isOutboundAck, OUTBOUND_NS } from './notifier.ts';

const ORG_15 = '00D5g00000CrmHb';
const USER_15 = '0055g00000CrmHb';
const REP_15 = '0055g00000RepUs';

/** The sandbox's fixed identity and secrets. */
export const SALESFORCE_SANDBOX_DEFAULTS = {
  orgId: ORG_15 + idSuffix(ORG_15),
  userId: USER_15 + idSuffix(USER_15),
  repUserId: REP_15 + idSuffix(REP_15),
  clientId: '3MVG9crmhubSandboxClientId',
  clientSecret: 'crmhub-sandbox-client-secret',
  accessToken: `${ORG_15}!AQ0AQcrmhub.sandbox.static.token`,
  refreshToken: '5Aep861crmhub.sandbox.refresh.token',
  webhookToken: 'crmhub-sandbox-webhook-token',
  apiVersion: '62.0',
} as const;

const convertLeadBody = z.object({ id: z.string().min(15) });

/** Extra start options for tests: shorter webhook retry delays. */
export interface SalesforceSandboxExtraOptions {
  retryDelayMs?: (attempt: number) => number;
}

export async function startSalesforceSandbox(options: SandboxStartOptions, extra: SalesforceSandboxExtraOptions = {}): Promise<RunningSandbox> {
  const d = SALESFORCE_SANDBOX_DEFAULTS;
  const server = createSandboxServer({
    name: 'salesforce',
    ...(options.stateFile ? { stateFile: options.stateFile } : {}),
    faultBody: [{ message: 'Server temporarily unavailable. Please try again later.', errorCode: 'SERVER_UNAVAILABLE' }],
  });
  const webhookUrl = options.webhookTarget ? `${options.webhookTarget.replace(/\/$/, '')}/webhooks/salesforce?token=${encodeURIComponent(d.webhookToken)}` : null;
  const sb = new SalesforceSandbox({
    orgId: d.orgId,
    userId: d.userId,
    repUserId: d.repUserId,
    clientId: d.clientId,
    clientSecret: d.clientSecret,
    staticAccessToken: d.accessToken,
    refreshToken: d.refreshToken,
    apiVersion: d.apiVersion,
    counters: server.counters,
    webhookUrl,
    ...(extra.retryDelayMs ? { retryDelayMs: extra.retryDelayMs } : {}),
  });
  server.use(sb);
  installHttp(server.app, sb);
  registerOAuthRoutes(server.app, sb);
  registerRestRoutes(server.app, sb);
  registerBulk2Routes(server.app, sb);

  server.app.post('/_sandbox/convert-lead', async (request, reply) => {
    const parsed = convertLeadBody.safeParse(request.body);
    if (!parsed.success) return reply.code(400).send({ error: 'invalid control request', issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    try {
      return { ok: true, ...sb.convertLead(parsed.data.id) };
    } catch (error) {
      if (error instanceof SfRequestError) return reply.code(error.status).send({ error: error.message, errorCode: error.errorCode });
      throw error;
    }
  });

  server.app.get('/_sandbox/deliveries', async () => ({ stats: sb.notifier.stats(), log: sb.notifier.log }));

  const baseUrl = await server.listen(options.port, options.host ?? '127.0.0.1');
  sb.baseUrl = baseUrl;
  return {
    slug: 'salesforce',
    baseUrl,
    credentials: {
      instanceUrl: baseUrl,
      loginUrl: baseUrl,
      accessToken: d.accessToken,
      clientId: d.clientId,
      clientSecret: d.clientSecret,
      orgId: d.orgId,
      refreshToken: d.refreshToken,
      // Not in design.md's shape, but the hub needs it to accept the sandbox's Outbound Messages.
      webhookToken: d.webhookToken,
    },
    env: {
      SALESFORCE_INSTANCE_URL: baseUrl,
      SALESFORCE_ACCESS_TOKEN: d.accessToken,
      SALESFORCE_CLIENT_ID: d.clientId,
      SALESFORCE_CLIENT_SECRET: d.clientSecret,
      SALESFORCE_LOGIN_URL: baseUrl,
      SALESFORCE_API_VERSION: d.apiVersion,
      SALESFORCE_ORG_ID: d.orgId,
      SALESFORCE_WEBHOOK_TOKEN: d.webhookToken,
    },
    server,
    close: () => server.close(),
  };
}
