import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BYTES } from '../../src/ingest/event-schemas.ts';
import { validateBatch, validateEvent } from '../../src/ingest/validate-events.ts';

describe('validateEvent', () => {
  it('accepts a Segment track call and keeps its messageId', () => {
    const r = validateEvent({ userId: 'u1', event: 'Signed Up', properties: { plan: 'pro' }, messageId: 'm-1', timestamp: '2024-01-01T00:00:00.000Z' }, 'track');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.event).toMatchObject({ type: 'track', messageId: 'm-1', userId: 'u1', anonymousId: null, name: 'Signed Up', properties: { plan: 'pro' } });
  });

  it('generates a messageId when none is sent', () => {
    const a = validateEvent({ anonymousId: 'a', event: 'x' }, 'track');
    const b = validateEvent({ anonymousId: 'a', event: 'x' }, 'track');
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) {
      expect(a.event.messageId).toMatch(/^gen-/);
      expect(a.event.messageId).not.toBe(b.event.messageId);
    }
  });

  it('requires userId or anonymousId, and treats a blank id as absent', () => {
    const r = validateEvent({ userId: '  ', event: 'x' }, 'track');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toMatch(/userId or anonymousId is required/);
  });

  it('names wrongly typed fields', () => {
    const r = validateEvent({ userId: 'u', traits: 'not-an-object' }, 'identify');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toContainEqual(expect.objectContaining({ path: 'traits' }));
    const t = validateEvent({ userId: 'u', event: 'e', timestamp: 'yesterday' }, 'track');
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.issues[0]?.path).toBe('timestamp');
  });

  it('needs event on track, groupId on group, previousId and userId on alias', () => {
    expect(validateEvent({ userId: 'u' }, 'track').ok).toBe(false);
    expect(validateEvent({ userId: 'u' }, 'group').ok).toBe(false);
    expect(validateEvent({ userId: 'u' }, 'alias').ok).toBe(false);
    expect(validateEvent({ previousId: 'p' }, 'alias').ok).toBe(false);
    expect(validateEvent({ userId: 'u', previousId: 'p' }, 'alias').ok).toBe(true);
    expect(validateEvent({ anonymousId: 'a', groupId: 42, traits: { name: 'Acme' } }, 'group')).toMatchObject({ ok: true, event: { groupId: '42' } });
  });

  it('refuses a type that contradicts the route', () => {
    const r = validateEvent({ type: 'identify', userId: 'u', event: 'x' }, 'track');
    expect(r).toMatchObject({ ok: false, issues: [{ path: 'type' }] });
  });

  it('keeps unknown fields out of the way (forward compatible)', () => {
    expect(validateEvent({ userId: 'u', _metadata: { nodeVersion: '20' }, channel: 'server' }, 'identify').ok).toBe(true);
  });

  it('refuses a body that is not an object', () => {
    expect(validateEvent([1, 2], 'track')).toMatchObject({ ok: false, issues: [{ path: '' }] });
  });

  it('puts page category into properties', () => {
    const r = validateEvent({ anonymousId: 'a', name: 'Pricing', category: 'Docs' }, 'page');
    expect(r).toMatchObject({ ok: true, event: { name: 'Pricing', properties: { category: 'Docs' } } });
  });
});

describe('validateBatch', () => {
  it('validates each item alone: good items pass, bad ones are named by index', () => {
    const r = validateBatch(
      {
        batch: [
          { type: 'identify', userId: 'u1', traits: { email: 'a@b.c' } },
          { type: 'track', userId: 'u1' },
          { type: 'launch', userId: 'u1' },
          'nope',
          { type: 'page', anonymousId: 'a1' },
        ],
      },
      false,
    );
    expect(r.events.map((e) => e.index)).toEqual([0, 4]);
    expect(r.rejected).toEqual([1, 2, 3]);
    expect(r.issues.map((i) => i.index)).toEqual([1, 2, 3]);
    expect(r.issues[1]?.message).toMatch(/type must be one of|must be one of/);
  });

  it('applies batch-level sentAt and context to items that lack them', () => {
    const r = validateBatch(
      {
        sentAt: '2024-01-01T00:00:10.000Z',
        context: { library: { name: 'x' }, traits: { email: 'ctx@x.io' } },
        batch: [{ type: 'track', userId: 'u', event: 'e', context: { ip: '1.2.3.4' } }],
      },
      false,
    );
    expect(r.events[0]?.event.sentAt).toBe('2024-01-01T00:00:10.000Z');
    expect(r.events[0]?.event.context).toMatchObject({ ip: '1.2.3.4', traits: { email: 'ctx@x.io' } });
  });

  it('rejects an item over 32 KB when asked to check sizes', () => {
    const big = { type: 'track', userId: 'u', event: 'e', properties: { blob: 'x'.repeat(MAX_EVENT_BYTES) } };
    const r = validateBatch({ batch: [big, { type: 'track', userId: 'u', event: 'small' }] }, true);
    expect(r.rejected).toEqual([0]);
    expect(r.issues[0]?.message).toMatch(/32 KB/);
    expect(r.events).toHaveLength(1);
  });

  it('reports an envelope without a batch array', () => {
    expect(validateBatch({ batch: {} }, false).issues[0]).toMatchObject({ index: null, path: 'batch' });
    expect(validateBatch({ batch: [] }, false).issues[0]?.message).toMatch(/at least one/);
  });
});
