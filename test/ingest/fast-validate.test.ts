import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchEnvelopeSchema, SCHEMA_BY_TYPE, type EventType } from '../../src/ingest/event-schemas.ts';
import { fastParseBatchEnvelope, fastParseEvent } from '../../src/ingest/fast-validate.ts';

/** The fields of a parsed event the pipeline reads (normalise in validate-events.ts), by type. */
const COMMON = ['type', 'userId', 'anonymousId', 'messageId', 'timestamp', 'originalTimestamp', 'sentAt', 'context'];
const READ: Record<EventType, string[]> = {
  identify: [...COMMON, 'traits'],
  track: [...COMMON, 'event', 'properties'],
  page: [...COMMON, 'name', 'category', 'properties'],
  screen: [...COMMON, 'name', 'category', 'properties'],
  group: [...COMMON, 'groupId', 'traits'],
  alias: [...COMMON, 'previousId'],
};

function pick(e: object, type: EventType): Record<string, unknown> {
  const r = e as Record<string, unknown>;
  return Object.fromEntries(READ[type].map((k) => [k, r[k] ?? null]));
}

const id = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant(''), fc.constant('  '), fc.constant(' u-1 '), fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant('x'.repeat(1025)));
const timeValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant('2024-01-01T00:00:00.000Z'), fc.constant(' 2024-01-01T00:00:00Z'), fc.constant('2024-02-30'), fc.constant('yesterday'), fc.constant(5), fc.string());
const obj = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant({ a: 1 }),
  fc.constant({ constructor: 'x' }),
  fc.constant([1]),
  fc.constant('s'),
  fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
);
const context = fc.oneof(obj, fc.record({ traits: obj }, { requiredKeys: [] }), fc.constant({ externalIds: [{ id: 'x', type: 'hubspot.contact' }] }), fc.constant({ library: { name: 'n' }, traits: { email: 'a@b.c' } }));
const str = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant(''), fc.constant(' Signed Up '), fc.string(), fc.integer(), fc.constant('e'.repeat(1025)));
const messageId = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant(' '), fc.constant(' m-1 '), fc.string(), fc.constant('m'.repeat(257)), fc.integer());

const event = fc.record(
  {
    type: fc.constantFrom<EventType>('identify', 'track', 'page', 'screen', 'group', 'alias'),
    userId: id,
    anonymousId: id,
    messageId,
    timestamp: timeValue,
    originalTimestamp: timeValue,
    sentAt: timeValue,
    context,
    integrations: obj,
    traits: obj,
    properties: obj,
    event: str,
    name: str,
    category: str,
  },
  { requiredKeys: ['type'] },
);

describe('fastParseEvent', () => {
  it('accepts only what the zod schema accepts, with the same values', () => {
    fc.assert(
      fc.property(event, (item) => {
        const input = item as Record<string, unknown>;
        const fast = fastParseEvent(input, item.type);
        if (fast === null) return;
        const slow = SCHEMA_BY_TYPE[item.type].safeParse(input);
        expect(slow.success).toBe(true);
        if (slow.success) expect(pick(fast, item.type)).toEqual(pick(slow.data, item.type));
      }),
      { numRuns: 5000 },
    );
  });

  it('takes the common Segment shapes (so the fast path is actually used)', () => {
    const t = '2024-01-01T00:00:00.000Z';
    expect(fastParseEvent({ type: 'track', userId: 'u', event: 'Feature Used', properties: { a: 1 }, messageId: 'm', timestamp: t, sentAt: t, context: { library: { name: 'x' } } }, 'track')).not.toBeNull();
    expect(fastParseEvent({ type: 'identify', userId: 7, anonymousId: 'a', traits: { email: 'a@b.c' } }, 'identify')).toMatchObject({ userId: '7' });
    expect(fastParseEvent({ type: 'page', anonymousId: 'a', name: 'Pricing' }, 'page')).not.toBeNull();
  });

  it('leaves what it cannot vouch for to zod', () => {
    expect(fastParseEvent({ type: 'track', userId: 'u', event: '  ' }, 'track')).toBeNull();
    expect(fastParseEvent({ type: 'identify', userId: ' ', anonymousId: null }, 'identify')).toBeNull();
    expect(fastParseEvent({ type: 'identify', userId: 'u', traits: { constructor: 'x' } }, 'identify')).toBeNull();
    expect(fastParseEvent({ type: 'group', userId: 'u', groupId: 'g' }, 'group')).toBeNull();
    expect(fastParseEvent({ type: 'track', userId: 'u', event: 'e', context: { externalIds: [] } }, 'track')).toBeNull();
    expect(fastParseEvent({ type: 'identify', anonymousId: 'a', context: { traits: null } }, 'identify')).toBeNull();
  });
});

describe('fastParseEvent with batch defaults', () => {
  it('reads sentAt and integrations defaults as if they were copied into the item', () => {
    const defaults = fc.record({ sentAt: timeValue, integrations: obj }, { requiredKeys: [] });
    fc.assert(
      fc.property(event, defaults, (item, d) => {
        const input = item as Record<string, unknown>;
        const copied = { ...input };
        if (copied.sentAt == null && d.sentAt != null) copied.sentAt = d.sentAt;
        if (copied.integrations == null && d.integrations != null) copied.integrations = d.integrations;
        const inPlace = fastParseEvent(input, item.type, d as { sentAt?: string | null; integrations?: Record<string, unknown> | null });
        const viaCopy = fastParseEvent(copied, item.type);
        expect(inPlace === null).toBe(viaCopy === null);
        if (inPlace !== null && viaCopy !== null) expect(pick(inPlace, item.type)).toEqual(pick(viaCopy, item.type));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fastParseBatchEnvelope', () => {
  const envelope = fc.record(
    {
      batch: fc.oneof(fc.constant([]), fc.constant([{ type: 'track' }]), fc.constant('x'), fc.array(fc.jsonValue(), { maxLength: 3 })),
      sentAt: timeValue,
      context: fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant({ library: { name: 'x' } }), fc.constant(5)),
      integrations: obj,
      writeKey: fc.oneof(fc.constant(undefined), fc.constant('wk'), fc.constant(7)),
    },
    { requiredKeys: [] },
  );

  it('accepts only what the envelope schema accepts, with the same batch, sentAt and integrations', () => {
    fc.assert(
      fc.property(fc.oneof(envelope, fc.constant(null), fc.constant([1]), fc.constant('s')), (body) => {
        const fast = fastParseBatchEnvelope(body);
        if (fast === null) return;
        const slow = batchEnvelopeSchema.safeParse(body);
        expect(slow.success).toBe(true);
        if (slow.success) {
          expect(fast.batch).toEqual(slow.data.batch);
          expect(fast.sentAt ?? null).toEqual(slow.data.sentAt ?? null);
          expect(fast.integrations ?? null).toEqual(slow.data.integrations ?? null);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the plain envelope Segment libraries send, and leaves an envelope context to zod', () => {
    const t = '2024-01-01T00:00:00.000Z';
    expect(fastParseBatchEnvelope({ batch: [{ type: 'track' }], sentAt: t, writeKey: 'wk' })).not.toBeNull();
    expect(fastParseBatchEnvelope({ batch: [{ type: 'track' }], context: { library: { name: 'x' } } })).toBeNull();
    expect(fastParseBatchEnvelope({ batch: [] })).toBeNull();
  });
});
