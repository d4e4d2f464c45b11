import { describe, expect, it } from 'vitest';
import { extractIdentifiers } from '../../src/ingest/extract-identifiers.ts';
import { validateEvent } from '../../src/ingest/validate-events.ts';
import type { EventType } from '../../src/ingest/event-schemas.ts';

function event(type: EventType, body: Record<string, unknown>) {
  const r = validateEvent(body, type);
  if (!r.ok) throw new TypeError(JSON.stringify(r.issues));
  return r.event;
}

describe('extractIdentifiers', () => {
  it('takes userId, anonymousId, traits.email, context.traits.email and context.externalIds', () => {
    const ids = extractIdentifiers(
      event('identify', {
        userId: 'u1',
        anonymousId: 'a1',
        traits: { email: 'Ada@Example.com' },
        context: {
          traits: { email: 'other@example.com' },
          externalIds: [
            { id: '512', type: 'hubspot.contact', collection: 'users', encoding: 'none' },
            { id: '0015g00000ABCDEF', type: 'salesforce.account', collection: 'accounts', encoding: 'none' },
          ],
        },
      }),
    );
    expect(ids.person.map((i) => `${i.type}:${i.value}`)).toEqual([
      'user_id:u1',
      'anonymous_id:a1',
      'email:Ada@Example.com',
      'email:other@example.com',
      'hubspot.contact:512',
    ]);
    expect(ids.person.every((i) => i.source === 'event')).toBe(true);
    expect(ids.account.map((i) => i.type)).toEqual(['salesforce.account']);
  });

  it('does not take traits.email from a track (only context.traits)', () => {
    const ids = extractIdentifiers(event('track', { anonymousId: 'a1', event: 'x', properties: { email: 'p@x.io' } }));
    expect(ids.person.map((i) => i.type)).toEqual(['anonymous_id']);
  });

  it('gives a group call an account identified by group_id; group traits.email is not the person', () => {
    const ids = extractIdentifiers(event('group', { userId: 'u1', groupId: 'acme', traits: { email: 'billing@acme.io' } }));
    expect(ids.person.map((i) => `${i.type}:${i.value}`)).toEqual(['user_id:u1']);
    expect(ids.account.map((i) => `${i.type}:${i.value}`)).toEqual(['group_id:acme']);
  });

  it('returns previousId of an alias apart (its type is decided against the store)', () => {
    const ids = extractIdentifiers(event('alias', { userId: 'u1', previousId: 'anon-9' }));
    expect(ids.previousId).toBe('anon-9');
    expect(ids.person.map((i) => i.type)).toEqual(['user_id']);
  });
});
