/**
 * The whole final state of a sync, in a form two runs on identical data can be compared in field
 * by field (crash suite): every live record of every mapped CRM object with its mapped fields, and
 * every live profile of the store with its identifiers, traits and links. What differs between two
 * runs by construction — CRM record ids, crmhub profile ids, timestamps — is replaced by what it
 * points to: a record id by the email of that record, a profile id by that profile's email.
 */
import Database from 'better-sqlite3';
import { loadMappingDir } from '../../../src/mapping/load-mappings.ts';
import type { ProfileId } from '../../../src/core/types.ts';
import type { Hub } from './hub.ts';
import { emailIn, inventory, type Inventory } from './inventory.ts';

/** One side's comparable entries: scope (`hubspot.contacts`, `profiles`) → key → entry → value. */
export type Entries = Map<string, Map<string, Record<string, string>>>;

export interface FinalState {
  entries: Entries;
  /** Figures compared as they are (merged profiles, pending outbox rows, dead letters). */
  counts: Record<string, number>;
  /** What must not be in any run: duplicated records, dangling links, unlinked people. */
  problems: string[];
}

interface MappedObject {
  connector: string;
  object: string;
  kind: 'person' | 'account';
  /** Remote fields the mapping file names (Pipedrive custom fields by name, as read back). */
  fields: string[];
  /** The remote field feeding the profile's email (person objects). */
  emailField: string | undefined;
  /** Remote fields holding a crmhub profile id (`crmhub_id`, `Crmhub_Id__c`, `crmhub id`). */
  profileIdFields: string[];
}

const show = (value: unknown): string => JSON.stringify(value ?? null);

async function mappedObjects(dir: string, connectors: readonly string[]): Promise<MappedObject[]> {
  const loaded = await loadMappingDir(dir);
  const out: MappedObject[] = [];
  for (const file of loaded.files) {
    const m = file.compiled;
    if (!m || !connectors.includes(m.connector)) continue;
    out.push({
      connector: m.connector,
      object: m.object,
      kind: m.profileKind,
      fields: [...new Set(m.fields.map((f) => f.remote))].sort(),
      emailField: m.fields.find((f) => f.profile === 'email')?.remote,
      profileIdFields: m.identity.match.filter((k) => k.identifier === 'profile_id').map((k) => k.remote),
    });
  }
  return out.sort((a, b) => `${a.connector}.${a.object}`.localeCompare(`${b.connector}.${b.object}`));
}

/** A profile's comparable key: its email identifiers (the crash suite's people all have one). */
function profileKey(identifiers: { type: string; value: string }[], id: string): string {
  const emails = identifiers.filter((i) => i.type === 'email').map((i) => i.value).sort();
  return emails.length > 0 ? emails.join(',') : `(no email; profile ${id})`;
}

/**
 * Reads the final state through `hub` (its connectors, with faults off, and its store). `sqliteFile`
 * is the store's file: the store port has no "list every profile", so the live profile ids (and the
 * merged count) are read from it directly, read-only.
 */
export async function captureFinalState(hub: Hub, options: { sqliteFile: string; mappingsDir: string; connectors: readonly string[] }): Promise<FinalState> {
  const entries: Entries = new Map();
  const problems: string[] = [];
  const objects = await mappedObjects(options.mappingsDir, options.connectors);
  const read = hub.store.read();

  // The store's live profiles and how to name them.
  const db = new Database(options.sqliteFile, { readonly: true, fileMustExist: true });
  let liveIds: ProfileId[];
  let merged: number;
  try {
    liveIds = (db.prepare('SELECT id FROM profiles WHERE merged_into IS NULL ORDER BY id').all() as { id: ProfileId }[]).map((r) => r.id);
    merged = (db.prepare('SELECT count(*) AS n FROM profiles WHERE merged_into IS NOT NULL').get() as { n: number }).n;
  } finally {
    db.close();
  }
  const identifiersOf = new Map<string, { type: string; value: string; source: string }[]>();
  const keyOf = new Map<string, string>();
  for (const id of liveIds) {
    const identifiers = await read.listIdentifiers(id);
    identifiersOf.set(id, identifiers);
    keyOf.set(id, profileKey(identifiers, id));
  }
  /** A profile id as written in a CRM field or a link → the email of the profile it resolves to. */
  const profileName = async (id: string): Promise<string> => {
    const resolved = (await read.resolveProfile(id))?.id;
    return resolved === undefined ? `(no profile ${id})` : (keyOf.get(resolved) ?? `(profile ${resolved} not live)`);
  };

  // Every live record of every mapped object, keyed by email (people) or by its content (accounts).
  const inventories = new Map<string, { object: MappedObject; inv: Inventory }>();
  const identifierTypes = new Map<string, string>();
  for (const o of objects) {
    const scope = `${o.connector}.${o.object}`;
    identifierTypes.set(hub.engine.ctx.declaration(o.connector, o.object).identifierType, scope);
    const inv = await inventory(hub.engine.ctx.connector(o.connector), o.object, o.emailField ?? '');
    inventories.set(scope, { object: o, inv });
    const records = new Map<string, Record<string, string>>();
    const byProfileId = new Map<string, string[]>();
    for (const r of inv.records) {
      const entry: Record<string, string> = {};
      for (const f of o.fields) entry[f] = show(r.fields[f]);
      for (const f of o.profileIdFields) {
        const value = r.fields[f];
        if (typeof value !== 'string' || value === '') {
          entry[f] = show(value);
          continue;
        }
        byProfileId.set(value, [...(byProfileId.get(value) ?? []), r.id]);
        entry[f] = `profile ${await profileName(value)}`;
      }
      const email = o.emailField === undefined ? null : emailIn(r.fields[o.emailField]);
      if (o.kind === 'person' && email === null) problems.push(`${scope} ${r.id} has no email`);
      let key = email ?? show(entry);
      // Two records with one key: both are kept (numbered) so the diff shows the extra one too.
      for (let n = 2; records.has(key); n++) key = `${email ?? show(entry)} #${n}`;
      records.set(key, entry);
    }
    for (const [email, ids] of inv.byEmail) if (ids.length > 1) problems.push(`${scope}: ${ids.length} records hold ${email} (${ids.join(', ')})`);
    for (const [profileId, ids] of byProfileId) if (ids.length > 1) problems.push(`${scope}: ${ids.length} records hold crmhub id ${profileId} (${ids.join(', ')})`);
    entries.set(scope, records);
  }
  const recordName = (scope: string, remoteId: string): string => {
    const found = inventories.get(scope)?.inv.emailById.get(remoteId);
    return found === undefined ? `(no live ${scope} ${remoteId})` : found;
  };

  // Links (remote_records): per live profile and mapped object, the live records it is linked to.
  const links = new Map<string, Map<string, string[]>>();
  for (const o of objects) {
    const scope = `${o.connector}.${o.object}`;
    let after: string | undefined;
    for (;;) {
      const rows = await read.listRemoteRecords!(o.connector, o.object, { limit: 500, ...(after === undefined ? {} : { afterRemoteId: after }) });
      for (const row of rows) {
        if (row.deleted) continue;
        const profile = (await read.resolveProfile(row.profileId))?.id ?? row.profileId;
        const perProfile = links.get(profile) ?? new Map<string, string[]>();
        perProfile.set(scope, [...(perProfile.get(scope) ?? []), recordName(scope, row.remoteId)]);
        links.set(profile, perProfile);
      }
      if (rows.length < 500) break;
      after = rows.at(-1)?.remoteId;
    }
  }

  // Every live profile: kind, identifiers (record ids named by their record), traits, links.
  const profiles = new Map<string, Record<string, string>>();
  for (const id of liveIds) {
    const key = keyOf.get(id) ?? id;
    const profile = await read.getProfile(id);
    const entry: Record<string, string> = { kind: profile?.kind ?? '(missing)' };
    for (const i of identifiersOf.get(id) ?? []) {
      const scope = identifierTypes.get(i.type);
      const value = scope === undefined ? i.value : recordName(scope, i.value);
      const name = `identifier ${i.type}`;
      entry[name] = entry[name] === undefined ? `${value} (${i.source})` : [entry[name], `${value} (${i.source})`].sort().join(' | ');
    }
    for (const t of await read.getTraits(id)) entry[`trait ${t.key}`] = `${show(t.value)} (${t.source})`;
    for (const [scope, names] of links.get(id) ?? []) {
      entry[`linked ${scope}`] = names.sort().join(', ');
      if (names.length > 1) problems.push(`profile ${key} is linked to ${names.length} live ${scope} records`);
    }
    if (profiles.has(key)) problems.push(`two live profiles hold ${key}`);
    profiles.set(profiles.has(key) ? `${key} (${id})` : key, entry);
  }
  entries.set('profiles', profiles);

  const counts = {
    'merged profiles': merged,
    'pending outbox rows': await hub.store.pendingOutboxCount(),
    'dead letters': (await hub.store.listDeadLetters({ limit: 1000, includeReplayed: false })).length,
  };
  return { entries, counts, problems };
}

/**
 * Readable differences, one line each: `- scope key` only in `expected`, `+ scope key` only in
 * `actual`, `~ scope key: entry expected X, got Y`. Empty when the states are equal.
 */
export function diffFinalStates(expected: FinalState, actual: FinalState): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(expected.counts)) {
    if (actual.counts[name] !== value) lines.push(`~ ${name}: expected ${value}, got ${String(actual.counts[name])}`);
  }
  const scopes = [...new Set([...expected.entries.keys(), ...actual.entries.keys()])].sort();
  for (const scope of scopes) {
    const want = expected.entries.get(scope) ?? new Map<string, Record<string, string>>();
    const got = actual.entries.get(scope) ?? new Map<string, Record<string, string>>();
    for (const key of [...new Set([...want.keys(), ...got.keys()])].sort()) {
      const a = want.get(key);
      const b = got.get(key);
      if (b === undefined) lines.push(`- ${scope} ${key}: missing in the crashed run (lost write)`);
      else if (a === undefined) lines.push(`+ ${scope} ${key}: only in the crashed run (duplicated or stray write)`);
      else {
        for (const entry of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
          if (a[entry] !== b[entry]) lines.push(`~ ${scope} ${key}: ${entry} expected ${a[entry] ?? '(none)'}, got ${b[entry] ?? '(none)'}`);
        }
      }
    }
  }
  return lines;
}

/** How many entries of each scope a state holds (for the log line and a sanity check). */
export function sizes(state: FinalState): Record<string, number> {
  return Object.fromEntries([...state.entries].map(([scope, m]) => [scope, m.size]));
}
