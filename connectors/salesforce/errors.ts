/**
 * The one place that maps Salesforce's error codes and HTTP statuses into the closed taxonomy of
 * design.md §7. Sources: REST API "Status Codes and Error Responses" (errorcodes.htm) and the
 * sObject Collections / Bulk API 2.0 result formats (crm-reference README §2.4, §2.5, §2.7).
 */
import { CrmhubError, type ErrorContext, type ErrorKind } from '../../src/connector-kit/errors.ts';

/** How long to pause when Salesforce says the daily allocation is spent and gives no reset time. */
export const DEFAULT_QUOTA_PAUSE_MS = 15 * 60_000;

/**
 * `REQUEST_LIMIT_EXCEEDED` also reports too many concurrent long-running requests ("ConcurrentRequests
 * … Limit exceeded"); those clear within seconds, so the pause is short.
 */
export const CONCURRENT_LIMIT_PAUSE_MS = 10_000;

/** Whole-request error codes → kind. Anything not listed falls back on the HTTP status. */
const REQUEST_CODES: Record<string, ErrorKind> = {
  INVALID_SESSION_ID: 'auth',
  INVALID_AUTH_HEADER: 'auth',
  invalid_grant: 'auth',
  invalid_client: 'auth',
  invalid_client_id: 'auth',
  unauthorized_client: 'auth',
  API_DISABLED_FOR_ORG: 'config',
  API_CURRENTLY_DISABLED: 'config',
  INSUFFICIENT_ACCESS: 'config',
  INSUFFICIENT_ACCESS_OR_READONLY: 'config',
  INVALID_FIELD: 'config',
  INVALID_TYPE: 'config',
  NOT_FOUND: 'config',
  MALFORMED_QUERY: 'config',
  INVALID_QUERY_FILTER_OPERATOR: 'config',
  INVALID_FIELD_FOR_INSERT_UPDATE: 'config',
  INVALID_OPERATION: 'config',
  FUNCTIONALITY_NOT_ENABLED: 'config',
  REQUEST_LIMIT_EXCEEDED: 'rate_limited',
  TXN_SECURITY_METERING_ERROR: 'rate_limited',
  SERVER_UNAVAILABLE: 'transient',
  UNKNOWN_EXCEPTION: 'transient',
  REQUEST_RUNNING_TOO_LONG: 'transient',
  QUERY_TIMEOUT: 'transient',
  UNABLE_TO_LOCK_ROW: 'transient',
  INVALID_QUERY_LOCATOR: 'transient',
  MULTIPLE_CHOICES: 'conflict',
};

/**
 * Per-record codes (collections `statusCode`, Bulk `sf__Error` prefix). Records failing with one of
 * these dead-letter alone; the rest of the batch goes on (design.md §4).
 */
const RECORD_CODES: Record<string, ErrorKind> = {
  UNABLE_TO_LOCK_ROW: 'transient',
  ALL_OR_NONE_OPERATION_ROLLED_BACK: 'transient',
  REQUEST_LIMIT_EXCEEDED: 'rate_limited',
  SERVER_UNAVAILABLE: 'transient',
  UNKNOWN_EXCEPTION: 'transient',
  DUPLICATE_EXTERNAL_ID: 'conflict',
  INVALID_SESSION_ID: 'auth',
  INVALID_FIELD: 'config',
  INVALID_FIELD_FOR_INSERT_UPDATE: 'config',
  INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY: 'payload',
};

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function statusKind(status: number): ErrorKind {
  if (status === 401) return 'auth';
  if (status === 429 || status === 420) return 'rate_limited';
  if (status >= 500) return 'transient';
  if (status === 403 || status === 404 || status === 400) return 'config';
  if (status === 300 || status === 409 || status === 412) return 'conflict';
  return 'internal';
}

/** Reads `{errorCode|name, message, code, data}` off whatever jsforce (or node-fetch) threw. */
function describeThrown(value: unknown): { code: string | undefined; message: string; netCode: string | undefined } {
  if (typeof value !== 'object' || value === null) return { code: undefined, message: String(value), netCode: undefined };
  const v = value as { errorCode?: unknown; name?: unknown; message?: unknown; code?: unknown; type?: unknown };
  const errorCode = typeof v.errorCode === 'string' ? v.errorCode : undefined;
  const name = typeof v.name === 'string' && v.name !== 'Error' ? v.name : undefined;
  const netCode = typeof v.code === 'string' ? v.code : undefined;
  return {
    code: errorCode ?? name,
    message: typeof v.message === 'string' ? v.message : 'unknown error',
    netCode,
  };
}

/**
 * Classifies an error thrown by a whole request (jsforce `HttpApiError`, an OAuth error, a network
 * failure). jsforce drops the HTTP status but keeps Salesforce's `errorCode`, or `ERROR_HTTP_<n>`
 * when the body had none (jsforce lib/http-api.js `getError`).
 */
export function classifyRequestError(value: unknown, context: ErrorContext = {}, status?: number): CrmhubError {
  if (value instanceof CrmhubError) return value;
  const { code, message, netCode } = describeThrown(value);
  const ctx: ErrorContext = { connector: 'salesforce', ...context, ...(status === undefined ? {} : { status }) };
  if (netCode !== undefined && NETWORK_CODES.has(netCode)) {
    return new CrmhubError('transient', `network error talking to Salesforce: ${netCode}`, { code: netCode, cause: value, context: ctx });
  }
  if (code === 'FetchError' || code === 'AbortError' || code === 'TimeoutError') {
    return new CrmhubError('transient', `request to Salesforce failed: ${message}`, { code, cause: value, context: ctx });
  }
  if (code === 'MULTIPLE_API_ERRORS') {
    const first = firstErrorCode(value);
    if (first !== undefined) return classifyRequestError({ errorCode: first, message }, context, status);
  }
  // jsforce's session refresh failure ("Unable to refresh session due to: …").
  if (message.startsWith('Unable to refresh session')) {
    return new CrmhubError('auth', message, { code: 'SESSION_REFRESH_FAILED', cause: value, context: ctx });
  }
  const httpMatch = code === undefined ? null : /^ERROR_HTTP_(\d{3})$/.exec(code);
  const httpStatus = httpMatch?.[1] === undefined ? status : Number(httpMatch[1]);
  const known = code === undefined ? undefined : REQUEST_CODES[code];
  const kind = known ?? (httpStatus === undefined ? 'transient' : statusKind(httpStatus));
  const finalCode = code ?? (httpStatus === undefined ? 'SALESFORCE_ERROR' : `ERROR_HTTP_${httpStatus}`);
  return new CrmhubError(kind, `Salesforce: ${message}`, {
    code: finalCode,
    cause: value,
    context: httpStatus === undefined ? ctx : { ...ctx, status: httpStatus },
    ...(kind === 'rate_limited' ? { retryAfterMs: /concurrent/i.test(message) ? CONCURRENT_LIMIT_PAUSE_MS : DEFAULT_QUOTA_PAUSE_MS } : {}),
  });
}

function firstErrorCode(value: unknown): string | undefined {
  const data = (value as { data?: unknown }).data;
  if (!Array.isArray(data)) return undefined;
  const first: unknown = data[0];
  if (typeof first === 'object' && first !== null && typeof (first as { errorCode?: unknown }).errorCode === 'string') {
    return (first as { errorCode: string }).errorCode;
  }
  return undefined;
}

/** One error of a collections result (`statusCode`, not `errorCode` — README §2.4). */
export interface RecordErrorDetail {
  statusCode: string;
  message: string;
  fields?: string[] | undefined;
}

/**
 * Classifies a per-record failure (collections result or Bulk `sf__Error`). Unknown codes are
 * `payload`: the CRM refused this record's data (validation rule, duplicate rule, bad email,
 * too-long string, required field missing, bad picklist value, …).
 */
export function classifyRecordError(errors: RecordErrorDetail[], context: ErrorContext = {}): CrmhubError {
  const first = errors[0] ?? { statusCode: 'UNKNOWN_RECORD_ERROR', message: 'record rejected without a reason' };
  const kind = RECORD_CODES[first.statusCode] ?? 'payload';
  const field = first.fields?.[0];
  const message = errors.map((e) => `${e.statusCode}: ${e.message}`).join('; ');
  return new CrmhubError(kind, `Salesforce rejected the record: ${message}`, {
    code: first.statusCode,
    context: { connector: 'salesforce', ...context, ...(field === undefined ? {} : { field }) },
    ...(kind === 'rate_limited' ? { retryAfterMs: DEFAULT_QUOTA_PAUSE_MS } : {}),
  });
}

/**
 * Parses a Bulk API 2.0 `sf__Error` cell: `CODE:message:Field1,Field2 --` (fields optional).
 */
export function parseBulkError(cell: string): RecordErrorDetail {
  const trimmed = cell.replace(/\s*--\s*$/, '');
  const at = trimmed.indexOf(':');
  if (at <= 0) return { statusCode: 'UNKNOWN_RECORD_ERROR', message: trimmed };
  const statusCode = trimmed.slice(0, at);
  const rest = trimmed.slice(at + 1);
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > 0) {
    const tail = rest.slice(lastColon + 1).trim();
    if (/^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$/.test(tail)) {
      return { statusCode, message: rest.slice(0, lastColon), fields: tail.split(',') };
    }
  }
  return { statusCode, message: rest };
}

/** The daily allocation would dip into the reserve kept for the org's other integrations. */
export function quotaReserveError(used: number, limit: number, reserve: number, context: ErrorContext = {}): CrmhubError {
  return new CrmhubError(
    'rate_limited',
    `Salesforce daily API allocation nearly spent (${used}/${limit}; ${reserve} calls are kept for other integrations)`,
    { code: 'QUOTA_RESERVE_REACHED', context: { connector: 'salesforce', ...context }, retryAfterMs: DEFAULT_QUOTA_PAUSE_MS },
  );
}
