/**
 * The one place that maps Pipedrive's answers into crmhub's error taxonomy (design.md §7).
 * Bodies: v2 `{success:false, error, error_info, data:null, additional_data:null}`, v1
 * `{success:false, error, errorCode, error_info}` (crm-reference §3.6). Limits: 429 for the
 * 2-second burst and for an exhausted daily token budget; clients that keep hammering get a 403
 * Cloudflare HTML page (crm-reference §3.5, third-party report).
 */
import { z } from 'zod';
import { CrmhubError, type ErrorContext } from '../../src/connector-kit/errors.ts';

const errorBodySchema = z
  .object({
    success: z.literal(false).optional(),
    error: z.string().optional(),
    error_info: z.string().nullable().optional(),
    errorCode: z.number().optional(),
  })
  .passthrough();

/** What the transport saw of a failed answer. */
export interface PipedriveFailure {
  status: number;
  /** Raw body text (may be JSON or an HTML page). */
  body: string;
  /** Lower-cased response headers. */
  headers: Record<string, string>;
}

/** ms until the next UTC midnight, when Pipedrive's daily token budget resets (server midnight). */
export function msUntilUtcMidnight(now: number): number {
  const day = 86_400_000;
  return day - (now % day);
}

function headerNumber(headers: Record<string, string>, name: string): number | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

/** How long to wait after a 429: until the daily reset when the budget is spent, else the window's reset. */
export function retryAfterMs(headers: Record<string, string>, now: number): number {
  const daily = headerNumber(headers, 'x-daily-ratelimit-token-remaining');
  if (daily !== undefined && daily <= 0) return msUntilUtcMidnight(now);
  const retryAfter = headerNumber(headers, 'retry-after');
  if (retryAfter !== undefined) return Math.max(1000, retryAfter * 1000);
  const reset = headerNumber(headers, 'x-ratelimit-reset');
  // x-ratelimit-reset is seconds left in the 2-second window (Pipedrive "Rate limiting" doc).
  return Math.max(250, (reset ?? 2) * 1000);
}

function describe(failure: PipedriveFailure): { message: string; json: boolean } {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(failure.body));
    if (parsed.success) {
      const { error, error_info: info } = parsed.data;
      return { message: [error, info].filter((s): s is string => typeof s === 'string' && s.length > 0).join(' — ') || `HTTP ${failure.status}`, json: true };
    }
  } catch {
    // not JSON (a Cloudflare or proxy page)
  }
  return { message: `HTTP ${failure.status}`, json: false };
}

/** Classifies one failed Pipedrive answer. */
export function classifyPipedriveFailure(failure: PipedriveFailure, context: ErrorContext = {}, now = Date.now()): CrmhubError {
  const { status } = failure;
  const { message, json } = describe(failure);
  const ctx: ErrorContext = { connector: 'pipedrive', ...context, status };
  const text = `Pipedrive: ${message}`;
  if (status === 429) {
    const daily = headerNumber(failure.headers, 'x-daily-ratelimit-token-remaining');
    const code = daily !== undefined && daily <= 0 ? 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED' : 'PIPEDRIVE_RATE_LIMITED';
    return new CrmhubError('rate_limited', text, { code, context: ctx, retryAfterMs: retryAfterMs(failure.headers, now) });
  }
  if (status === 401) return new CrmhubError('auth', text, { code: 'PIPEDRIVE_UNAUTHORIZED', context: ctx });
  if (status === 403) {
    // An HTML 403 is Cloudflare blocking a client that ignored 429s: back off, do not re-auth.
    if (!json) return new CrmhubError('rate_limited', 'Pipedrive: blocked after too many requests (403 page)', { code: 'PIPEDRIVE_BLOCKED', context: ctx, retryAfterMs: 60_000 });
    return new CrmhubError('config', text, { code: 'PIPEDRIVE_FORBIDDEN', context: ctx });
  }
  if (status === 402) return new CrmhubError('config', text, { code: 'PIPEDRIVE_PAYMENT_REQUIRED', context: ctx });
  if (status === 400 && /unknown custom field/i.test(message)) {
    return new CrmhubError('config', text, { code: 'PIPEDRIVE_UNKNOWN_CUSTOM_FIELD', context: ctx });
  }
  if (status === 404) return new CrmhubError('payload', text, { code: 'PIPEDRIVE_NOT_FOUND', context: ctx });
  if (status === 410) return new CrmhubError('config', text, { code: 'PIPEDRIVE_ENDPOINT_GONE', context: ctx });
  if (status === 405 || status === 501) return new CrmhubError('config', text, { code: 'PIPEDRIVE_UNSUPPORTED', context: ctx });
  if (status === 408) return new CrmhubError('transient', text, { code: 'PIPEDRIVE_TIMEOUT', context: ctx, retryAfterMs: 1000 });
  if (status >= 500) return new CrmhubError('transient', text, { code: 'PIPEDRIVE_SERVER_ERROR', context: ctx, retryAfterMs: 1000 });
  if (status >= 400) return new CrmhubError('payload', text, { code: status === 400 ? 'PIPEDRIVE_VALIDATION_ERROR' : `PIPEDRIVE_HTTP_${status}`, context: ctx });
  return new CrmhubError('internal', `Pipedrive: unexpected status ${status}`, { code: 'PIPEDRIVE_UNEXPECTED_STATUS', context: ctx });
}

/** Network failures (reset, refused, timeout) are transient. */
export function classifyNetworkError(error: unknown, context: ErrorContext = {}): CrmhubError {
  const name = error instanceof Error ? error.name : '';
  const timeout = name === 'TimeoutError' || name === 'AbortError';
  return new CrmhubError('transient', timeout ? 'Pipedrive: request timed out' : 'Pipedrive: network error', {
    code: timeout ? 'PIPEDRIVE_TIMEOUT' : 'PIPEDRIVE_NETWORK',
    cause: error,
    context: { connector: 'pipedrive', ...context },
    retryAfterMs: 1000,
  });
}

/** A response body that is not what Pipedrive documents (a bug or an API change): fail loudly. */
export function unexpectedBody(what: string, issues: string, context: ErrorContext = {}): CrmhubError {
  return new CrmhubError('internal', `Pipedrive: unexpected ${what} body: ${issues}`, { code: 'PIPEDRIVE_UNEXPECTED_BODY', context: { connector: 'pipedrive', ...context } });
}
