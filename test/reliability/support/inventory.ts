/**
 * What is actually in each CRM and in the store after a sync: every record of a connector object
 * read in full through the connector (with faults off), grouped by email; and per email, the
 * store's profile and how many remote records of each connector object it is linked to.
 */
import type { Connector, FieldValues } from '../../../src/connector-kit/connector.ts';
import type { ProfileStore } from '../../../src/store/port.ts';

/** The person objects each CRM's people live in (mappings/<slug>/…yaml), with their email field. */
export const PEOPLE: Record<string, { object: string; email: string }> = {
  hubspot: { object: 'contacts', email: 'email' },
  salesforce: { object: 'Contact', email: 'Email' },
  pipedrive: { object: 'persons', email: 'email' },
};

/** First string that looks like an email in a field value (Pipedrive keeps `[{value, primary}]`). */
function emailIn(value: unknown): string | null {
  if (typeof value === 'string') return value.includes('@') ? value.trim().toLowerCase() : null;
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = emailIn(v);
      if (found) return found;
    }
    return null;
  }
  if (typeof value === 'object' && value !== null) return emailIn((value as { value?: unknown }).value);
  return null;
}

export interface Inventory {
  /** email → remote ids holding it. */
  byEmail: Map<string, string[]>;
  /** Records with no email at all. */
  withoutEmail: string[];
  total: number;
}

/** Retries rate-limited and transient reads (the inventory runs beside the engine's throttle). */
async function patiently<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const kind = (error as { kind?: unknown }).kind;
      if (attempt >= 30 || (kind !== 'rate_limited' && kind !== 'transient')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1_100));
    }
  }
}

/** Reads every live record of one object (full read, page by page). */
export async function inventory(connector: Connector, object: string, emailField: string): Promise<Inventory> {
  const byEmail = new Map<string, string[]>();
  const withoutEmail: string[] = [];
  const seen = new Set<string>();
  let cursor: string | null = null;
  for (let pages = 0; pages < 100_000; pages++) {
    const from = cursor;
    const page = await patiently(() => connector.readChanges(object, from, { full: true, pageSize: 100 }));
    for (const r of page.records) {
      if (r.deleted || seen.has(r.id)) continue;
      seen.add(r.id);
      const email = emailIn((r.fields as FieldValues)[emailField]);
      if (email === null) withoutEmail.push(r.id);
      else byEmail.set(email, [...(byEmail.get(email) ?? []), r.id]);
    }
    if (page.nextCursor !== null) cursor = page.nextCursor;
    if (page.done) break;
  }
  return { byEmail, withoutEmail, total: seen.size };
}

/** Emails held by more than one record. */
export function duplicates(inv: Inventory): [string, string[]][] {
  return [...inv.byEmail].filter(([, ids]) => ids.length > 1);
}

export interface StoreFinding {
  missingProfile: string[];
  /** email → connector objects it is linked to a number of times other than one. */
  badLinks: string[];
}

/** Every email resolves to one profile linked to exactly one record of each connector's people object. */
export async function checkStore(store: ProfileStore, emails: Iterable<string>, connectors: string[]): Promise<StoreFinding> {
  const finding: StoreFinding = { missingProfile: [], badLinks: [] };
  const read = store.read();
  for (const email of emails) {
    const [row] = await read.findIdentifiers([{ type: 'email', value: email }]);
    if (!row) {
      finding.missingProfile.push(email);
      continue;
    }
    const profile = await read.resolveProfile(row.profileId);
    if (!profile) {
      finding.missingProfile.push(email);
      continue;
    }
    for (const slug of connectors) {
      const people = PEOPLE[slug];
      if (!people) continue;
      const links = await read.findRemoteRecordsByProfile(slug, people.object, profile.id);
      const live = links.filter((l) => !l.deleted);
      if (live.length !== 1) finding.badLinks.push(`${email} ${slug}.${people.object}×${live.length}`);
    }
  }
  return finding;
}
