/**
 * One content-type parser for every route, which keeps the exact bytes: `request.rawBody` is the
 * body as received (a `Buffer`) on every request that has one — webhook routes verify signatures
 * over these raw bytes (HubSpot v3, Pipedrive, Salesforce), never over re-serialised JSON.
 *
 * What `request.body` becomes, by `Content-Type`:
 * - `application/json`, `*\/*+json` → the parsed JSON (malformed → 400 `INVALID_JSON`);
 * - `application/x-www-form-urlencoded` → `Record<string, string>` (last value wins);
 * - `text/*`, `application/xml`, `application/soap+xml` → the body as a UTF-8 string;
 * - anything else → the `Buffer`.
 * Under `/v1/` (the event API) a body without a type or sent as `text/plain` is parsed as JSON, as
 * browsers' `sendBeacon` sends it that way.
 *
 * JSON keys named `__proto__` are dropped while parsing (prototype-poisoning guard).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CrmhubError } from '../connector-kit/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes exactly as received; set for every request that has a body. */
    rawBody?: Buffer;
  }
}

/** Error raised for a malformed body: the error handler maps it to 400. */
export function invalidBody(message: string, code = 'INVALID_JSON'): CrmhubError {
  return new CrmhubError('payload', message, { code });
}

/** Parses JSON text; `__proto__` keys are dropped. Throws a `payload` CrmhubError with the parser's reason. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw invalidBody('the body is empty; expected JSON');
  try {
    // The reviver costs time on every key, so it only runs when the text could poison a prototype.
    return text.includes('"__proto__"') ? JSON.parse(text, (key, value: unknown) => (key === '__proto__' ? undefined : value)) : JSON.parse(text);
  } catch (error) {
    throw invalidBody(`the body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function mediaType(request: FastifyRequest): string {
  const header = request.headers['content-type'];
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Replaces Fastify's parsers with the raw-body-keeping one described above. */
export function registerBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    try {
      done(null, parseByType(request, raw));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

function parseByType(request: FastifyRequest, raw: Buffer): unknown {
  const type = mediaType(request);
  const eventApi = request.url.startsWith('/v1/');
  if (type === 'application/json' || type.endsWith('+json') || (eventApi && (type === '' || type === 'text/plain'))) {
    return parseJsonBody(raw.toString('utf8'));
  }
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  if (type.startsWith('text/') || type === 'application/xml' || type === 'application/soap+xml') {
    return raw.toString('utf8');
  }
  return raw;
}
