/**
 * Shared by the group-commit tests: sessions that create, attach, merge, refuse merges and rewrite
 * traits, and a snapshot of a store that does not depend on generated profile ids.
 */
import { validateEvent, type IngestEvent } from '../../src/ingest/validate-events.ts';
import type { EventType } from '../../src/ingest/event-schemas.ts';
import type { ProfileStore } from '../../src/store/port.ts';

export const T = (s: number): string => new Date(Date.parse('2026-01-01T00:00:00.000Z') + s * 1000).toISOString();

/** Sessions that create, attach, merge (anonymous → known, two anonymous ids), refuse merges (two user ids on one email), and rewrite traits. */
export function events(): IngestEvent[] {
  const raw: [EventType, Record<string, unknown>][] = [];
  for (let n = 0; n < 12; n++) {
    raw.push(['page', { anonymousId: `anon-${n}`, name: 'Pricing' }]);
    raw.push(['identify', { userId: `user-${n}`, anonymousId: `anon-${n}`, traits: { email: `u${n}@example.com`, plan: n % 2 === 0 ? 'pro' : 'free' } }]);
    raw.push(['track', { userId: `user-${n}`, event: 'Feature Used', properties: { n } }]);
    // A second device: its anonymous history, then an identify that merges it in.
    raw.push(['page', { anonymousId: `anon-${n}-b`, name: 'Docs' }]);
    raw.push(['identify', { userId: `user-${n}`, anonymousId: `anon-${n}-b`, traits: { plan: 'enterprise', seats: n, email: null } }]);
    // Another user id claiming the same email: stays apart, possible duplicate.
    if (n % 3 === 0) raw.push(['identify', { userId: `other-${n}`, traits: { email: `u${n}@example.com` } }]);
    // A duplicate messageId.
    raw.push(['track', { userId: `user-${n}`, event: 'Again', messageId: `dup-${n}` }]);
    raw.push(['track', { userId: `user-${n}`, event: 'Again', messageId: `dup-${n}` }]);
  }
  return raw.map(([type, body], i) => {
    const r = validateEvent({ messageId: `m-${i}`, timestamp: T(i), ...body }, type);
    if (!r.ok) throw new TypeError(JSON.stringify(r.issues));
    return r.event;
  });
}

/** The store's content with profile ids replaced by the sorted identifiers they hold. */
export async function snapshot(store: ProfileStore, all: IngestEvent[]): Promise<unknown> {
  const r = store.read();
  const people = new Map<string, string>();
  const name = async (id: string): Promise<string> => {
    const live = await r.resolveProfile(id);
    if (live === null) return 'none';
    let label = people.get(live.id);
    if (label === undefined) {
      label = (await r.listIdentifiers(live.id)).map((i) => `${i.type}:${i.value}`).sort().join(',');
      people.set(live.id, label);
    }
    return label;
  };
  const out: Record<string, unknown> = {};
  for (const e of all) {
    const ids = [e.userId, e.anonymousId].filter((x): x is string => x !== null);
    for (const v of ids) {
      const [row] = await r.findIdentifiers([{ type: v.startsWith('anon') ? 'anonymous_id' : 'user_id', value: v }]);
      if (row === undefined) continue;
      const who = await name(row.profileId);
      const live = await r.resolveProfile(row.profileId);
      out[who] = {
        traits: (await r.getTraits(live!.id)).map((t) => [t.key, t.value, t.changedAt]),
        events: (await r.listEvents(live!.id, 1000)).map((x) => x.messageId).sort(),
      };
    }
  }
  const dups = await r.listPossibleDuplicates(100);
  return { people: out, duplicates: await Promise.all(dups.map(async (d) => [await name(d.profileA), await name(d.profileB)].sort())) };
}
