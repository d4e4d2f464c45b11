import { describe, expect, it } from 'vitest';
import { MemoryConnector } from '../../src/connector-kit/testing/memory-connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { describeConnectorContract } from './contract-suite.ts';

describeConnectorContract('memory', () => {
  const connector = new MemoryConnector({ slug: 'memory' });
  return Promise.resolve({
    connector,
    object: 'contacts',
    validFields: (n) => ({ email: `user${n}@example.com`, firstname: `User ${n}` }),
    invalidFields: (n) => ({ email: `invalid-${n}`, firstname: 'Bad' }),
    upsertKey: (n) => ({ field: 'email', value: `user${n}@example.com` }),
    updateField: (v) => ({ firstname: `Renamed ${v}` }),
    repEdit: (id, fields) => Promise.resolve(connector.repEdit('contacts', id, fields)),
    buildWebhook: (id) => Promise.resolve(connector.buildWebhook(connector.outbox.filter((d) => d.id === id))),
  });
});

describe('memory connector behaviour', () => {
  it('marks our writes as self and rep edits as other', async () => {
    const c = new MemoryConnector();
    const [o] = await c.write('contacts', [{ ref: 'a', fields: { email: 'a@x.io' } }]);
    expect(o?.ok).toBe(true);
    const id = o?.ok ? o.remoteId : '';
    expect(c.record('contacts', id)?.origin).toBe('self');
    c.repEdit('contacts', id, { firstname: 'A' });
    expect(c.record('contacts', id)?.origin).toBe('other');
    expect(c.outbox.map((d) => d.origin)).toEqual(['self', 'other']);
  });

  it('injects 429 with retryAfter and counts calls', async () => {
    const c = new MemoryConnector();
    c.faults = { rateLimitRate: 1, retryAfterMs: 1234 };
    const error = await c.readByIds('contacts', ['1']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrmhubError);
    expect((error as CrmhubError).kind).toBe('rate_limited');
    expect((error as CrmhubError).retryAfterMs).toBe(1234);
    expect(c.calls.total).toBe(1);
    expect(c.calls.rateLimited).toBe(1);
  });

  it('enforces its declared window when asked', async () => {
    let now = 0;
    const c = new MemoryConnector({ enforceLimits: true, limits: { requestsPerWindow: 2, windowMs: 1000, maxConcurrent: 1 }, now: () => now });
    await c.readByIds('contacts', []);
    await c.readByIds('contacts', []);
    await expect(c.readByIds('contacts', [])).rejects.toMatchObject({ kind: 'rate_limited' });
    now = 1001;
    await expect(c.readByIds('contacts', [])).resolves.toEqual([]);
  });

  it('rejects batches above the cap', async () => {
    const c = new MemoryConnector({ maxBatchSize: 2 });
    const items = [1, 2, 3].map((i) => ({ ref: String(i), fields: { email: `${i}@x.io` } }));
    await expect(c.write('contacts', items)).rejects.toMatchObject({ kind: 'payload' });
  });
});
