import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SCHEMA_BY_TYPE, type EventType } from '../../src/ingest/event-schemas.ts';
import { fastParseEvent } from '../../src/ingest/fast-validate.ts';

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
