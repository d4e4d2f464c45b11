/** Assertions shared by the reliability suites: what a well-behaved rejection looks like. */
import { createHmac } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/** Host header used for every injected request; HubSpot v3 signatures cover `http://<host><path>`. */
export const HOST = 'hub.reliability.test';

export interface Verdict {
  ok: boolean;
  why: string;
}

/**
 * Never a 5xx; every 4xx carries a reason: a JSON body with a non-empty `reason` string, or (SOAP
 * endpoints) a non-empty body.
 */
export function judge(res: LightMyRequestResponse): Verdict {
  if (res.statusCode >= 500) return { ok: false, why: `${res.statusCode} ${res.body.slice(0, 300)}` };
  if (res.statusCode < 400) return { ok: true, why: '' };
  const type = String(res.headers['content-type'] ?? '');
  if (type.includes('json')) {
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      return { ok: false, why: `${res.statusCode} with unparsable JSON ${res.body.slice(0, 200)}` };
    }
    const reason = typeof body === 'object' && body !== null ? (body as { reason?: unknown }).reason : undefined;
    if (typeof reason !== 'string' || reason.trim() === '') return { ok: false, why: `${res.statusCode} without a reason: ${res.body.slice(0, 200)}` };
    return { ok: true, why: '' };
  }
  return res.body.trim() === '' ? { ok: false, why: `${res.statusCode} with an empty body` } : { ok: true, why: '' };
}

/** X-HubSpot-Signature-v3 headers for a POST to `path` on {@link HOST}. */
export function hubspotHeaders(secret: string, path: string, body: Buffer, timestampMs: number): Record<string, string> {
  const signature = createHmac('sha256', secret)
    .update(Buffer.from(`POST${`http://${HOST}${path}`}`, 'utf8'))
    .update(body)
    .update(Buffer.from(String(timestampMs), 'utf8'))
    .digest('base64');
  return { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': String(timestampMs) };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The app still answers its health check. */
export async function healthy(app: FastifyInstance): Promise<boolean> {
  const res = await app.inject({ method: 'GET', url: '/healthz', headers: { host: HOST } });
  return res.statusCode === 200;
}
