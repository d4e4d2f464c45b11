/**
 * Pure helpers for HubSpot objects: value conversion (HubSpot stores every property as a string;
 * multi-select checkboxes as ";"-joined values, HubSpot docs "Property field types"), the
 * incremental-read cursor, `SimplePublicObject` → `RemoteRecord`, and schema mapping
 * (`Property` → `RemoteField`).
 */
import { z } from 'zod';
import type { JsonValue } from '../../src/core/types.ts';
import type { RemoteField, RemoteRecord } from '../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { HsObject, HsProperty } from './client.ts';

/** A crmhub value as HubSpot takes it: strings; `""` clears; arrays become "a;b" (checkboxes). */
export function toHubSpotValue(value: JsonValue): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map((v) => (v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v))).filter((v) => v !== '').join(';');
  return JSON.stringify(value);
}

/** Search allows at most 10,000 results per query (HubSpot search guide, "Limitations"). */
export const SEARCH_RESULT_CAP = 10_000;
/** Largest search page (HubSpot search guide, raised to 200 in 2024). */
export const SEARCH_PAGE_MAX = 200;

/**
 * The incremental-read cursor. `anchor` is the `GTE` bound (ms) of the current search; `after` the
 * offset within it; `seen` the ids (with their modified ms) already returned at or after the
 * anchor, so re-reading that window (re-anchoring, or the look-back that covers HubSpot's
 * search-index lag) returns nothing twice. `phase` walks live records, then archived ones (deletes).
 */
export const cursorSchema = z.object({
  v: z.literal(1),
  anchor: z.number(),
  after: z.string().nullable(),
  maxTs: z.number(),
  seen: z.record(z.string(), z.number()),
  /** `seen` holds every id returned with a modified ms at or above this (older cursors: 0). */
  seenFrom: z.number().default(0),
  phase: z.enum(['live', 'archived']),
  archivedAfter: z.string().nullable(),
  archivedSince: z.number(),
  archivedMax: z.number(),
});
export type ReadCursor = z.infer<typeof cursorSchema>;

export function initialCursor(): ReadCursor {
  return { v: 1, anchor: 0, after: null, maxTs: 0, seen: {}, seenFrom: 0, phase: 'live', archivedAfter: null, archivedSince: 0, archivedMax: 0 };
}

export function encodeCursor(c: ReadCursor): string {
  return JSON.stringify(c);
}

export function decodeCursor(raw: string): ReadCursor {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) throw new CrmhubError('internal', 'HubSpot read cursor is not one this connector wrote', { code: 'HUBSPOT_BAD_CURSOR', context: { connector: 'hubspot' } });
  return parsed.data;
}

/** Most entries `seen` keeps; beyond it the oldest go (a re-read of those is harmless: the engine compares with its shadow). */
const SEEN_MAX = 2_000;

/**
 * Drops `seen` entries modified before `floor` (the next query's anchor). When more than SEEN_MAX
 * remain, whole timestamps are dropped from the oldest up and the returned floor rises above them:
 * a caller that has read everything up to now uses it as its next anchor, so the look-back window
 * never re-delivers more records than the cursor can remember. A caller in the middle of a read
 * ignores it (records at the anchor are still unread) and at worst re-reads a few, which is
 * harmless: the engine compares with its shadow.
 */
export function pruneSeen(c: ReadCursor, floor: number): number {
  let entries = Object.entries(c.seen).filter(([, ms]) => ms >= floor);
  let effectiveFloor = floor;
  if (entries.length > SEEN_MAX) {
    entries.sort((a, b) => b[1] - a[1]);
    const firstDropped = entries[SEEN_MAX]![1];
    entries = entries.filter(([, ms]) => ms > firstDropped);
    effectiveFloor = firstDropped + 1;
  }
  c.seen = Object.fromEntries(entries);
  c.seenFrom = effectiveFloor;
  return effectiveFloor;
}

export function modifiedMs(o: HsObject, modifiedProperty: string): number {
  const raw = o.properties[modifiedProperty];
  const ms = raw ? (/^\d+$/.test(raw) ? Number(raw) : Date.parse(raw)) : NaN;
  return Number.isFinite(ms) ? ms : Date.parse(o.updatedAt);
}

/** Ids this record absorbed by merges (`hs_merged_object_ids`, ";"-separated). */
export function mergedIds(o: HsObject): string[] {
  return (o.properties.hs_merged_object_ids ?? '').split(';').filter((id) => id !== '' && id !== o.id);
}

/**
 * `SimplePublicObject` → `RemoteRecord`. With `propertiesWithHistory`, each property's latest
 * change time becomes `fieldChangedAt`, and the latest change tells whether it was our own
 * write (`sourceType` INTEGRATION/API with our app id as `sourceId`).
 */
export function toRemoteRecord(object: string, o: HsObject, modifiedProperty: string, selfAppId?: string): RemoteRecord {
  const record: RemoteRecord = { object, id: o.id, fields: { ...o.properties }, modifiedAt: new Date(modifiedMs(o, modifiedProperty)).toISOString() };
  if (o.archived) {
    record.deleted = true;
    if (o.archivedAt) record.modifiedAt = o.archivedAt;
  }
  if (o.propertiesWithHistory) {
    const changed: Record<string, string> = {};
    let latest: { at: number; sourceType: string; sourceId?: string | undefined } | undefined;
    for (const [name, history] of Object.entries(o.propertiesWithHistory)) {
      const top = history[0];
      if (!top) continue;
      changed[name] = new Date(top.timestamp).toISOString();
      const at = Date.parse(top.timestamp);
      if (!latest || at > latest.at) latest = { at, sourceType: top.sourceType, sourceId: top.sourceId };
    }
    if (Object.keys(changed).length > 0) record.fieldChangedAt = changed;
    if (latest && selfAppId !== undefined) {
      record.origin = (latest.sourceType === 'INTEGRATION' || latest.sourceType === 'API') && latest.sourceId === selfAppId ? 'self' : 'other';
    }
  }
  return record;
}

function fieldType(p: HsProperty): RemoteField['type'] {
  switch (p.type) {
    case 'string':
    case 'phone_number':
      return 'string';
    case 'number':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'date':
      return 'date';
    case 'datetime':
      return 'datetime';
    case 'enumeration':
      return p.fieldType === 'checkbox' ? 'set' : p.fieldType === 'booleancheckbox' ? 'boolean' : 'enum';
    default:
      return 'other';
  }
}

/** `Property` → `RemoteField`: readOnly from `modificationMetadata.readOnlyValue` (or calculated), unique from `hasUniqueValue`. */
export function toRemoteField(p: HsProperty): RemoteField {
  const field: RemoteField = {
    name: p.name,
    label: p.label,
    type: fieldType(p),
    readOnly: p.modificationMetadata?.readOnlyValue === true || p.calculated === true,
    unique: p.hasUniqueValue === true,
    // HubSpot has no API-level required properties on contacts/companies/deals.
    required: false,
    custom: p.hubspotDefined !== true,
  };
  if (p.options && p.options.length > 0) field.options = p.options.map((o) => ({ value: o.value, label: o.label }));
  return field;
}
