/**
 * The error body every crmhub route answers with, and the mapping from anything thrown to an HTTP
 * status. Malformed input never becomes a 5xx: JSON syntax errors, oversized bodies, unsupported
 * media types, schema (zod) errors and CrmhubErrors of kind `payload`/`config` are all 4xx with a
 * reason. Only real faults (kind `internal`, unknown throws) answer 500, and their text is not
 * shown to the caller (it may hold internals); it goes to the log, scrubbed of secrets.
 */
import type { FastifyError } from 'fastify';
import { ZodError } from 'zod';
import { isCrmhubError } from '../connector-kit/errors.ts';

/** `{"success": false, "code", "reason", …details}`: `success` keeps Segment clients' shape. */
export interface ErrorBody {
  success: false;
  code: string;
  reason: string;
  [detail: string]: unknown;
}

export function errorBody(code: string, reason: string, details: Record<string, unknown> = {}): ErrorBody {
  return { success: false, code, reason, ...details };
}

/** Maps a thrown value to a status and body. */
export function toErrorReply(error: unknown): { status: number; body: ErrorBody; fault: boolean } {
  if (error instanceof ZodError) {
    const issues = error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    const first = issues[0];
    return { status: 400, body: errorBody('INVALID_REQUEST', first === undefined ? 'invalid request' : `${first.path || 'body'}: ${first.message}`, { issues }), fault: false };
  }
  if (isCrmhubError(error)) {
    // `context.status` is an upstream (CRM) status, not ours: the kind alone decides.
    const status = statusOfKind(error.kind);
    return { status, body: errorBody(error.code, status >= 500 ? 'internal error' : error.message), fault: status >= 500 };
  }
  const fe = error as Partial<FastifyError> | null;
  const code = typeof fe?.code === 'string' ? fe.code : undefined;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, body: errorBody('PAYLOAD_TOO_LARGE', 'the body is larger than this route accepts (32 KB per event, 500 KB per batch on /v1)'), fault: false };
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, body: errorBody('UNSUPPORTED_MEDIA_TYPE', 'unsupported Content-Type'), fault: false };
  }
  if (fe?.validation !== undefined) {
    return { status: 400, body: errorBody('INVALID_REQUEST', fe.message ?? 'invalid request'), fault: false };
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, body: errorBody(code ?? 'BAD_REQUEST', fe?.message ?? 'bad request'), fault: false };
  }
  return { status: 500, body: errorBody('INTERNAL', 'internal error'), fault: true };
}

function statusOfKind(kind: string): number {
  switch (kind) {
    case 'payload':
    case 'config':
      return 400;
    case 'auth':
      return 401;
    case 'conflict':
      return 409;
    case 'rate_limited':
      return 429;
    case 'transient':
      return 503;
    default:
      return 500;
  }
}
