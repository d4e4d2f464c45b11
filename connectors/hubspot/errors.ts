/**
 * The one place that maps HubSpot's failures into crmhub's error taxonomy (design.md §7):
 * `ApiException`s of `@hubspot/api-client` (HTTP status + HubSpot's error body `{status, message,
 * correlationId, category, policyName, …}`), per-input `StandardError`s of 207 batch answers, and
 * network failures. Rules (reference README §1.6–1.7):
 * 401 → auth; 403 (MISSING_SCOPES and others) → config; 429 TEN_SECONDLY_ROLLING / search
 * "secondly" → rate_limited for the window; 429 DAILY → rate_limited until the next midnight;
 * 400 VALIDATION_ERROR and other 4xx about one record → payload; 404 → payload (not found);
 * 409 CONFLICT → payload (duplicate unique value); 5xx, timeouts, resets → transient.
 */
import { z } from 'zod';
import { CrmhubError, type ErrorContext } from '../../src/connector-kit/errors.ts';

/** HubSpot's error body (spec `components.schemas.Error`, plus the 429 fields). */
export const hubspotErrorBodySchema = z
  .object({
    status: z.string().optional(),
    message: z.string().optional(),
    correlationId: z.string().optional(),
    category: z.string().optional(),
    subCategory: z.unknown().optional(),
    policyName: z.string().optional(),
    errorType: z.string().optional(),
    context: z.record(z.string(), z.array(z.string())).optional(),
    errors: z.array(z.object({ message: z.string().optional(), code: z.string().optional(), context: z.record(z.string(), z.array(z.string())).optional() }).loose()).optional(),
  })
  .loose();
export type HubSpotErrorBody = z.infer<typeof hubspotErrorBodySchema>;

/** The parts of an `ApiException` we read (the SDK class is per API module; match by shape). */
const apiExceptionSchema = z.object({
  code: z.number().int(),
  body: z.unknown(),
  headers: z.record(z.string(), z.unknown()).optional(),
});

/** Network-level failure codes worth a retry (node-fetch `FetchError.code`, undici causes). */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED']);

/** HubSpot's search limit message (the SDK's retry logic matches this exact text). */
export const SEARCH_SECONDLY_MESSAGE = 'You have reached your secondly limit.';

function parseBody(body: unknown): HubSpotErrorBody {
  const raw = typeof body === 'string' ? safeJson(body) : body;
  const parsed = hubspotErrorBodySchema.safeParse(raw);
  return parsed.success ? parsed.data : { message: typeof body === 'string' ? body.slice(0, 500) : undefined };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function header(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const v = headers[name] ?? headers[name.toLowerCase()];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** ms until the next UTC midnight. HubSpot resets at midnight in the portal's time zone, which the API does not tell; UTC is the cautious default. */
export function msUntilMidnight(now: number, utcOffsetMinutes = 0): number {
  const local = now + utcOffsetMinutes * 60_000;
  const next = Math.floor(local / 86_400_000 + 1) * 86_400_000;
  return next - local;
}

/** Wait for a ten-secondly 429: `Retry-After` when present, else the interval header, else 10 s. */
function tenSecondlyWait(headers: Record<string, unknown> | undefined): number {
  const retryAfter = Number(header(headers, 'retry-after'));
  if (Number.isFinite(retryAfter) && retryAfter > 0) return retryAfter * 1000;
  const interval = Number(header(headers, 'x-hubspot-ratelimit-interval-milliseconds'));
  return Number.isFinite(interval) && interval > 0 ? interval : 10_000;
}

function describe(body: HubSpotErrorBody, status: number): string {
  const base = body.message ?? `HubSpot answered HTTP ${status}`;
  return body.correlationId ? `${base} (correlationId ${body.correlationId})` : base;
}

/** Property names named by a validation error, when HubSpot says (context or nested errors). */
function propertyNames(body: HubSpotErrorBody): string | undefined {
  const names = new Set<string>(body.context?.propertyName ?? []);
  for (const e of body.errors ?? []) for (const n of e.context?.propertyName ?? []) names.add(n);
  return names.size > 0 ? [...names].join(',') : undefined;
}

/**
 * Classifies an HTTP answer. `now` feeds the DAILY reset computation.
 */
export function classifyHubSpotResponse(status: number, rawBody: unknown, headers: Record<string, unknown> | undefined, context: ErrorContext = {}, now = Date.now()): CrmhubError {
  const body = parseBody(rawBody);
  const ctx: ErrorContext = { connector: 'hubspot', status, ...context };
  const message = describe(body, status);
  const category = body.category ?? '';
  if (status === 401) return new CrmhubError('auth', message, { code: 'HUBSPOT_INVALID_AUTHENTICATION', context: ctx, cause: body });
  if (status === 403) {
    const code = category === 'MISSING_SCOPES' || /scope/i.test(body.message ?? '') ? 'HUBSPOT_MISSING_SCOPES' : 'HUBSPOT_FORBIDDEN';
    return new CrmhubError('config', message, { code, context: ctx, cause: body });
  }
  if (status === 429) {
    if (body.policyName === 'DAILY') {
      return new CrmhubError('rate_limited', message, { code: 'HUBSPOT_DAILY_LIMIT', context: ctx, retryAfterMs: msUntilMidnight(now), cause: body });
    }
    if (body.message === SEARCH_SECONDLY_MESSAGE) {
      return new CrmhubError('rate_limited', message, { code: 'HUBSPOT_SEARCH_SECONDLY_LIMIT', context: ctx, retryAfterMs: 1_000, cause: body });
    }
    return new CrmhubError('rate_limited', message, { code: 'HUBSPOT_TEN_SECONDLY_LIMIT', context: ctx, retryAfterMs: tenSecondlyWait(headers), cause: body });
  }
  if (status === 404) return new CrmhubError('payload', message, { code: 'HUBSPOT_OBJECT_NOT_FOUND', context: ctx, cause: body });
  if (status === 409) return new CrmhubError('payload', message, { code: 'HUBSPOT_CONFLICT', context: ctx, cause: body });
  if (status === 408 || status === 423 || status >= 500) {
    return new CrmhubError('transient', message, { code: `HUBSPOT_HTTP_${status}`, context: ctx, cause: body });
  }
  if (status === 400 || status === 422) {
    const field = propertyNames(body);
    return new CrmhubError('payload', message, {
      code: category ? `HUBSPOT_${category}` : 'HUBSPOT_BAD_REQUEST',
      context: field ? { ...ctx, field } : ctx,
      cause: body,
    });
  }
  // 405, 415 and other 4xx mean we built a request HubSpot does not take: a bug on our side.
  return new CrmhubError('internal', message, { code: `HUBSPOT_HTTP_${status}`, context: ctx, cause: body });
}

/** Maps anything an SDK call threw (ApiException, FetchError, abort) into the taxonomy. */
export function toHubSpotError(error: unknown, context: ErrorContext = {}, now = Date.now()): CrmhubError {
  if (error instanceof CrmhubError) return error;
  const api = apiExceptionSchema.safeParse(error);
  if (api.success && api.data.code >= 100) return classifyHubSpotResponse(api.data.code, api.data.body, api.data.headers, context, now);
  const e = error as { name?: unknown; code?: unknown; type?: unknown; errno?: unknown; cause?: { code?: unknown } } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  const name = typeof e?.name === 'string' ? e.name : '';
  if ((code && NETWORK_CODES.has(code)) || name === 'FetchError' || name === 'AbortError' || name === 'TimeoutError' || e?.type === 'system' || e?.type === 'request-timeout') {
    return new CrmhubError('transient', `HubSpot request failed: ${error instanceof Error ? error.message : String(error)}`, {
      code: code ? `HUBSPOT_NETWORK_${code}` : 'HUBSPOT_NETWORK',
      context: { connector: 'hubspot', ...context },
      cause: error,
    });
  }
  return new CrmhubError('internal', error instanceof Error ? error.message : String(error), { code: 'HUBSPOT_INTERNAL', context: { connector: 'hubspot', ...context }, cause: error });
}

/** A 207 `StandardError` for one input, classified by its category. */
export function classifyBatchError(error: HubSpotErrorBody, context: ErrorContext = {}): CrmhubError {
  const category = error.category ?? '';
  const status = category === 'OBJECT_NOT_FOUND' ? 404 : category === 'CONFLICT' ? 409 : category === 'RATE_LIMITS' ? 429 : 400;
  return classifyHubSpotResponse(status, error, undefined, context);
}
