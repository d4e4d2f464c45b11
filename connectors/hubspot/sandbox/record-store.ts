/**
 * The HubSpot sandbox's in-memory CRM: records per object with per-property history, unique-value
 * indexes (`hasUniqueValue` properties such as `email`, `crmhub_id`), archived records, merges
 * (a contact merge gives the survivor a new id and the old ids resolve to it, as HubSpot does),
 * associations v4 with their type ids, and the change events webhooks are made from.
 */
import {
  OBJECT_NAMES,
  SINGULAR,
  defaultCatalog,
  normaliseValue,
  type ObjectName,
  type PropertyDefinition,
  type PropertyIssue,
} from './property-catalog.ts';

/** Who made a change: an integration's API write or a rep in the UI (webhook `changeSource`). */
export interface ChangeSource {
  changeSource: 'INTEGRATION' | 'API' | 'CRM_UI' | 'IMPORT';
  sourceId: string;
}

export interface HistoryEntry {
  value: string;
  timestamp: string;
  sourceType: string;
  sourceId?: string;
}

export interface StoredRecord {
  id: string;
  object: ObjectName;
  props: Record<string, string | null>;
  history: Record<string, HistoryEntry[]>;
  createdAt: number;
  updatedAt: number;
  archived: boolean;
  archivedAt?: number;
}

/** A change, before the webhook layer adds eventId, subscriptionId, portalId, appId, attemptNumber. */
export interface ChangeEvent {
  subscriptionType: string;
  objectId: number;
  occurredAt: number;
  changeSource: string;
  sourceId: string;
  propertyName?: string;
  propertyValue?: string;
  changeFlag?: string;
  primaryObjectId?: number;
  mergedObjectIds?: number[];
  newObjectId?: number;
  numberOfPropertiesMoved?: number;
  associationType?: string;
  fromObjectId?: number;
  toObjectId?: number;
  associationRemoved?: boolean;
  isPrimaryAssociation?: boolean;
}

export type WriteResult =
  | { ok: true; record: StoredRecord; created: boolean }
  | { ok: false; kind: 'validation'; issues: PropertyIssue[] }
  | { ok: false; kind: 'conflict'; existingId: string; property: string }
  | { ok: false; kind: 'not_found' };

export interface AssociationType {
  category: 'HUBSPOT_DEFINED' | 'USER_DEFINED' | 'INTEGRATOR_DEFINED';
  typeId: number;
}

/** HubSpot-defined association type ids (SDK `AssociationTypes` enum) and their inverses. */
const DEFINED_TYPES: { from: ObjectName; to: ObjectName; typeId: number; inverse: number; label: string | null; isDefault: boolean }[] = [
  { from: 'contacts', to: 'companies', typeId: 279, inverse: 280, label: null, isDefault: true },
  { from: 'contacts', to: 'companies', typeId: 1, inverse: 2, label: 'Primary', isDefault: false },
  { from: 'deals', to: 'contacts', typeId: 3, inverse: 4, label: null, isDefault: true },
  { from: 'deals', to: 'companies', typeId: 341, inverse: 342, label: null, isDefault: true },
  { from: 'deals', to: 'companies', typeId: 5, inverse: 6, label: 'Primary', isDefault: false },
];

interface TypeInfo {
  from: ObjectName;
  to: ObjectName;
  inverse: number;
  label: string | null;
  isDefault: boolean;
}
const TYPE_INFO = new Map<number, TypeInfo>();
for (const t of DEFINED_TYPES) {
  TYPE_INFO.set(t.typeId, { from: t.from, to: t.to, inverse: t.inverse, label: t.label, isDefault: t.isDefault });
  TYPE_INFO.set(t.inverse, { from: t.to, to: t.from, inverse: t.typeId, label: t.label, isDefault: t.isDefault });
}

/** The unlabelled default type id from one object to another. */
export function defaultTypeId(from: ObjectName, to: ObjectName): number | null {
  for (const [typeId, info] of TYPE_INFO) if (info.from === from && info.to === to && info.isDefault) return typeId;
  return null;
}

export function typeLabel(typeId: number): string | null {
  return TYPE_INFO.get(typeId)?.label ?? null;
}

/** Properties HubSpot maintains itself: they never produce propertyChange events. */
const CALCULATED = new Set(['hs_object_id', 'createdate', 'lastmodifieddate', 'hs_lastmodifieddate', 'hs_merged_object_ids', 'hs_additional_emails']);

export interface StoreSnapshot {
  nextId: number;
  records: StoredRecord[];
  aliases: [string, string][];
  associations: [string, string[]][];
  customProperties: { object: ObjectName; def: PropertyDefinition }[];
}

const assocKey = (from: ObjectName, fromId: string, to: ObjectName): string => `${from}|${fromId}|${to}`;

export class RecordStore {
  catalog: Record<ObjectName, Map<string, PropertyDefinition>>;
  records: Record<ObjectName, Map<string, StoredRecord>>;
  /** `object|oldId` → current id, for merged records. */
  private aliases = new Map<string, string>();
  /** `object|property` → value → id, for `hasUniqueValue` properties (and additional emails). */
  private unique = new Map<string, Map<string, string>>();
  /** `from|fromId|to` → toId → set of `CATEGORY:typeId`. */
  private assoc = new Map<string, Map<string, Set<string>>>();
  private nextId = 1001;
  /** Records written through the API, per object (`/_sandbox/stats`). */
  written: Record<string, number> = {};

  /** Bumped on every change; lets search reuse a sorted result set across pages. */
  version = 0;
  private readonly emit: (event: ChangeEvent) => void;

  constructor(
    emit: (event: ChangeEvent) => void,
    private readonly clock: () => number = Date.now,
  ) {
    this.emit = (event) => {
      this.version++;
      emit(event);
    };
    this.catalog = defaultCatalog(new Date(clock()).toISOString());
    this.records = { contacts: new Map(), companies: new Map(), deals: new Map() };
  }

  reset(): void {
    this.version++;
    this.catalog = defaultCatalog(new Date(this.clock()).toISOString());
    this.records = { contacts: new Map(), companies: new Map(), deals: new Map() };
    this.aliases.clear();
    this.unique.clear();
    this.assoc.clear();
    this.written = {};
    this.nextId = 1001;
  }

  /** Current id for `id`, following merges; the record when it exists (archived included). */
  resolve(object: ObjectName, id: string): StoredRecord | undefined {
    let current = id;
    for (let hops = 0; hops < 10; hops++) {
      const moved = this.aliases.get(`${object}|${current}`);
      if (moved === undefined) break;
      current = moved;
    }
    return this.records[object].get(current);
  }

  /** Live (not archived) record by a unique property value, or by id when `property` is `hs_object_id`. */
  findByUnique(object: ObjectName, property: string, value: string): StoredRecord | undefined {
    if (property === 'hs_object_id') {
      const r = this.resolve(object, value);
      return r && !r.archived ? r : undefined;
    }
    const id = this.unique.get(`${object}|${property}`)?.get(value.toLowerCase());
    return id === undefined ? undefined : this.records[object].get(id);
  }

  isUnique(object: ObjectName, property: string): boolean {
    return this.catalog[object].get(property)?.hasUniqueValue === true;
  }

  /** Validates and normalises a property bag; issues list every bad property. */
  validate(object: ObjectName, properties: Record<string, unknown>): { values: Record<string, string | null>; issues: PropertyIssue[] } {
    const values: Record<string, string | null> = {};
    const issues: PropertyIssue[] = [];
    const catalog = this.catalog[object];
    for (const [name, raw] of Object.entries(properties)) {
      const r = normaliseValue(catalog.get(name), name, raw);
      if ('issue' in r) issues.push(r.issue);
      else values[name] = r.value;
    }
    return { values, issues };
  }

  create(object: ObjectName, properties: Record<string, unknown>, source: ChangeSource): WriteResult {
    const { values, issues } = this.validate(object, properties);
    if (issues.length > 0) return { ok: false, kind: 'validation', issues };
    const conflict = this.uniqueConflict(object, values, null);
    if (conflict) return conflict;
    const now = this.clock();
    const id = String(this.nextId++);
    const record: StoredRecord = { id, object, props: {}, history: {}, createdAt: now, updatedAt: now, archived: false };
    this.records[object].set(id, record);
    this.setCalculated(record, now, true);
    this.emit({ subscriptionType: `${SINGULAR[object]}.creation`, objectId: Number(id), occurredAt: now, changeFlag: 'NEW', ...source });
    this.applyValues(record, values, source, now);
    this.countWrite(object);
    return { ok: true, record, created: true };
  }

  update(object: ObjectName, id: string, properties: Record<string, unknown>, source: ChangeSource): WriteResult {
    const record = this.resolve(object, id);
    if (!record || record.archived) return { ok: false, kind: 'not_found' };
    const { values, issues } = this.validate(object, properties);
    if (issues.length > 0) return { ok: false, kind: 'validation', issues };
    const conflict = this.uniqueConflict(object, values, record.id);
    if (conflict) return conflict;
    const now = Math.max(this.clock(), record.updatedAt);
    this.applyValues(record, values, source, now);
    this.countWrite(object);
    return { ok: true, record, created: false };
  }

  archive(object: ObjectName, id: string, source: ChangeSource): boolean {
    const record = this.resolve(object, id);
    if (!record || record.archived) return false;
    const now = this.clock();
    record.archived = true;
    record.archivedAt = now;
    record.updatedAt = now;
    for (const [name, value] of Object.entries(record.props)) if (value !== null) this.unindex(object, name, value, record.id);
    this.emit({ subscriptionType: `${SINGULAR[object]}.deletion`, objectId: Number(record.id), occurredAt: now, changeFlag: 'DELETED', ...source });
    this.countWrite(object);
    return true;
  }

  /**
   * Merges `mergeId` into `primaryId`. Contacts get a new id (HubSpot's contact merge creates the
   * merged record under a new id; both old ids resolve to it); companies and deals keep the
   * primary's id. Primary values win; empty primary properties take the merged record's value.
   */
  merge(object: ObjectName, primaryId: string, mergeId: string, source: ChangeSource): StoredRecord | null {
    const primary = this.resolve(object, primaryId);
    const merged = this.resolve(object, mergeId);
    if (!primary || !merged || primary.archived || merged.archived || primary.id === merged.id) return null;
    const now = Math.max(this.clock(), primary.updatedAt, merged.updatedAt);
    for (const rec of [primary, merged]) for (const [name, value] of Object.entries(rec.props)) if (value !== null) this.unindex(object, name, value, rec.id);
    const newId = object === 'contacts' ? String(this.nextId++) : primary.id;
    const survivor: StoredRecord = {
      id: newId,
      object,
      props: { ...primary.props },
      history: { ...merged.history, ...primary.history },
      createdAt: Math.min(primary.createdAt, merged.createdAt),
      updatedAt: now,
      archived: false,
    };
    let moved = 0;
    for (const [name, value] of Object.entries(merged.props)) {
      if ((survivor.props[name] === undefined || survivor.props[name] === null) && value !== null && !CALCULATED.has(name)) {
        survivor.props[name] = value;
        moved++;
      }
    }
    if (object === 'contacts') {
      const extra = [primary.props.hs_additional_emails, merged.props.hs_additional_emails, merged.props.email !== primary.props.email ? merged.props.email : null]
        .filter((v): v is string => typeof v === 'string' && v !== '')
        .join(';');
      if (extra !== '') survivor.props.hs_additional_emails = extra;
    }
    const ids = [primary.props.hs_merged_object_ids, merged.props.hs_merged_object_ids, primary.id !== newId ? primary.id : null, merged.id]
      .filter((v): v is string => typeof v === 'string' && v !== '')
      .join(';');
    survivor.props.hs_merged_object_ids = ids;
    this.records[object].delete(primary.id);
    this.records[object].delete(merged.id);
    this.records[object].set(newId, survivor);
    if (primary.id !== newId) this.aliases.set(`${object}|${primary.id}`, newId);
    this.aliases.set(`${object}|${merged.id}`, newId);
    this.setCalculated(survivor, now, false);
    for (const [name, value] of Object.entries(survivor.props)) if (value !== null) this.index(object, name, value, newId);
    this.moveAssociations(object, [primary.id, merged.id], newId);
    this.emit({
      subscriptionType: `${SINGULAR[object]}.merge`,
      objectId: Number(newId),
      occurredAt: now,
      primaryObjectId: Number(primary.id),
      mergedObjectIds: [Number(merged.id)],
      newObjectId: Number(newId),
      numberOfPropertiesMoved: moved,
      ...source,
    });
    this.countWrite(object);
    return survivor;
  }

  // ---- associations ----

  /** Adds association types from→to (and the inverse types to→from). Returns false when a record is missing. */
  associate(from: ObjectName, fromId: string, to: ObjectName, toId: string, types: AssociationType[], source: ChangeSource): boolean {
    const a = this.resolve(from, fromId);
    const b = this.resolve(to, toId);
    if (!a || !b || a.archived || b.archived) return false;
    const now = this.clock();
    for (const t of types) {
      const info = TYPE_INFO.get(t.typeId);
      const inverse = info?.inverse ?? t.typeId;
      const added = this.addEdge(from, a.id, to, b.id, `${t.category}:${t.typeId}`);
      this.addEdge(to, b.id, from, a.id, `${t.category}:${inverse}`);
      if (added) this.emitAssociation(from, a.id, to, b.id, false, info?.label === 'Primary', now, source);
    }
    return true;
  }

  /** Removes all association types between two records (or only `types`). */
  unassociate(from: ObjectName, fromId: string, to: ObjectName, toId: string, source: ChangeSource, types?: AssociationType[]): boolean {
    const a = this.resolve(from, fromId);
    const b = this.resolve(to, toId);
    if (!a || !b) return false;
    const fwd = this.assoc.get(assocKey(from, a.id, to))?.get(b.id);
    if (!fwd || fwd.size === 0) return true;
    const remove = types ? types.map((t) => `${t.category}:${t.typeId}`) : [...fwd];
    const back = this.assoc.get(assocKey(to, b.id, from))?.get(a.id);
    for (const key of remove) {
      if (!fwd.delete(key)) continue;
      const typeId = Number(key.split(':')[1]);
      const inverse = TYPE_INFO.get(typeId)?.inverse ?? typeId;
      back?.delete(`${key.split(':')[0] ?? ''}:${inverse}`);
    }
    if (fwd.size === 0) this.assoc.get(assocKey(from, a.id, to))?.delete(b.id);
    if (back && back.size === 0) this.assoc.get(assocKey(to, b.id, from))?.delete(a.id);
    this.emitAssociation(from, a.id, to, b.id, true, false, this.clock(), source);
    return true;
  }

  /** Associations of one record to an object type: toId → types. */
  associationsOf(from: ObjectName, fromId: string, to: ObjectName): [string, AssociationType[]][] {
    const rec = this.resolve(from, fromId);
    if (!rec) return [];
    const edges = this.assoc.get(assocKey(from, rec.id, to));
    if (!edges) return [];
    return [...edges.entries()]
      .filter(([, set]) => set.size > 0)
      .sort((x, y) => Number(x[0]) - Number(y[0]))
      .map(([toId, set]) => [
        toId,
        [...set].map((k) => {
          const [category, typeId] = k.split(':');
          return { category: (category ?? 'HUBSPOT_DEFINED') as AssociationType['category'], typeId: Number(typeId) };
        }),
      ]);
  }

  // ---- persistence ----

  snapshot(): StoreSnapshot {
    const records: StoredRecord[] = [];
    for (const object of OBJECT_NAMES) records.push(...this.records[object].values());
    const associations: [string, string[]][] = [];
    for (const [key, edges] of this.assoc) for (const [toId, set] of edges) associations.push([`${key}|${toId}`, [...set]]);
    const customProperties: StoreSnapshot['customProperties'] = [];
    for (const object of OBJECT_NAMES) for (const def of this.catalog[object].values()) if (!def.hubspotDefined) customProperties.push({ object, def });
    return { nextId: this.nextId, records, aliases: [...this.aliases], associations, customProperties };
  }

  restore(state: StoreSnapshot): void {
    this.reset();
    this.nextId = state.nextId;
    for (const { object, def } of state.customProperties) this.catalog[object].set(def.name, def);
    for (const r of state.records) {
      this.records[r.object].set(r.id, r);
      if (!r.archived) for (const [name, value] of Object.entries(r.props)) if (value !== null) this.index(r.object, name, value, r.id);
    }
    for (const [k, v] of state.aliases) this.aliases.set(k, v);
    for (const [key, types] of state.associations) {
      const [from, fromId, to, toId] = key.split('|');
      for (const t of types) this.addEdge(from as ObjectName, fromId ?? '', to as ObjectName, toId ?? '', t);
    }
  }

  // ---- internals ----

  private countWrite(object: ObjectName): void {
    this.written[object] = (this.written[object] ?? 0) + 1;
  }

  private uniqueConflict(object: ObjectName, values: Record<string, string | null>, selfId: string | null): WriteResult | null {
    for (const [name, value] of Object.entries(values)) {
      if (value === null || !this.isUnique(object, name)) continue;
      const existing = this.unique.get(`${object}|${name}`)?.get(value.toLowerCase());
      if (existing !== undefined && existing !== selfId) return { ok: false, kind: 'conflict', existingId: existing, property: name };
    }
    return null;
  }

  private applyValues(record: StoredRecord, values: Record<string, string | null>, source: ChangeSource, now: number): void {
    let changed = false;
    for (const [name, value] of Object.entries(values)) {
      const old = record.props[name] ?? null;
      if (old === value) continue;
      changed = true;
      if (old !== null) this.unindex(record.object, name, old, record.id);
      record.props[name] = value;
      if (value !== null) this.index(record.object, name, value, record.id);
      const entry: HistoryEntry = { value: value ?? '', timestamp: new Date(now).toISOString(), sourceType: source.changeSource, sourceId: source.sourceId };
      (record.history[name] ??= []).unshift(entry);
      this.emit({
        subscriptionType: `${SINGULAR[record.object]}.propertyChange`,
        objectId: Number(record.id),
        occurredAt: now,
        propertyName: name,
        propertyValue: value ?? '',
        ...source,
      });
    }
    if (changed) {
      record.updatedAt = now;
      this.setCalculated(record, now, false);
    }
  }

  private setCalculated(record: StoredRecord, now: number, creating: boolean): void {
    const iso = new Date(now).toISOString();
    if (creating) record.props.createdate = new Date(record.createdAt).toISOString();
    record.props.hs_object_id = record.id;
    record.props.hs_lastmodifieddate = iso;
    if (record.object === 'contacts') record.props.lastmodifieddate = iso;
  }

  private index(object: ObjectName, name: string, value: string, id: string): void {
    if (name === 'hs_additional_emails') {
      for (const email of value.split(';')) this.index(object, 'email', email, id);
      return;
    }
    if (!this.isUnique(object, name) || name === 'hs_object_id') return;
    const key = `${object}|${name}`;
    let map = this.unique.get(key);
    if (!map) this.unique.set(key, (map = new Map<string, string>()));
    map.set(value.toLowerCase(), id);
  }

  private unindex(object: ObjectName, name: string, value: string, id: string): void {
    if (name === 'hs_additional_emails') {
      for (const email of value.split(';')) this.unindex(object, 'email', email, id);
      return;
    }
    const map = this.unique.get(`${object}|${name}`);
    if (map?.get(value.toLowerCase()) === id) map.delete(value.toLowerCase());
  }

  private addEdge(from: ObjectName, fromId: string, to: ObjectName, toId: string, type: string): boolean {
    const key = assocKey(from, fromId, to);
    let edges = this.assoc.get(key);
    if (!edges) this.assoc.set(key, (edges = new Map<string, Set<string>>()));
    let set = edges.get(toId);
    if (!set) edges.set(toId, (set = new Set<string>()));
    if (set.has(type)) return false;
    set.add(type);
    return true;
  }

  private moveAssociations(object: ObjectName, oldIds: string[], newId: string): void {
    for (const to of OBJECT_NAMES) {
      for (const oldId of oldIds) {
        if (oldId === newId) continue;
        const edges = this.assoc.get(assocKey(object, oldId, to));
        if (!edges) continue;
        this.assoc.delete(assocKey(object, oldId, to));
        for (const [toId, set] of edges) {
          for (const t of set) this.addEdge(object, newId, to, toId, t);
          const back = this.assoc.get(assocKey(to, toId, object));
          const backSet = back?.get(oldId);
          if (back && backSet) {
            back.delete(oldId);
            for (const t of backSet) this.addEdge(to, toId, object, newId, t);
          }
        }
      }
    }
  }

  private emitAssociation(from: ObjectName, fromId: string, to: ObjectName, toId: string, removed: boolean, primary: boolean, now: number, source: ChangeSource): void {
    const type = `${SINGULAR[from].toUpperCase()}_TO_${SINGULAR[to].toUpperCase()}`;
    const base = { occurredAt: now, associationRemoved: removed, isPrimaryAssociation: primary, ...source };
    this.emit({ subscriptionType: `${SINGULAR[from]}.associationChange`, objectId: Number(fromId), associationType: type, fromObjectId: Number(fromId), toObjectId: Number(toId), ...base });
    const back = `${SINGULAR[to].toUpperCase()}_TO_${SINGULAR[from].toUpperCase()}`;
    this.emit({ subscriptionType: `${SINGULAR[to]}.associationChange`, objectId: Number(toId), associationType: back, fromObjectId: Number(toId), toObjectId: Number(fromId), ...base });
  }
}
