/**
 * One group commit's work (see `EventIngestor` for the pipeline), in two halves:
 *
 * - {@link prepareEvents} — everything that needs no database: the event's identifiers and their
 *   resolution key, the skew-corrected time, the properties as JSON. Pure; runs on the thread
 *   that validated the events.
 * - {@link runGroup} — everything inside the store transaction: dedupe, identity, traits, the event
 *   rows, then the `onProfilesChanged` hook. Runs on the main thread (`EventIngestor`) or, for
 *   a SQLite file, in the ingest worker thread (`ingest-worker.ts`), on the prepared events.
 */
import type { Identifier, JsonObject, ProfileId, ProfileKind } from '../core/types.ts';
import { writeTraits } from '../identity/write-traits.ts';
import { CachedTx } from '../store/cached-tx.ts';
import type { EventRow, StoreTx } from '../store/port.ts';
import { correctTimestamp } from './correct-timestamp.ts';
import type { EventType } from './event-schemas.ts';
import { EVENT_SOURCE, extractIdentifiers } from './extract-identifiers.ts';
import type { IngestEvent } from './validate-events.ts';

/** What ingest needs from the identity resolver (src/identity's `IdentityResolver` satisfies it). */
export interface IdentityPort {
  resolve(
    tx: StoreTx,
    request: { kind: ProfileKind; identifiers: Identifier[]; at: string; trigger: string },
  ): Promise<{ profileId: ProfileId | null; created: boolean; mergedFrom: readonly ProfileId[]; issues: readonly unknown[] }>;
  /** Optional: the identifier keys `resolve` would look up, so ingest can fetch a whole group's in one query. */
  lookupKeys?(kind: ProfileKind, identifiers: readonly Identifier[]): { type: string; value: string }[];
}

/** Called inside the ingest transaction with the ids of profiles that changed (created, merged into, traits). */
export type ProfilesChangedHook = (tx: StoreTx, profileIds: ProfileId[]) => Promise<void>;

export type EventStatus = 'stored' | 'duplicate' | 'unresolved';

/** What happened to one event. */
export interface EventOutcome {
  /**
   * `stored`; `duplicate` (its messageId was stored before — nothing changed); `unresolved` (no
   * usable identifier, e.g. only blocked values like `anonymous`: nothing stored, reported in `issues`).
   */
  status: EventStatus;
  profileId: ProfileId | null;
  /** Identity notes (blocked values, possible duplicates, caps), as the resolver reported them. */
  issues: string[];
}

/** One event of a group, with the time its request arrived (ISO-8601). */
export interface IngestItem {
  event: IngestEvent;
  receivedAt: string;
}

/** An event reduced to what its group transaction needs (see {@link prepareEvents}). */
export interface PreparedEvent {
  type: EventType;
  messageId: string;
  /** True when crmhub generated the messageId (unique by construction: no dedupe lookup). */
  messageIdGenerated: boolean;
  name: string | null;
  /** The stored `properties`, serialised. */
  propertiesJson: string;
  /** identify/group traits to write; null for other types or when absent. */
  traits: JsonObject | null;
  /** Skew-corrected event time (ISO-8601). */
  at: string;
  receivedAt: string;
  /** The person's identifiers (for an alias: without `previousId`, whose type needs a lookup). */
  person: Identifier[];
  /** Resolution-cache key of `person` (see {@link resolutionKey}); '' when `person` is empty. */
  personKey: string;
  /** For `group`: the account's identifiers, else empty. */
  account: Identifier[];
  accountKey: string;
  /** For `alias`: the earlier id. */
  previousId: string | null;
}

/**
 * Key of an identifier set in the per-transaction resolution cache. Unambiguous (JSON of the
 * values), so no crafted id can make two different sets share a key.
 */
export function resolutionKey(kind: ProfileKind, identifiers: readonly Identifier[]): string {
  if (identifiers.length === 0) return '';
  const flat: string[] = [kind];
  for (const i of identifiers) flat.push(i.type, i.value);
  return JSON.stringify(flat);
}

/**
 * The database-free half of a group (see the module comment), one entry per item in order. Events
 * of one request share their times, so the corrected time is worked out once per distinct triple;
 * a visitor's events share their identifier set, so its key is too.
 */
export function prepareEvents(items: readonly IngestItem[]): PreparedEvent[] {
  const times = new Map<string, string>();
  let last: { timestamp: string | null; sentAt: string | null; receivedAt: string; at: string } | null = null;
  return items.map(({ event, receivedAt }) => {
    let at: string;
    if (last !== null && last.timestamp === event.timestamp && last.sentAt === event.sentAt && last.receivedAt === receivedAt) at = last.at;
    else {
      const key = `${event.timestamp ?? ''}\u0001${event.sentAt ?? ''}\u0001${receivedAt}`;
      at = times.get(key) ?? correctTimestamp({ timestamp: event.timestamp, sentAt: event.sentAt, receivedAt });
      times.set(key, at);
      last = { timestamp: event.timestamp, sentAt: event.sentAt, receivedAt, at };
    }
    const ids = extractIdentifiers(event);
    return {
      type: event.type,
      messageId: event.messageId,
      messageIdGenerated: event.messageIdGenerated,
      name: event.name,
      propertiesJson: JSON.stringify(event.properties),
      traits: event.type === 'identify' || event.type === 'group' ? event.traits : null,
      at,
      receivedAt,
      person: ids.person,
      personKey: resolutionKey('person', ids.person),
      account: ids.account,
      accountKey: resolutionKey('account', ids.account),
      previousId: ids.previousId,
    };
  });
}

/**
 * The transaction half of a group (see the module comment) on prepared events: `tx` is wrapped
 * in a per-transaction {@link CachedTx}. One outcome per event, in order; throws to roll back.
 */
export function runGroup(tx: StoreTx, identity: IdentityPort, events: readonly PreparedEvent[], hook: ProfilesChangedHook | undefined): Promise<EventOutcome[]> {
  return new GroupRun(identity).run(tx, events, hook);
}

class GroupRun {
  constructor(private readonly identity: IdentityPort) {}

  async run(storeTx: StoreTx, events: readonly PreparedEvent[], hook: ProfilesChangedHook | undefined): Promise<EventOutcome[]> {
    // Everything of this transaction goes through one per-transaction cache: a group holds many
    // events of the same visitors, whose identifier, profile and trait rows are read once.
    const tx = new CachedTx(storeTx);
    // Dedupe the whole group in one query where the store can (generated ids are unique already).
    const sent = events.filter((e) => !e.messageIdGenerated).map((e) => e.messageId);
    const stored = tx.hasEvents === undefined || sent.length === 0 ? null : await tx.hasEvents(sent);
    const state: TxState = { changed: new Set(), seen: new Set(), resolved: new Map(), rows: [], rowOutcomes: [], stored, mergedInto: new Map() };
    await this.prefetch(tx, events, stored);
    const outcomes: EventOutcome[] = [];
    for (const event of events) {
      // Most events (a session's pages and tracks) belong to a visitor already resolved in this
      // transaction and write nothing but their row: those take no await at all.
      outcomes.push(this.applyResolved(event, state) ?? (await this.apply(tx, event, state)));
    }
    // Rows are inserted at the end, so a profile merged later in this transaction has not had
    // them moved by the merge: point them at the survivor (as storing them one by one would).
    if (state.mergedInto.size > 0) {
      for (const row of state.rows) row.profileId = survivorOf(state.mergedInto, row.profileId);
    }
    // One multi-row INSERT (Postgres) instead of a round trip per event.
    const inserted = state.rows.length === 0 ? [] : await tx.insertEvents(state.rows);
    for (let i = 0; i < state.rowOutcomes.length; i++) {
      // A concurrent writer (another process) stored this messageId first.
      if (inserted[i] === false) (state.rowOutcomes[i] as EventOutcome).status = 'duplicate';
    }
    if (state.changed.size > 0 && hook !== undefined) await hook(tx, [...state.changed]);
    return outcomes;
  }

  /**
   * Looks up in one query every identifier the group carries (when the identity port says which
   * keys it will look up), and the profiles, identifier lists and traits the resolver will read:
   * the answers land in the transaction's CachedTx, so resolving the events one by one then mostly
   * reads memory. Events already stored are skipped (they are answered as duplicates).
   */
  private async prefetch(tx: CachedTx, events: readonly PreparedEvent[], stored: Set<string> | null): Promise<void> {
    const lookupKeys = this.identity.lookupKeys?.bind(this.identity);
    if (lookupKeys === undefined) return;
    const keys = new Map<string, { type: string; value: string }>();
    /** Keys of resolutions with several identifiers: the resolver reads their profiles' identifier lists. */
    const multi = new Set<string>();
    /** Keys of identify/group calls with traits: the resolver's profile gets its traits read. */
    const withTraits = new Set<string>();
    /** Identifier sets (by resolution key, and whether traits are read) collected already. */
    const done = new Set<string>();
    const add = (list: { type: string; value: string }[], traits: boolean): void => {
      for (const k of list) {
        const key = `${k.type}\u0000${k.value}`;
        keys.set(key, k);
        if (list.length > 1) multi.add(key);
        if (traits) withTraits.add(key);
      }
    };
    const collect = (kind: ProfileKind, key: string, ids: Identifier[], traits: boolean): void => {
      // A visitor's events share their identifier set: normalise it once per group (whether its
      // traits are read is part of what is collected, so part of the memo key).
      const memo = traits ? `t${key}` : key;
      if (done.has(memo)) return;
      done.add(memo);
      add(lookupKeys(kind, ids), traits);
    };
    for (const event of events) {
      if (stored?.has(event.messageId) === true) continue;
      const traits = event.traits !== null;
      if (event.previousId === null) collect('person', event.personKey, event.person, traits && event.type === 'identify');
      else {
        add(lookupKeys('person', event.person), false);
        add([{ type: 'user_id', value: event.previousId }], false);
      }
      if (event.type === 'group') collect('account', event.accountKey, event.account, traits);
    }
    if (keys.size < 2) return;
    const rows = await tx.findIdentifiers([...keys.values()]);
    const lists: ProfileId[] = [];
    const traitsOf: ProfileId[] = [];
    for (const row of rows) {
      const key = `${row.type}\u0000${row.value}`;
      if (multi.has(key)) lists.push(row.profileId);
      if (withTraits.has(key)) traitsOf.push(row.profileId);
    }
    await tx.warm(
      rows.map((r) => r.profileId),
      { identifiers: lists, traits: traitsOf },
    );
  }

  /**
   * The synchronous path of {@link apply}: a duplicate, or an event that only appends its row to a
   * person resolved earlier in this transaction (no alias, no group, no traits to write). Returns
   * undefined, having changed nothing, when the event needs the full path.
   */
  private applyResolved(event: PreparedEvent, state: TxState): EventOutcome | undefined {
    if (state.seen.has(event.messageId) || (!event.messageIdGenerated && state.stored !== null && state.stored.has(event.messageId))) {
      return { status: 'duplicate', profileId: null, issues: [] };
    }
    if (event.previousId !== null || event.type === 'group' || (!event.messageIdGenerated && state.stored === null)) return undefined;
    if (event.traits !== null && hasKeys(event.traits)) return undefined;
    const profileId = event.personKey === '' ? undefined : state.resolved.get(event.personKey);
    if (profileId === undefined) return undefined;
    state.seen.add(event.messageId);
    return this.append(state, event, profileId, []);
  }

  private async apply(tx: StoreTx, event: PreparedEvent, state: TxState): Promise<EventOutcome> {
    // `seen` catches a duplicate inside this transaction without a query.
    const known =
      state.seen.has(event.messageId) ||
      (!event.messageIdGenerated && (state.stored !== null ? state.stored.has(event.messageId) : await tx.hasEvent(event.messageId)));
    if (known) {
      return { status: 'duplicate', profileId: null, issues: [] };
    }
    state.seen.add(event.messageId);
    const at = event.at;
    const issues: string[] = [];
    let person = event.person;
    let personKey = event.personKey;
    if (event.previousId !== null) {
      const known = await tx.findIdentifiers([{ type: 'user_id', value: event.previousId }]);
      person = [...event.person, { type: known.length > 0 ? 'user_id' : 'anonymous_id', value: event.previousId, source: EVENT_SOURCE }];
      personKey = resolutionKey('person', person);
    }

    const personProfile = await this.resolve(tx, 'person', person, personKey, at, event.messageId, state, issues);
    let accountProfile: ProfileId | null = null;
    if (event.type === 'group') {
      accountProfile = await this.resolve(tx, 'account', event.account, event.accountKey, at, event.messageId, state, issues);
      if (accountProfile !== null && event.traits !== null) {
        if (await writeEventTraits(tx, accountProfile, event.traits, at)) state.changed.add(accountProfile);
      }
    }
    if (event.type === 'identify' && personProfile !== null && event.traits !== null) {
      if (await writeEventTraits(tx, personProfile, event.traits, at)) state.changed.add(personProfile);
    }

    const owner = personProfile ?? accountProfile;
    if (owner === null) return { status: 'unresolved', profileId: null, issues };
    return this.append(state, event, owner, issues);
  }

  /** Queues the event's row for the end-of-transaction insert; its outcome is corrected if the insert finds a duplicate. */
  private append(state: TxState, event: PreparedEvent, profileId: ProfileId, issues: string[]): EventOutcome {
    const outcome: EventOutcome = { status: 'stored', profileId, issues };
    state.rows.push({
      messageId: event.messageId,
      profileId,
      type: event.type,
      name: event.name,
      // Stored from `propertiesJson`; the object is not needed here.
      properties: NOT_READ,
      propertiesJson: event.propertiesJson,
      timestamp: event.at,
      receivedAt: event.receivedAt,
    });
    state.rowOutcomes.push(outcome);
    return outcome;
  }

  /**
   * Resolves identity, with a per-transaction cache: an identical identifier set seen earlier in
   * this transaction, whose resolution attached every identifier without issues, maps to the same
   * profile (identifiers only move between profiles by merges, and any merge clears the cache).
   * Group commit puts a session's page/track bursts in one transaction, so this spares most lookups.
   */
  private async resolve(
    tx: StoreTx,
    kind: ProfileKind,
    identifiers: Identifier[],
    key: string,
    at: string,
    trigger: string,
    state: TxState,
    issues: string[],
  ): Promise<ProfileId | null> {
    if (identifiers.length === 0) return null;
    const cached = state.resolved.get(key);
    if (cached !== undefined) return cached;
    const result = await this.identity.resolve(tx, { kind, identifiers, at, trigger });
    for (const issue of result.issues) issues.push(describeIssue(issue));
    if (result.profileId === null) return null;
    if (result.mergedFrom.length > 0) state.resolved.clear();
    for (const from of result.mergedFrom) state.mergedInto.set(from, result.profileId);
    if (result.created || result.mergedFrom.length > 0) state.changed.add(result.profileId);
    if (result.issues.length === 0) state.resolved.set(key, result.profileId);
    return result.profileId;
  }
}

/** The `properties` of rows inserted from `propertiesJson` (frozen: nothing may write to it). */
const NOT_READ: JsonObject = Object.freeze({});

/** `Object.keys(o).length > 0` without building the array. */
function hasKeys(o: JsonObject): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** What one group-commit transaction accumulates. */
interface TxState {
  /** Profiles created, merged into, or whose traits changed: passed to `onProfilesChanged`. */
  changed: Set<ProfileId>;
  /** messageIds handled in this transaction. */
  seen: Set<string>;
  /** Identifier-set key → profile (see `resolve`). */
  resolved: Map<string, ProfileId>;
  /** messageIds of this group already stored before the transaction (null: ask per event). */
  stored: Set<string> | null;
  /** Profiles merged in this transaction → the profile they were merged into. */
  mergedInto: Map<ProfileId, ProfileId>;
  /** Rows to insert at the end, and (same index) the outcome to correct if the insert finds a duplicate. */
  rows: EventRow[];
  rowOutcomes: EventOutcome[];
}

/** Follows this transaction's merges from `id` to the live profile. */
function survivorOf(mergedInto: ReadonlyMap<ProfileId, ProfileId>, id: ProfileId): ProfileId {
  let current = id;
  // Each merge retires its source for good, so the chain ends; the bound only guards programming errors.
  for (let hop = 0; hop <= mergedInto.size; hop++) {
    const next = mergedInto.get(current);
    if (next === undefined) return current;
    current = next;
  }
  return current;
}

function describeIssue(issue: unknown): string {
  if (typeof issue === 'string') return issue;
  if (typeof issue === 'object' && issue !== null) {
    const { code, message } = issue as { code?: unknown; message?: unknown };
    if (typeof message === 'string') return typeof code === 'string' ? `${code}: ${message}` : message;
  }
  return JSON.stringify(issue);
}

/** Writes event traits with provenance (src/identity's `writeTraits`); true when anything changed. */
async function writeEventTraits(tx: StoreTx, profileId: ProfileId, traits: JsonObject, at: string): Promise<boolean> {
  if (!hasKeys(traits)) return false;
  const result = await writeTraits(tx, profileId, traits, { source: EVENT_SOURCE, changedAt: at });
  return result.written.length > 0 || result.deleted.length > 0;
}
