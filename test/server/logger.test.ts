import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl, scrubSecrets } from '../../src/server/logger.ts';

function collector() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, stream };
}

const SECRET = 'sk_live_9f8e7d6c5b4a';

describe('logger', () => {
  it('redacts credential fields by name', () => {
    const { lines, stream } = collector();
    const log = createLogger({ destination: stream });
    log.info({ headers: { authorization: 'Basic d2tfdGVzdDo=' }, hubspot: { accessToken: 'pat-abc', clientSecret: 'cs-abc' }, password: 'hunter22', writeKey: 'wk-1' }, 'hello');
    const out = lines.join('');
    for (const s of ['d2tfdGVzdDo=', 'pat-abc', 'cs-abc', 'hunter22', 'wk-1']) expect(out).not.toContain(s);
    expect(out).toContain('[REDACTED]');
  });

  it('scrubs configured secret values wherever they appear, also in error messages and stacks', () => {
    const { lines, stream } = collector();
    const log = createLogger({ destination: stream, secrets: [SECRET] });
    log.error({ err: new TypeError(`call failed with token ${SECRET}`) }, `while using ${SECRET}`);
    log.info({ nested: { deep: { deeper: { value: `x${SECRET}y` } } } }, 'deep');
    const out = lines.join('');
    expect(out).not.toContain(SECRET);
    expect(out.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(3);
  });

  it('removes ?token= values and Basic/Bearer credentials from text', () => {
    expect(redactUrl('/webhooks/salesforce?token=abc123&x=1')).toBe('/webhooks/salesforce?token=[REDACTED]&x=1');
    expect(scrubSecrets('Authorization: Bearer eyJhbGciOi.xyz and Basic d2s6')).toBe('Authorization: Bearer [REDACTED] and Basic [REDACTED]');
  });

  it('logs request URLs without ?token= values', () => {
    const { lines, stream } = collector();
    const log = createLogger({ destination: stream });
    log.info({ req: { method: 'POST', url: '/webhooks/salesforce?token=s3cr3t-token', id: 'r1' } }, 'incoming');
    const out = lines.join('');
    expect(out).not.toContain('s3cr3t-token');
    expect(out).toContain('/webhooks/salesforce?token=[REDACTED]');
  });
});
