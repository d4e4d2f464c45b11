/**
 * What is actually in each CRM and in the store after a sync: every record of a connector object
 * read in full through the connector (with faults off), grouped by email; and per email, the
 * store's profile and how many remote records of each connector object it is linked to.
 */
import type { ChangePage, Connector, RemoteRecord } from '../../../src/connector-kit/connector.ts';
import type { FieldValues } from '../../../src/core/types.ts';
import type { ProfileStore } from '../../../src/store/port.ts';

/** The person objects each CRM's people live in (mappings/<slug>/…yaml), with their email field. */
export const PEOPLE: Record<string, { object: string; email: string; compare: string[] }> = {
  hubspot: { object: 'contacts', email: 'email', compare: ['firstname', 'lastname', 'crmhub_plan'] },
  salesforce: { object: 'Contact', email: 'Email', compare: ['FirstName', 'LastName', 'Plan__c'] },
  pipedrive: { object: 'persons', email: 'email', compare: ['first_name', 'last_name', 'Plan'] },
};

/** email → the compared fields, as one comparable line per person (sorted). */
export function projection(inv: Inventory, fields: string[]): string[] {
  return [...inv.fieldsByEmail]
    .map(([email, f]) => `${email} ${fields.map((k) => JSON.stringify(f[k] ?? null)).join(' ')}`)
    .sort();
}

/** First string that looks like an email in a field value (Pipedrive keeps `[{value, primary}]`). */
export function emailIn(value: unknown): string | null {
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
  /** email → the fields of the (last) record holding it. */
  fieldsByEmail: Map<string, FieldValues>;
  /** Records with no email at all. */
  withoutEmail: string[];
  total: number;
  /** Every live record, in read order. */
  records: RemoteRecord[];
  /** remote id → the email it holds (records with one). */
  emailById: Map<string, string>;
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
  const fieldsByEmail = new Map<string, FieldValues>();
  const withoutEmail: string[] = [];
  const records: RemoteRecord[] = [];
  const emailById = new Map<string, string>();
  const seen = new Set<string>();
  let cursor: string | null = null;
  for (let pages = 0; pages < 100_000; pages++) {
    const from: string | null = cursor;
    const page: ChangePage = await patiently(() => connector.readChanges(object, from, { full: true, pageSize: 100 }));
    for (const r of page.records) {
      if (r.deleted || seen.has(r.id)) continue;
      seen.add(r.id);
      records.push(r);
      const email = emailIn(r.fields[emailField]);
      if (email === null) withoutEmail.push(r.id);
      else {
        emailById.set(r.id, email);
        byEmail.set(email, [...(byEmail.get(email) ?? []), r.id]);
        fieldsByEmail.set(email, r.fields);
      }
    }
    if (page.nextCursor !== null) cursor = page.nextCursor;
    if (page.done) break;
  }
  return { byEmail, fieldsByEmail, withoutEmail, total: seen.size, records, emailById };
}

/** Emails held by more than one record. */
export function duplicates(inv: Inventory): [string, string[]][] {
  return [...inv.byEmail].filter(([, ids]) => ids.length > 1);
}

export interface StoreFinding {
  /** connector → distinct live profiles linked to its people object. */
  profiles: Map<string, Set<string>>;
  /** Profiles linked to more than one live record of one connector object. */
  multiLinked: string[];
}

/** The store's links: per connector, which profiles hold a live record of its people object, and how many. */
export async function storeLinks(store: ProfileStore, connectors: string[]): Promise<StoreFinding> {
  const finding: StoreFinding = { profiles: new Map(), multiLinked: [] };
  const read = store.read();
  for (const slug of connectors) {
    const people = PEOPLE[slug];
    if (!people || !read.listRemoteRecords) continue;
    const count = new Map<string, number>();
    let after: string | undefined;
    for (;;) {
      const rows = await read.listRemoteRecords(slug, people.object, { limit: 500, ...(after === undefined ? {} : { afterRemoteId: after }) });
      for (const row of rows) {
        if (row.deleted) continue;
        // Old ids of merged profiles still resolve: count the surviving profile.
        const id = (await read.resolveProfile(row.profileId))?.id ?? row.profileId;
        count.set(id, (count.get(id) ?? 0) + 1);
      }
      if (rows.length < 500) break;
      after = rows.at(-1)?.remoteId;
    }
    finding.profiles.set(slug, new Set(count.keys()));
    for (const [id, n] of count) if (n > 1) finding.multiLinked.push(`${slug}.${people.object} ${id}×${n}`);
  }
  return finding;
}
