/** errors.ts: every Pipedrive status and body lands in the right kind of the taxonomy. */
import { describe, expect, it } from 'vitest';
import { classifyNetworkError, classifyPipedriveFailure, msUntilUtcMidnight, retryAfterMs } from '../../../connectors/pipedrive/errors.ts';

const v2 = (error: string) => JSON.stringify({ success: false, error, error_info: 'Please check developers.pipedrive.com', data: null, additional_data: null });
const v1 = (error: string, code: number) => JSON.stringify({ success: false, error, errorCode: code });

describe('classifyPipedriveFailure', () => {
  it.each([
    [400, v2('Validation failed: name'), {}, 'payload', 'PIPEDRIVE_VALIDATION_ERROR'],
    [400, v2("Validation failed: Unknown custom field key 'abc'"), {}, 'config', 'PIPEDRIVE_UNKNOWN_CUSTOM_FIELD'],
    [401, v1('unauthorized access', 401), {}, 'auth', 'PIPEDRIVE_UNAUTHORIZED'],
    [402, v1('Payment required', 402), {}, 'config', 'PIPEDRIVE_PAYMENT_REQUIRED'],
    [403, v1('You do not have permission', 403), {}, 'config', 'PIPEDRIVE_FORBIDDEN'],
    [403, '<html>Attention required | Cloudflare</html>', {}, 'rate_limited', 'PIPEDRIVE_BLOCKED'],
    [404, v2('Entity was not found'), {}, 'payload', 'PIPEDRIVE_NOT_FOUND'],
    [405, v1('Method not allowed', 405), {}, 'config', 'PIPEDRIVE_UNSUPPORTED'],
    [408, 'timeout', {}, 'transient', 'PIPEDRIVE_TIMEOUT'],
    [409, v2('Conflict'), {}, 'payload', 'PIPEDRIVE_HTTP_409'],
    [410, v1('Gone', 410), {}, 'config', 'PIPEDRIVE_ENDPOINT_GONE'],
    [415, v1('Unsupported media type', 415), {}, 'payload', 'PIPEDRIVE_HTTP_415'],
    [422, v2('Unprocessable'), {}, 'payload', 'PIPEDRIVE_HTTP_422'],
    [429, v1('Request over limit', 429), { 'x-ratelimit-reset': '2' }, 'rate_limited', 'PIPEDRIVE_RATE_LIMITED'],
    [429, v1('Request over limit', 429), { 'x-daily-ratelimit-token-remaining': '0' }, 'rate_limited', 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED'],
    [500, v1('Internal error', 500), {}, 'transient', 'PIPEDRIVE_SERVER_ERROR'],
    [502, '<html>bad gateway</html>', {}, 'transient', 'PIPEDRIVE_SERVER_ERROR'],
    [503, '', {}, 'transient', 'PIPEDRIVE_SERVER_ERROR'],
  ])('%i %s → %s', (status, body, headers, kind, code) => {
    const e = classifyPipedriveFailure({ status, body, headers }, { object: 'persons' });
    expect(e.kind).toBe(kind);
    expect(e.code).toBe(code);
    expect(e.context).toMatchObject({ connector: 'pipedrive', object: 'persons', status });
  });

  it('keeps the vendor message and never a token', () => {
    const e = classifyPipedriveFailure({ status: 400, body: v2('Validation failed: owner_id'), headers: {} });
    expect(e.message).toContain('Validation failed: owner_id');
  });

  it('waits for the window reset, Retry-After, or midnight UTC when the daily budget is spent', () => {
    const now = Date.UTC(2026, 10, 29, 23, 0, 0);
    expect(retryAfterMs({ 'x-ratelimit-reset': '2' }, now)).toBe(2000);
    expect(retryAfterMs({ 'retry-after': '7' }, now)).toBe(7000);
    expect(retryAfterMs({ 'x-daily-ratelimit-token-remaining': '0' }, now)).toBe(3_600_000);
    expect(msUntilUtcMidnight(now)).toBe(3_600_000);
  });

  it('network failures are transient', () => {
    expect(classifyNetworkError(new TypeError('fetch failed'))).toMatchObject({ kind: 'transient', code: 'PIPEDRIVE_NETWORK' });
    expect(classifyNetworkError(new DOMException('t', 'TimeoutError'))).toMatchObject({ kind: 'transient', code: 'PIPEDRIVE_TIMEOUT' });
  });
});
