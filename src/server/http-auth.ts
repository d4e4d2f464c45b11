/**
 * Credentials on incoming requests: HTTP Basic (the event API's write key is the Basic user name,
 * as in Segment's HTTP API) and Bearer (admin token). Every check returns a reason a caller can act
 * on, never the credential itself.
 */
import { safeEqual, safeEqualAny } from './safe-equal.ts';

export interface BasicCredentials {
  user: string;
  password: string;
}

/** Parses `Authorization: Basic base64(user:password)`; null when absent or not Basic. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | null {
  if (header === undefined) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (match === null) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Parses `Authorization: Bearer TOKEN`; null when absent or not Bearer. */
export function parseBearer(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? null : (match[1] as string);
}

export type AuthCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks a write key: from HTTP Basic (user name; Segment's libraries send `writeKey:`), else from
 * a `writeKey` field in the body (Segment's HTTP API accepts that too).
 */
export function checkWriteKey(header: string | undefined, bodyWriteKey: unknown, writeKeys: readonly string[]): AuthCheck {
  if (writeKeys.length === 0) {
    return { ok: false, reason: 'the event API has no write keys configured (set CRMHUB_WRITE_KEYS)' };
  }
  const basic = parseBasicAuth(header);
  const given = basic?.user ?? (typeof bodyWriteKey === 'string' ? bodyWriteKey : null);
  if (given === null || given === '') {
    return {
      ok: false,
      reason: header !== undefined && basic === null
        ? 'the Authorization header must be HTTP Basic with the write key as user name'
        : 'missing write key: send HTTP Basic auth with the write key as user name',
    };
  }
  return safeEqualAny(given, writeKeys) ? { ok: true } : { ok: false, reason: 'unknown write key' };
}

/** Checks `Authorization: Bearer <admin token>`. */
export function checkAdminToken(header: string | undefined, adminToken: string | null): AuthCheck {
  if (adminToken === null) return { ok: false, reason: 'admin routes are disabled: CRMHUB_ADMIN_TOKEN is not set' };
  const token = parseBearer(header);
  if (token === null) return { ok: false, reason: 'missing admin token: send Authorization: Bearer <CRMHUB_ADMIN_TOKEN>' };
  return safeEqual(token, adminToken) ? { ok: true } : { ok: false, reason: 'invalid admin token' };
}
