/**
 * The ingest pipeline behind the Segment-compatible routes: for each validated event, inside one
 * group-commit transaction shared with concurrent requests —
 *
 * 1. dedupe on `messageId` (an event already stored is answered as stored, and changes nothing);
 * 2. correct the client clock skew (`receivedAt − (sentAt − timestamp)`);
 * 3. resolve identity: the person from `userId`/`anonymousId`/emails/`externalIds`, and for `group`
 *    the account from `groupId` (design.md §5); `alias` joins `previousId` to `userId`;
 * 4. write identify traits to the person and group traits to the account, with provenance
 *    (source `event`, changedAt = corrected timestamp; a stored value that changed later is kept,
 *    so late-arriving events never overwrite newer facts; a `null` trait deletes it);
 * 5. append the event (`events` table) to the person's profile;
 * 6. call `onProfilesChanged(tx, ids)` once per transaction with every profile created, merged into,
 *    or whose traits changed — in the same transaction, so the sync engine's outbox rows commit with
 *    the change that caused them.
 *
 * Every caller is answered after the COMMIT of the transaction holding its events.
 */
import type { Identifier, JsonObject, ProfileId, ProfileKind } from '../core/types.ts';
import { writeTraits } from '../identity/write-traits.ts';
import { CachedTx } from '../store/cached-tx.ts';
import type { EventRow, ProfileStore, StoreTx } from '../store/port.ts';
import { correctTimestamp } from './correct-timestamp.ts';
import { EVENT_SOURCE, type EventIdentifiers, extractIdentifiers } from './extract-identifiers.ts';
import { GroupCommitter, type Outcome } from './group-committer.ts';
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

export interface EventIngestorOptions {
  store: ProfileStore;
  identity: IdentityPort;
  onProfilesChanged?: ProfilesChangedHook;
  /** Group commit wait, ms. Default 0 (requests of the same event-loop turn share a transaction). */
  maxWaitMs?: number;
  /** Most events per transaction. Default 2000. */
  maxEvents?: number;
  /** Metrics hooks. */
  onEvent?: (type: string, status: EventStatus | 'failed') => void;
  onFlush?: (events: number, durationMs: number, committed: boolean) => void;
}

interface Item {
  event: IngestEvent;
  receivedAt: string;
}

export class EventIngestor {
  private readonly committer: GroupCommitter<Item, EventOutcome>;
  private hook: ProfilesChangedHook | undefined;

  constructor(private readonly options: EventIngestorOptions) {
    this.hook = options.onProfilesChanged;
    this.committer = new GroupCommitter<Item, EventOutcome>((items) => this.commit(items), {
      maxWaitMs: options.maxWaitMs ?? 0,
      maxItems: options.maxEvents ?? 2000,
      ...(options.onFlush === undefined ? {} : { onFlush: options.onFlush }),
    });
  }

  /** Sets (or replaces) the hook called inside each ingest transaction; the sync engine uses it for outbox rows. */
  setProfilesChangedHook(hook: ProfilesChangedHook | undefined): void {
    this.hook = hook;
  }

  /**
   * Stores `events` (received at `receivedAt`, ISO-8601) and resolves after the transaction holding
   * them committed: one outcome per event, in order. A failed outcome means that event is NOT stored.
   */
  async ingest(events: IngestEvent[], receivedAt: string): Promise<Outcome<EventOutcome>[]> {
    const outcomes = await this.committer.submit(events.map((event) => ({ event, receivedAt })));
    if (this.options.onEvent !== undefined) {
      outcomes.forEach((o, i) => this.options.onEvent?.((events[i] as IngestEvent).type, o.ok ? o.value.status : 'failed'));
    }
    return outcomes;
  }

  /** Waits for queued events to commit and refuses new ones. */
  close(): Promise<void> {
    return this.committer.close();
  }

  private commit(items: Item[]): Promise<EventOutcome[]> {
    return this.options.store.transaction(async (storeTx) => {
      // Everything of this transaction goes through one per-transaction cache: a group holds many
      // events of the same visitors, whose identifier, profile and trait rows are read once.
      const tx = new CachedTx(storeTx);
      // Dedupe the whole group in one query where the store can (generated ids are unique already).
      const sent = items.filter((i) => !i.event.messageIdGenerated).map((i) => i.event.messageId);
      const stored = tx.hasEvents === undefined || sent.length === 0 ? null : await tx.hasEvents(sent);
      const state: TxState = { changed: new Set(), seen: new Set(), resolved: new Map(), events: [], stored, times: new Map(), mergedInto: new Map() };
      const extracted = await this.prefetch(tx, items, stored);
      const outcomes: EventOutcome[] = [];
      for (let i = 0; i < items.length; i++) outcomes.push(await this.apply(tx, items[i] as Item, state, extracted[i]));
      // Rows are inserted at the end, so a profile merged later in this transaction has not had
      // them moved by the merge: point them at the survivor (as storing them one by one would).
      if (state.mergedInto.size > 0) {
        for (const e of state.events) e.row.profileId = survivorOf(state.mergedInto, e.row.profileId);
      }
      // One multi-row INSERT (Postgres) instead of a round trip per event.
      const inserted = state.events.length === 0 ? [] : await tx.insertEvents(state.events.map((e) => e.row));
      state.events.forEach(({ outcome }, i) => {
        // A concurrent writer (another process) stored this messageId first.
        if (inserted[i] === false) outcome.status = 'duplicate';
      });
      if (state.changed.size > 0 && this.hook !== undefined) await this.hook(tx, [...state.changed]);
      return outcomes;
    });
  }

  /**
   * Looks up, in one query, every identifier the group's events carry (when the identity port says
   * which keys it will look up): the answers land in the transaction's CachedTx, so resolving the
   * events one by one then mostly reads memory. Returns each item's identifiers (undefined for
   * events already stored, which apply() answers as duplicates without them).
   */
  private async prefetch(tx: CachedTx, items: readonly Item[], stored: Set<string> | null): Promise<(EventIdentifiers | undefined)[]> {
    const lookupKeys = this.options.identity.lookupKeys?.bind(this.options.identity);
    if (lookupKeys === undefined) return [];
    const keys = new Map<string, { type: string; value: string }>();
    /** Keys of resolutions with several identifiers: the resolver reads their profiles' identifier lists. */
    const multi = new Set<string>();
    /** Keys of identify/group calls with traits: the resolver's profile gets its traits read. */
    const withTraits = new Set<string>();
    const add = (list: { type: string; value: string }[], traits: boolean): void => {
      for (const k of list) {
        const key = `${k.type}\u0000${k.value}`;
        keys.set(key, k);
        if (list.length > 1) multi.add(key);
        if (traits) withTraits.add(key);
      }
    };
    const out = items.map(({ event }) => {
      if (stored?.has(event.messageId) === true) return undefined;
      const ids = extractIdentifiers(event);
      const traits = event.traits !== null && (event.type === 'identify' || event.type === 'group');
      add(lookupKeys('person', ids.person), traits && event.type === 'identify');
      if (event.type === 'group') add(lookupKeys('account', ids.account), traits);
      if (ids.previousId !== null) add([{ type: 'user_id', value: ids.previousId }], false);
      return ids;
    });
    if (keys.size < 2) return out;
    const rows = await tx.findIdentifiers([...keys.values()]);
    const lists: ProfileId[] = [];
    const traitsOf: ProfileId[] = [];
    for (const row of rows) {
      const key = `${row.type}\u0000${row.value}`;
      if (multi.has(key)) lists.push(row.profileId);
      if (withTraits.has(key)) traitsOf.push(row.profileId);
    }
    await tx.warm(rows.map((r) => r.profileId), { identifiers: lists, traits: traitsOf });
    return out;
  }

  private async apply(tx: StoreTx, { event, receivedAt }: Item, state: TxState, extracted: EventIdentifiers | undefined): Promise<EventOutcome> {
    // `seen` catches a duplicate inside this transaction without a query.
    const known =
      state.seen.has(event.messageId) ||
      (!event.messageIdGenerated && (state.stored !== null ? state.stored.has(event.messageId) : await tx.hasEvent(event.messageId)));
    if (known) {
      return { status: 'duplicate', profileId: null, issues: [] };
    }
    state.seen.add(event.messageId);
    // Events of one request share sentAt and receivedAt, and often timestamp: compute once per triple.
    const timesKey = `${event.timestamp ?? ''}\u0001${event.sentAt ?? ''}\u0001${receivedAt}`;
    let at = state.times.get(timesKey);
    if (at === undefined) {
      at = correctTimestamp({ timestamp: event.timestamp, sentAt: event.sentAt, receivedAt });
      state.times.set(timesKey, at);
    }
    const ids = extracted ?? extractIdentifiers(event);
    const issues: string[] = [];
    const person = [...ids.person];
    if (ids.previousId !== null) {
      const known = await tx.findIdentifiers([{ type: 'user_id', value: ids.previousId }]);
      person.push({ type: known.length > 0 ? 'user_id' : 'anonymous_id', value: ids.previousId, source: EVENT_SOURCE });
    }

    const personProfile = await this.resolve(tx, 'person', person, at, event.messageId, state, issues);
    let accountProfile: ProfileId | null = null;
    if (event.type === 'group') {
      accountProfile = await this.resolve(tx, 'account', ids.account, at, event.messageId, state, issues);
      if (accountProfile !== null && event.traits !== null) {
        if (await writeEventTraits(tx, accountProfile, event.traits, at)) state.changed.add(accountProfile);
      }
    }
    if (event.type === 'identify' && personProfile !== null && event.traits !== null) {
      if (await writeEventTraits(tx, personProfile, event.traits, at)) state.changed.add(personProfile);
    }

    const owner = personProfile ?? accountProfile;
    if (owner === null) return { status: 'unresolved', profileId: null, issues };
    const outcome: EventOutcome = { status: 'stored', profileId: owner, issues };
    state.events.push({
      row: { messageId: event.messageId, profileId: owner, type: event.type, name: event.name, properties: event.properties, timestamp: at, receivedAt },
      outcome,
    });
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
    at: string,
    trigger: string,
    state: TxState,
    issues: string[],
  ): Promise<ProfileId | null> {
    if (identifiers.length === 0) return null;
    const key = `${kind}\u0001${identifiers.map((i) => `${i.type}\u0000${i.value}`).join('\u0001')}`;
    const cached = state.resolved.get(key);
    if (cached !== undefined) return cached;
    const result = await this.options.identity.resolve(tx, { kind, identifiers, at, trigger });
    for (const issue of result.issues) issues.push(describeIssue(issue));
    if (result.profileId === null) return null;
    if (result.mergedFrom.length > 0) state.resolved.clear();
    for (const from of result.mergedFrom) state.mergedInto.set(from, result.profileId);
    if (result.created || result.mergedFrom.length > 0) state.changed.add(result.profileId);
    if (result.issues.length === 0) state.resolved.set(key, result.profileId);
    return result.profileId;
  }
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
  /** Corrected event times by (timestamp, sentAt, receivedAt). */
  times: Map<string, string>;
  /** Events to insert at the end, with the outcome to correct if the insert finds a duplicate. */
  events: { row: EventRow; outcome: EventOutcome }[];
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
  if (Object.keys(traits).length === 0) return false;
  const result = await writeTraits(tx, profileId, traits, { source: EVENT_SOURCE, changedAt: at });
  return result.written.length > 0 || result.deleted.length > 0;
}
