/**
 * The profile store port (design.md §3). Two adapters implement it — SQLite (better-sqlite3, the
 * embedded default) and Postgres (pg) — and one conformance suite (`test/store/conformance.ts`)
 * runs against both. Everything a caller changes together happens inside `transaction()`, so an
 * outbox row is committed with the profile change that caused it.
 *
 * Times are ISO-8601 strings in UTC; ids are strings. Methods never return adapter-specific types.
 */
import type { FieldValues, JsonObject, JsonValue, ProfileId, ProfileKind } from '../core/types.ts';

export interface ProfileRow {
  id: ProfileId;
  kind: ProfileKind;
  createdAt: string;
  updatedAt: string;
  /** Set when this profile was merged into another; lookups follow it. */
  mergedInto: ProfileId | null;
}

export interface IdentifierRow {
  type: string;
  /** Normalised value. */
  value: string;
  profileId: ProfileId;
  source: string;
  firstSeen: string;
  lastSeen: string;
}

export interface TraitRow {
  profileId: ProfileId;
  key: string;
  value: JsonValue;
  source: string;
  changedAt: string;
  /** Incremented on every change of this trait. */
  version: number;
}

export interface TraitWrite {
  key: string;
  /** `null` deletes the trait (null-deletes semantics, design.md §5). */
  value: JsonValue;
  source: string;
  changedAt: string;
}

export interface EventRow {
  messageId: string;
  profileId: ProfileId;
  /** identify | track | page | screen | group | alias */
  type: string;
  /** Event name for track, page/screen name, else null. */
  name: string | null;
  properties: JsonObject;
  /**
   * Optional, on insert only: `properties` already serialised with `JSON.stringify` — stored as
   * is, and `properties` is then not read (the ingest worker thread receives them serialised).
   */
  propertiesJson?: string;
  /** Corrected event time (receivedAt − (sentAt − timestamp)). */
  timestamp: string;
  receivedAt: string;
}

export interface MergeRow {
  fromId: ProfileId;
  intoId: ProfileId;
  reason: string;
  /** What caused it: a messageId, `admin:<who>`, a webhook delivery id. */
  trigger: string;
  at: string;
}

export interface PossibleDuplicateRow {
  profileA: ProfileId;
  profileB: ProfileId;
  /** e.g. `email:ada@example.com shared by two different user_id` */
  reason: string;
  at: string;
}

/** The shadow: the last field values known to be on the CRM record (the merge base). */
export interface RemoteRecordRow {
  connector: string;
  object: string;
  remoteId: string;
  profileId: ProfileId;
  shadow: FieldValues;
  /** Modified time at the CRM of the state in `shadow`. */
  remoteChangedAt: string | null;
  /** Per-field change times at the CRM, where given. */
  fieldChangedAt: Record<string, string>;
  syncedAt: string;
  deleted: boolean;
}

export type OutboxStatus = 'pending' | 'leased' | 'done' | 'dead';

export interface OutboxRow {
  id: string;
  connector: string;
  object: string;
  profileId: ProfileId;
  /** upsert | delete */
  op: string;
  /** Fields to write (`to_remote` values), coalesced with later rows for the same record. */
  fields: FieldValues;
  status: OutboxStatus;
  /** Counted attempts (rate-limited attempts are not counted). */
  attempts: number;
  nextAt: string;
  leaseUntil: string | null;
  leaseOwner: string | null;
  lastError: string | null;
  createdAt: string;
}

export interface OutboxInsert {
  connector: string;
  object: string;
  profileId: ProfileId;
  op: string;
  fields: FieldValues;
  /** Earliest time to send; now when absent. */
  nextAt?: string;
}

export interface DeadLetterRow {
  id: string;
  outboxId: string;
  connector: string;
  object: string;
  profileId: ProfileId;
  op: string;
  fields: FieldValues;
  /** Error kind and code, e.g. `payload:INVALID_EMAIL`. */
  reason: string;
  error: string;
  attempts: number;
  createdAt: string;
  replayedAt: string | null;
}

export interface CursorRow {
  connector: string;
  object: string;
  value: string;
  updatedAt: string;
}

export interface SyncRunRow {
  id: string;
  connector: string;
  object: string;
  direction: 'pull' | 'push' | 'both';
  trigger: string;
  status: 'running' | 'succeeded' | 'failed' | 'partial';
  startedAt: string;
  finishedAt: string | null;
  /** created/updated/skipped/failed, apiCalls, conflicts, … */
  counts: Record<string, number>;
  mappingVersion: string | null;
  error: string | null;
}

export interface ConflictRow {
  id: string;
  connector: string;
  object: string;
  profileId: ProfileId;
  remoteId: string | null;
  field: string;
  profileValue: JsonValue;
  remoteValue: JsonValue;
  baseValue: JsonValue;
  rule: string;
  /** `profile` | `remote` | `review` (parked) */
  resolution: string;
  at: string;
  resolvedAt: string | null;
}

/**
 * A webhook delivery kept with its parsed change until the change is applied (the durable inbox,
 * issue 5): stored in the transaction that answers the CRM, so a process dying after its 2xx loses
 * nothing. Receipts also dedupe deliveries: (source, deliveryId) is unique.
 */
export interface WebhookReceiptRow {
  /** Connector slug. */
  source: string;
  deliveryId: string;
  receivedAt: string;
  /** Change time at the CRM; pending receipts are processed oldest first by it. Null for bare receipts. */
  changedAt: string | null;
  /** The parsed change as JSON; null when there is nothing to process. */
  payload: JsonObject | null;
  /** When the change was applied (or given up on); null while it is still to do. */
  processedAt: string | null;
  /** The engine processing it; another may take it over once `leaseUntil` has passed. */
  leaseOwner: string | null;
  leaseUntil: string | null;
  /** Failed processing attempts. */
  attempts: number;
  lastError: string | null;
}

export interface WebhookReceiptInsert {
  source: string;
  deliveryId: string;
  receivedAt: string;
  changedAt: string;
  payload: JsonObject;
  /** The engine that processes it right after answering; others wait until `leaseUntil`. */
  leaseOwner: string;
  leaseUntil: string;
}

export interface MappingVersionRow {
  connector: string;
  object: string;
  hash: string;
  loadedAt: string;
}

/** Operations valid inside a transaction. All reads see the transaction's own writes. */
export interface StoreTx {
  // profiles
  createProfile(kind: ProfileKind, at: string): Promise<ProfileRow>;
  getProfile(id: string): Promise<ProfileRow | null>;
  /** Follows `mergedInto` to the live profile; null if the id is unknown. */
  resolveProfile(id: string): Promise<ProfileRow | null>;
  touchProfile(id: ProfileId, at: string): Promise<void>;
  /** Optional bulk reads (both SQL adapters have them; CachedTx uses them to prefetch a group commit's rows). */
  getProfiles?(ids: readonly string[]): Promise<ProfileRow[]>;
  listIdentifiersOfProfiles?(profileIds: readonly ProfileId[]): Promise<IdentifierRow[]>;
  getTraitsOfProfiles?(profileIds: readonly ProfileId[]): Promise<TraitRow[]>;
  /** Ids of profiles merged into this one, directly or transitively. */
  mergedFrom(id: ProfileId): Promise<ProfileId[]>;

  // identifiers
  findIdentifiers(keys: { type: string; value: string }[]): Promise<IdentifierRow[]>;
  listIdentifiers(profileId: ProfileId): Promise<IdentifierRow[]>;
  /** Inserts, or bumps `lastSeen` when (type, value) already belongs to this profile. */
  addIdentifier(row: Omit<IdentifierRow, 'firstSeen' | 'lastSeen'> & { at: string }): Promise<void>;
  /**
   * {@link addIdentifier} for many rows in as few statements as the dialect allows (one multi-row
   * upsert per 500 rows on Postgres), for the outbox worker's CRM ids of a whole batch. Throws
   * CrmhubError `conflict`/`IDENTIFIER_TAKEN` when any (type, value) belongs to another profile;
   * the caller's transaction then rolls back as a whole.
   */
  addIdentifiers(rows: readonly (Omit<IdentifierRow, 'firstSeen' | 'lastSeen'> & { at: string })[]): Promise<void>;
  removeIdentifier(type: string, value: string): Promise<void>;

  // traits
  getTraits(profileId: ProfileId): Promise<TraitRow[]>;
  /** Applies writes; a `null` value deletes the trait. Returns the rows as stored (deleted ones omitted). */
  writeTraits(profileId: ProfileId, writes: TraitWrite[]): Promise<TraitRow[]>;

  // events
  /** Appends; returns false (and stores nothing) when `messageId` is already stored. */
  insertEvent(row: EventRow): Promise<boolean>;
  /**
   * Appends many events in as few statements as the dialect allows (one multi-row INSERT on
   * Postgres). `result[i]` is false when `rows[i].messageId` was already stored or appeared earlier
   * in `rows`.
   */
  insertEvents(rows: EventRow[]): Promise<boolean[]>;
  hasEvent(messageId: string): Promise<boolean>;
  /** Which of `messageIds` are already stored (one query per 500 ids); ingest dedupes a whole group commit with it. */
  hasEvents?(messageIds: readonly string[]): Promise<Set<string>>;
  listEvents(profileId: ProfileId, limit: number): Promise<EventRow[]>;

  // merges
  /**
   * Moves identifiers, traits (newer `changedAt` wins per key), events and remote records from
   * `fromId` into `intoId`, sets `fromId.mergedInto`, and records the merge row.
   */
  mergeProfiles(merge: MergeRow): Promise<void>;
  listMerges(profileId: ProfileId): Promise<MergeRow[]>;
  countMerges(profileId: ProfileId): Promise<number>;
  recordPossibleDuplicate(row: PossibleDuplicateRow): Promise<void>;
  listPossibleDuplicates(limit: number): Promise<PossibleDuplicateRow[]>;

  // remote records (shadows)
  getRemoteRecord(connector: string, object: string, remoteId: string): Promise<RemoteRecordRow | null>;
  /**
   * The values the outbox worker sent (or is sending) to this connector object for this profile in
   * attempts not yet settled as done or dead: remote field → value, later rows winning. The inbound
   * path reads a remote value equal to one of these as the echo of our own write (see migration 0003).
   */
  findSentOutboxFields(connector: string, object: string, profileId: ProfileId): Promise<FieldValues>;
  findRemoteRecordsByProfile(connector: string, object: string, profileId: ProfileId): Promise<RemoteRecordRow[]>;
  /**
   * Bulk form of {@link findRemoteRecordsByProfile} for the outbox worker (one statement per 64
   * profiles): the shadows of these profiles for one connector object, ordered by profile, then
   * remote id. Profiles without a shadow are simply absent.
   */
  findRemoteRecordsByProfiles(connector: string, object: string, profileIds: readonly ProfileId[]): Promise<RemoteRecordRow[]>;
  /** Bulk form of {@link getRemoteRecord} (one statement per 64 ids); unknown ids are absent. Unordered. */
  getRemoteRecords(connector: string, object: string, remoteIds: readonly string[]): Promise<RemoteRecordRow[]>;
  upsertRemoteRecord(row: RemoteRecordRow): Promise<void>;
  /**
   * {@link upsertRemoteRecord} for many rows (one multi-row upsert per 500 rows on Postgres). Where
   * one record appears more than once, the last row wins, as with one call each in order.
   */
  upsertRemoteRecords(rows: readonly RemoteRecordRow[]): Promise<void>;
  /**
   * Shadows of one connector object in `remoteId` order, paged, for the sync engine's reconciliation
   * pass (finding deletes a pull did not report). Optional until both adapters implement it; the
   * engine skips delete detection without it.
   */
  listRemoteRecords?(connector: string, object: string, options: { afterRemoteId?: string; limit: number; includeDeleted?: boolean }): Promise<RemoteRecordRow[]>;
  /** Re-keys a shadow when the CRM moved the record (merge, lead conversion). */
  moveRemoteRecord(connector: string, object: string, fromId: string, toId: string): Promise<void>;

  // outbox
  enqueueOutbox(rows: OutboxInsert[]): Promise<OutboxRow[]>;

  // cursors
  getCursor(connector: string, object: string): Promise<CursorRow | null>;
  setCursor(connector: string, object: string, value: string, at: string): Promise<void>;

  // conflicts
  insertConflict(row: Omit<ConflictRow, 'id'>): Promise<ConflictRow>;

  // webhooks
  /**
   * Records a delivery with nothing left to process (stored as processed at `at`); false when
   * (source, deliveryId) was seen before (a duplicate).
   */
  recordWebhookReceipt(source: string, deliveryId: string, at: string): Promise<boolean>;
  /**
   * Stores deliveries with their parsed changes, unprocessed and leased to `leaseOwner` (the durable
   * inbox). `result[i]` is false, and nothing is stored for it, when (source, deliveryId) of
   * `rows[i]` was seen before or appeared earlier in `rows` (a duplicate).
   */
  insertWebhookReceipts(rows: WebhookReceiptInsert[]): Promise<boolean[]>;
}

export interface WebhookClaimOptions {
  /** Who claims; a receipt leased by another owner is not taken before its lease ends. */
  owner: string;
  /** Most receipts per claim. */
  limit: number;
  /** Lease length, ms. */
  leaseMs: number;
  now: string;
  /** Only these sources (connector slugs); all when absent. */
  sources?: readonly string[];
}

/** One claimed row to release for a later attempt ({@link ProfileStore.retryOutboxMany}). */
export interface OutboxRetry {
  id: string;
  /** Earliest next attempt (ISO). */
  nextAt: string;
  error: string;
  /** False for rate-limited or held attempts: they do not use up the retry budget. */
  countAttempt: boolean;
}

/** One claimed row to dead-letter ({@link ProfileStore.deadLetterOutboxMany}). */
export interface OutboxDeadLetter {
  id: string;
  /** Error kind and code, e.g. `payload:INVALID_EMAIL`. */
  reason: string;
  error: string;
}

export interface ClaimOptions {
  /** Who claims (process/worker id); a lease held by another owner is not stolen before it ends. */
  owner: string;
  limit: number;
  leaseMs: number;
  now: string;
  connector?: string;
  object?: string;
}

/** The store: transactions plus operations that run on their own. */
export interface ProfileStore {
  /** `sqlite` or `postgres`. */
  readonly dialect: 'sqlite' | 'postgres';

  /** Applies pending versioned migrations; returns the versions applied now. */
  migrate(): Promise<number[]>;

  /**
   * Runs `fn` in one transaction: all of it commits, or none. On Postgres it retries serialisation
   * failures; on SQLite transactions are serialised in-process.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;

  /** A read-only view outside any explicit transaction (each call is its own statement). */
  read(): StoreTx;

  // outbox workers (each call is its own transaction)
  /** Claims due rows (`FOR UPDATE SKIP LOCKED` on Postgres, a lease on SQLite), oldest first. */
  claimOutbox(options: ClaimOptions): Promise<OutboxRow[]>;
  /** Marks a claimed row delivered. No-op when `owner`'s lease ran out and another worker claimed the row. */
  completeOutbox(id: string, owner: string): Promise<void>;
  /**
   * Releases a claimed row for a later attempt; `countAttempt` false for rate-limited attempts.
   * No-op when `owner` no longer holds the row.
   */
  retryOutbox(id: string, owner: string, nextAt: string, error: string, countAttempt: boolean): Promise<void>;
  /** Moves a claimed row to dead_letters. Throws CrmhubError `conflict`/`OUTBOX_LEASE_LOST` when `owner` no longer holds it. */
  deadLetterOutbox(id: string, owner: string, reason: string, error: string, at: string): Promise<DeadLetterRow>;
  /**
   * {@link completeOutbox} for many rows in ONE transaction (the worker settles a whole batch at
   * once). Rows `owner` no longer holds are left alone. Resolves to the number of rows completed.
   */
  completeOutboxMany(ids: readonly string[], owner: string): Promise<number>;
  /**
   * Records, before the call, what an attempt is about to send (remote field → value) on rows
   * `owner` holds, in one transaction; see {@link StoreTx.findSentOutboxFields}. Resolves to rows marked.
   */
  markOutboxSent(rows: readonly { id: string; fields: FieldValues }[], owner: string): Promise<number>;
  /** {@link retryOutbox} for many rows in one transaction; rows `owner` no longer holds are left alone. Resolves to rows released. */
  retryOutboxMany(rows: readonly OutboxRetry[], owner: string): Promise<number>;
  /**
   * {@link deadLetterOutbox} for many rows in one transaction. Unlike the single form, a row `owner`
   * no longer holds is skipped, not an error (its new holder owns the outcome). Resolves to the
   * dead letters written.
   */
  deadLetterOutboxMany(rows: readonly OutboxDeadLetter[], owner: string, at: string): Promise<DeadLetterRow[]>;
  pendingOutboxCount(connector?: string): Promise<number>;
  listDeadLetters(options: { limit: number; connector?: string; includeReplayed?: boolean }): Promise<DeadLetterRow[]>;
  /** Re-enqueues dead letters (all unreplayed when `ids` is empty); returns how many. */
  replayDeadLetters(ids: string[], at: string): Promise<number>;

  // webhook inbox (each call is its own transaction)
  /**
   * Claims unprocessed receipts whose lease is free or ran out, oldest change first (`changedAt`,
   * then delivery id), leasing them to `owner` (`FOR UPDATE SKIP LOCKED` on Postgres).
   */
  claimWebhookReceipts(options: WebhookClaimOptions): Promise<WebhookReceiptRow[]>;
  /**
   * Marks receipts processed at `at` and releases their lease; `error` records why processing was
   * given up instead. Already processed receipts are left as they are.
   */
  finishWebhookReceipts(source: string, deliveryIds: readonly string[], at: string, error?: string): Promise<void>;
  /**
   * Releases receipts for another try at `nextAt` (by any owner), recording `error`; `countAttempt`
   * false for rate-limited or paused attempts (they do not use up the retry budget).
   */
  retryWebhookReceipts(source: string, deliveryIds: readonly string[], nextAt: string, error: string, countAttempt: boolean): Promise<void>;
  /** Unprocessed receipts (of one source, or all). */
  pendingWebhookCount(source?: string): Promise<number>;
  /** Deletes receipts processed before `before` (their dedupe window is over); returns how many. */
  pruneWebhookReceipts(before: string): Promise<number>;

  // runs, conflicts, mappings
  startSyncRun(row: Omit<SyncRunRow, 'id' | 'finishedAt' | 'status' | 'error'>): Promise<SyncRunRow>;
  finishSyncRun(id: string, update: Pick<SyncRunRow, 'status' | 'counts' | 'error' | 'finishedAt'>): Promise<void>;
  listSyncRuns(limit: number): Promise<SyncRunRow[]>;
  listConflicts(options: { limit: number; unresolvedOnly?: boolean }): Promise<ConflictRow[]>;
  recordMappingVersion(row: MappingVersionRow): Promise<void>;

  // leases (one scheduler runner per job across processes)
  /** Takes or renews the named lease for `owner` until `until`; false if another owner holds it. */
  acquireLease(name: string, owner: string, until: string, now: string): Promise<boolean>;
  releaseLease(name: string, owner: string): Promise<void>;

  close(): Promise<void>;
}
