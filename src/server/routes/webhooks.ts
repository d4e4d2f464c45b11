/**
 * `POST /webhooks/:slug` (design.md §6): hands the raw request to the connector (it verifies the
 * signature / Basic auth / org token over the exact bytes and parses the changes), dedupes each
 * change by delivery id, and answers at once — 200 `{}` or the connector's own reply (Salesforce's
 * SOAP Ack). The changes are processed after the reply (thin payloads are read by id).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { WebhookRequest } from '../../connector-kit/connector.ts';
import { errorBody } from '../error-reply.ts';

/** What the route needs of the sync engine (`SyncEngine.receiveWebhook`). */
export interface WebhookReceiver {
  receiveWebhook(slug: string, request: WebhookRequest): Promise<{ status: number; contentType: string; body: string }>;
  /** Configured connector slugs. */
  has(slug: string): boolean;
}

export interface WebhookRoutesOptions {
  /**
   * Public base URL the CRMs call (e.g. `https://hub.example.com`); signatures such as HubSpot v3
   * cover the full URL, which behind a proxy differs from what the socket sees. Default: the
   * request's own protocol and Host header.
   */
  publicBaseUrl?: string;
  now?: () => number;
}

const params = z.object({ slug: z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'unknown connector') });

export function webhookRoutes(receiver: WebhookReceiver, options: WebhookRoutesOptions = {}): FastifyPluginAsync {
  return (app) => {
    app.post('/webhooks/:slug', async (request, reply) => {
      const { slug } = params.parse(request.params);
      if (!receiver.has(slug)) return reply.code(404).send(errorBody('CONNECTOR_NOT_CONFIGURED', `connector ${slug} is not configured`));
      const base = options.publicBaseUrl?.replace(/\/$/, '') ?? `${request.protocol}://${request.headers.host ?? '127.0.0.1'}`;
      const result = await receiver.receiveWebhook(slug, {
        method: request.method,
        url: `${base}${request.url}`,
        headers: request.headers,
        rawBody: request.rawBody ?? Buffer.alloc(0),
        now: (options.now ?? Date.now)(),
      });
      return reply.code(result.status).header('content-type', result.contentType).send(result.body);
    });
    return Promise.resolve();
  };
}
