import { describe, expect, it } from 'vitest';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { type IngestItem, prepareEvents, resolutionKey } from '../../src/ingest/ingest-group.ts';
import { decodeGroup, decodeOutcomes, encodeGroup, encodeOutcomes, fromErrorData, toErrorData } from '../../src/ingest/ingest-worker-protocol.ts';
import { validateBatch } from '../../src/ingest/validate-events.ts';

function items(): IngestItem[] {
  const t = '2026-01-01T00:00:10.000Z';
  const batch = validateBatch(
    {
      sentAt: t,
      batch: [
        { type: 'identify', userId: 'u-1', anonymousId: 'a-1', messageId: 'm1', timestamp: '2026-01-01T00:00:05.000Z', traits: { email: 'A@Example.com', plan: 'pro', nested: { x: [1, null] } } },
        { type: 'track', userId: 'u-1', event: 'E', properties: { n: 1 }, context: { externalIds: [{ id: '42', type: 'hubspot.contact', collection: 'users' }] } },
        { type: 'page', anonymousId: 'a-2', name: 'Home', category: 'Docs' },
        { type: 'group', userId: 'u-1', groupId: 'g-1', traits: { name: 'Acme' } },
        { type: 'alias', userId: 'u-2', previousId: 'a-1' },
      ],
    },
    false,
  );
  expect(batch.issues).toEqual([]);
  return batch.events.map((e) => ({ event: e.event, receivedAt: '2026-01-01T00:00:11.000Z' }));
}

describe('ingest worker wire format', () => {
  it('round-trips prepared events', () => {
    const prepared = prepareEvents(items());
    expect(decodeGroup(structuredClone(encodeGroup(prepared)))).toEqual(prepared);
    // What the transaction needs was worked out: skew-corrected time, identifiers, JSON properties.
    const [identify, track, page, group, alias] = prepared;
    expect(identify?.at).toBe('2026-01-01T00:00:06.000Z');
    expect(identify?.person.map((i) => i.type)).toEqual(['user_id', 'anonymous_id', 'email']);
    expect(track?.person.map((i) => `${i.type}:${i.value}`)).toEqual(['user_id:u-1', 'hubspot.contact:42']);
    expect(JSON.parse(page?.propertiesJson ?? '')).toEqual({ category: 'Docs' });
    expect(group?.account.map((i) => i.type)).toEqual(['group_id']);
    expect(alias?.previousId).toBe('a-1');
  });

  it('round-trips outcomes, issues and per-event errors', () => {
    const outcomes = [
      { ok: true as const, value: { status: 'stored' as const, profileId: 'prf_1' as never, issues: [] } },
      { ok: true as const, value: { status: 'duplicate' as const, profileId: null, issues: [] } },
      { ok: true as const, value: { status: 'unresolved' as const, profileId: null, issues: ['blocked_value: placeholder'] } },
      { ok: false as const, error: new CrmhubError('conflict', 'taken', { code: 'IDENTIFIER_TAKEN', context: { field: 'email' } }) },
    ];
    const back = decodeOutcomes(structuredClone(encodeOutcomes(outcomes)));
    expect(back.slice(0, 3)).toEqual(outcomes.slice(0, 3));
    const failed = back[3] as { ok: false; error: unknown };
    expect(failed.ok).toBe(false);
    expect(failed.error).toBeInstanceOf(CrmhubError);
    expect(failed.error).toMatchObject({ kind: 'conflict', code: 'IDENTIFIER_TAKEN', context: { field: 'email' }, message: 'taken' });
  });

  it('rebuilds errors across the thread boundary', () => {
    expect(fromErrorData(structuredClone(toErrorData(new TypeError('bad'))))).toBeInstanceOf(TypeError);
    const other = fromErrorData(structuredClone(toErrorData(Object.assign(new Error('disk I/O error'), { name: 'SqliteError' }))));
    expect(other).toBeInstanceOf(CrmhubError);
    expect(other.message).toBe('disk I/O error');
    expect(fromErrorData(toErrorData('plain')).message).toBe('plain');
  });
});

describe('resolutionKey', () => {
  it('cannot be forged by ids holding separators', () => {
    const forged = resolutionKey('person', [{ type: 'user_id', value: 'a\u0001anonymous_id\u0000b', source: 'event' }]);
    const real = resolutionKey('person', [
      { type: 'user_id', value: 'a', source: 'event' },
      { type: 'anonymous_id', value: 'b', source: 'event' },
    ]);
    expect(forged).not.toBe(real);
    expect(resolutionKey('person', [])).toBe('');
    expect(resolutionKey('person', [{ type: 'user_id', value: 'x', source: 'event' }])).not.toBe(resolutionKey('account', [{ type: 'user_id', value: 'x', source: 'event' }]));
  });
});
