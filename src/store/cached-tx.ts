import type { FieldValues, ProfileId, ProfileKind } from '../core/types.ts';
import type {
  ConflictRow,
  CursorRow,
  EventRow,
  IdentifierRow,
  MergeRow,
  OutboxInsert,
  OutboxRow,
  PossibleDuplicateRow,
  ProfileRow,
  RemoteRecordRow,
  StoreTx,
  TraitRow,
  TraitWrite,
  WebhookReceiptInsert,
} from './port.ts';
import { iso } from './sql-values.ts';

const idKey = (type: string, value: string): string => `${type}\u0000${value}`;

/** `listIdentifiers` order: type, first_seen, value. */
function byTypeFirstSeenValue(a: IdentifierRow, b: IdentifierRow): number {
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.firstSeen !== b.firstSeen) return a.firstSeen < b.firstSeen ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/**
 * A {@link StoreTx} that remembers, for the life of ONE transaction, the profile, identifier and
 * trait rows it has read or written, so repeated lookups of the same keys are answered without a
 * statement. A group-commit transaction of ingest (thousands of events) looks up the same visitor
 * many times — a page, the identify, the tracks of one session — and on Postgres each lookup is a
 * round trip.
 *
 * Correctness rests on every write of the transaction going through this object (wrap the tx once,
 * hand only the wrapper on): writes update or drop the entries they touch, and `mergeProfiles`
 * (which moves identifiers, traits and events between profiles) drops everything. Reads see the
 * transaction's own writes exactly as the store would return them; rows are returned as copies (or
 * fresh arrays) so callers may mutate what they get. Never keep a CachedTx past its transaction:
 * other writers' commits are not seen.
 *
 * Also skips `touchProfile` when the cached `updatedAt` is already at or after `at` (the store's
 * UPDATE would change nothing).
 */
export class CachedTx implements StoreTx {
  /** (type, value) → row, or null when known absent. */
  private readonly identifiers = new Map<string, IdentifierRow | null>();
  private readonly profiles = new Map<string, ProfileRow | null>();
  private readonly lists = new Map<string, IdentifierRow[]>();
  private readonly traits = new Map<string, TraitRow[]>();

  /** Present when the wrapped tx has it (optional in the port). */
  hasEvents?: NonNullable<StoreTx['hasEvents']>;
  listRemoteRecords?: NonNullable<StoreTx['listRemoteRecords']>;

  constructor(private readonly inner: StoreTx) {
    if (inner.hasEvents !== undefined) this.hasEvents = inner.hasEvents.bind(inner);
    if (inner.listRemoteRecords !== undefined) this.listRemoteRecords = inner.listRemoteRecords.bind(inner);
  }

  /** Forgets everything (after a write whose effects are not tracked entry by entry). */
  private clear(): void {
    this.identifiers.clear();
    this.profiles.clear();
    this.lists.clear();
    this.traits.clear();
  }

  /**
   * Loads, in bulk, the rows of these profiles that are not cached yet: the profile rows, and when
   * asked their identifier lists and traits. Needs the wrapped tx's optional bulk reads; without
   * them it does nothing (later reads then go one by one, with the same answers).
   */
  async warm(profileIds: readonly ProfileId[], what: { identifiers?: readonly ProfileId[]; traits?: readonly ProfileId[] } = {}): Promise<void> {
    const inner = this.inner;
    const missing = [...new Set(profileIds)].filter((id) => !this.profiles.has(id));
    if (missing.length > 0 && inner.getProfiles !== undefined) {
      for (const id of missing) this.profiles.set(id, null);
      for (const row of await inner.getProfiles(missing)) this.profiles.set(row.id, { ...row });
    }
    const lists = [...new Set(what.identifiers ?? [])].filter((id) => !this.lists.has(id));
    if (lists.length > 0 && inner.listIdentifiersOfProfiles !== undefined) {
      for (const id of lists) this.lists.set(id, []);
      for (const row of await inner.listIdentifiersOfProfiles(lists)) {
        this.lists.get(row.profileId)?.push(row);
        this.identifiers.set(idKey(row.type, row.value), { ...row });
      }
    }
    const traits = [...new Set(what.traits ?? [])].filter((id) => !this.traits.has(id));
    if (traits.length > 0 && inner.getTraitsOfProfiles !== undefined) {
      for (const id of traits) this.traits.set(id, []);
      for (const row of await inner.getTraitsOfProfiles(traits)) this.traits.get(row.profileId)?.push(row);
    }
  }

  // ---- profiles ----------------------------------------------------------------------------

  async createProfile(kind: ProfileKind, at: string): Promise<ProfileRow> {
    const row = await this.inner.createProfile(kind, at);
    this.profiles.set(row.id, { ...row });
    this.lists.set(row.id, []);
    this.traits.set(row.id, []);
    return row;
  }

  async getProfile(id: string): Promise<ProfileRow | null> {
    let row = this.profiles.get(id);
    if (row === undefined) {
      row = await this.inner.getProfile(id);
      this.profiles.set(id, row === null ? null : { ...row });
    }
    return row === null ? null : { ...row };
  }

  async resolveProfile(id: string): Promise<ProfileRow | null> {
    const first = this.profiles.get(id);
    // Only the common case (a cached live profile) is answered here; chains go to the store, which
    // also guards against cycles.
    if (first !== undefined && (first === null || first.mergedInto === null)) return first === null ? null : { ...first };
    const row = await this.inner.resolveProfile(id);
    if (row !== null) this.profiles.set(row.id, { ...row });
    return row;
  }

  async touchProfile(id: ProfileId, at: string): Promise<void> {
    const t = iso(at);
    const cached = this.profiles.get(id);
    if (cached !== undefined && cached !== null && cached.updatedAt >= t) return;
    await this.inner.touchProfile(id, at);
    if (cached !== undefined && cached !== null) cached.updatedAt = t;
  }

  mergedFrom(id: ProfileId): Promise<ProfileId[]> {
    return this.inner.mergedFrom(id);
  }

  // ---- identifiers -------------------------------------------------------------------------

  async findIdentifiers(keys: { type: string; value: string }[]): Promise<IdentifierRow[]> {
    const out: IdentifierRow[] = [];
    const missing: { type: string; value: string }[] = [];
    for (const k of keys) {
      const cached = this.identifiers.get(idKey(k.type, k.value));
      if (cached === undefined) missing.push(k);
      else if (cached !== null) out.push({ ...cached });
    }
    if (missing.length > 0) {
      const found = await this.inner.findIdentifiers(missing);
      for (const k of missing) this.identifiers.set(idKey(k.type, k.value), null);
      for (const row of found) {
        this.identifiers.set(idKey(row.type, row.value), { ...row });
        out.push(row);
      }
    }
    return out;
  }

  async listIdentifiers(profileId: ProfileId): Promise<IdentifierRow[]> {
    let rows = this.lists.get(profileId);
    if (rows === undefined) {
      rows = (await this.inner.listIdentifiers(profileId)).map((r) => ({ ...r }));
      this.lists.set(profileId, rows);
      for (const r of rows) this.identifiers.set(idKey(r.type, r.value), { ...r });
    }
    return rows.map((r) => ({ ...r }));
  }

  async addIdentifier(row: Omit<IdentifierRow, 'firstSeen' | 'lastSeen'> & { at: string }): Promise<void> {
    const k = idKey(row.type, row.value);
    const before = this.identifiers.get(k);
    try {
      await this.inner.addIdentifier(row);
    } catch (err) {
      this.identifiers.delete(k);
      throw err;
    }
    const t = iso(row.at);
    let now: IdentifierRow | undefined;
    if (before === null) now = { type: row.type, value: row.value, profileId: row.profileId, source: row.source, firstSeen: t, lastSeen: t };
    else if (before !== undefined && before.profileId === row.profileId) now = { ...before, lastSeen: t > before.lastSeen ? t : before.lastSeen };
    if (now === undefined) {
      this.identifiers.delete(k);
      this.lists.delete(row.profileId);
      return;
    }
    this.identifiers.set(k, now);
    const list = this.lists.get(row.profileId);
    if (list !== undefined) {
      const i = list.findIndex((r) => r.type === row.type && r.value === row.value);
      if (i >= 0) list[i] = { ...now };
      else {
        list.push({ ...now });
        list.sort(byTypeFirstSeenValue);
      }
    }
  }

  /** One by one through {@link addIdentifier}, which keeps the cache right (this wrapper serves ingest, not bulk settles). */
  async addIdentifiers(rows: readonly (Omit<IdentifierRow, 'firstSeen' | 'lastSeen'> & { at: string })[]): Promise<void> {
    for (const row of rows) await this.addIdentifier(row);
  }

  async removeIdentifier(type: string, value: string): Promise<void> {
    await this.inner.removeIdentifier(type, value);
    const k = idKey(type, value);
    const before = this.identifiers.get(k);
    this.identifiers.set(k, null);
    if (before === undefined) this.lists.clear();
    else if (before !== null) {
      const list = this.lists.get(before.profileId);
      if (list !== undefined) {
        const i = list.findIndex((r) => r.type === type && r.value === value);
        if (i >= 0) list.splice(i, 1);
      }
    }
  }

  // ---- traits ------------------------------------------------------------------------------

  async getTraits(profileId: ProfileId): Promise<TraitRow[]> {
    let rows = this.traits.get(profileId);
    if (rows === undefined) {
      rows = await this.inner.getTraits(profileId);
      this.traits.set(profileId, rows);
    }
    return rows.map((r) => ({ ...r }));
  }

  async writeTraits(profileId: ProfileId, writes: TraitWrite[]): Promise<TraitRow[]> {
    let stored: TraitRow[];
    try {
      stored = await this.inner.writeTraits(profileId, writes);
    } catch (err) {
      this.traits.delete(profileId);
      throw err;
    }
    const cached = this.traits.get(profileId);
    if (cached !== undefined) {
      const touched = new Set(writes.map((w) => w.key));
      const next = cached.filter((r) => !touched.has(r.key)).concat(stored.map((r) => ({ ...r })));
      next.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.traits.set(profileId, next);
    }
    return stored;
  }

  // ---- events ------------------------------------------------------------------------------

  insertEvent(row: EventRow): Promise<boolean> {
    return this.inner.insertEvent(row);
  }

  insertEvents(rows: EventRow[]): Promise<boolean[]> {
    return this.inner.insertEvents(rows);
  }

  hasEvent(messageId: string): Promise<boolean> {
    return this.inner.hasEvent(messageId);
  }

  listEvents(profileId: ProfileId, limit: number): Promise<EventRow[]> {
    return this.inner.listEvents(profileId, limit);
  }

  // ---- merges ------------------------------------------------------------------------------

  async mergeProfiles(merge: MergeRow): Promise<void> {
    this.clear();
    try {
      await this.inner.mergeProfiles(merge);
    } finally {
      this.clear();
    }
  }

  listMerges(profileId: ProfileId): Promise<MergeRow[]> {
    return this.inner.listMerges(profileId);
  }

  countMerges(profileId: ProfileId): Promise<number> {
    return this.inner.countMerges(profileId);
  }

  recordPossibleDuplicate(row: PossibleDuplicateRow): Promise<void> {
    return this.inner.recordPossibleDuplicate(row);
  }

  listPossibleDuplicates(limit: number): Promise<PossibleDuplicateRow[]> {
    return this.inner.listPossibleDuplicates(limit);
  }

  // ---- the rest: not cached ----------------------------------------------------------------

  getRemoteRecord(connector: string, object: string, remoteId: string): Promise<RemoteRecordRow | null> {
    return this.inner.getRemoteRecord(connector, object, remoteId);
  }

  findSentOutboxFields(connector: string, object: string, profileId: ProfileId): Promise<FieldValues> {
    return this.inner.findSentOutboxFields(connector, object, profileId);
  }

  findRemoteRecordsByProfile(connector: string, object: string, profileId: ProfileId): Promise<RemoteRecordRow[]> {
    return this.inner.findRemoteRecordsByProfile(connector, object, profileId);
  }

  findRemoteRecordsByProfiles(connector: string, object: string, profileIds: readonly ProfileId[]): Promise<RemoteRecordRow[]> {
    return this.inner.findRemoteRecordsByProfiles(connector, object, profileIds);
  }

  getRemoteRecords(connector: string, object: string, remoteIds: readonly string[]): Promise<RemoteRecordRow[]> {
    return this.inner.getRemoteRecords(connector, object, remoteIds);
  }

  upsertRemoteRecord(row: RemoteRecordRow): Promise<void> {
    return this.inner.upsertRemoteRecord(row);
  }

  upsertRemoteRecords(rows: readonly RemoteRecordRow[]): Promise<void> {
    return this.inner.upsertRemoteRecords(rows);
  }

  moveRemoteRecord(connector: string, object: string, fromId: string, toId: string): Promise<void> {
    return this.inner.moveRemoteRecord(connector, object, fromId, toId);
  }

  enqueueOutbox(rows: OutboxInsert[]): Promise<OutboxRow[]> {
    return this.inner.enqueueOutbox(rows);
  }

  getCursor(connector: string, object: string): Promise<CursorRow | null> {
    return this.inner.getCursor(connector, object);
  }

  setCursor(connector: string, object: string, value: string, at: string): Promise<void> {
    return this.inner.setCursor(connector, object, value, at);
  }

  insertConflict(row: Omit<ConflictRow, 'id'>): Promise<ConflictRow> {
    return this.inner.insertConflict(row);
  }

  recordWebhookReceipt(source: string, deliveryId: string, at: string): Promise<boolean> {
    return this.inner.recordWebhookReceipt(source, deliveryId, at);
  }

  insertWebhookReceipts(rows: WebhookReceiptInsert[]): Promise<boolean[]> {
    return this.inner.insertWebhookReceipts(rows);
  }
}
