/**
 * Evaluates a HubSpot CRM search request (`PublicObjectSearchRequest`) against the sandbox's
 * records: filter groups OR-ed, filters within a group AND-ed, the operators of HubSpot's search
 * guide, one sort in either form (`"prop"`/`"-prop"` strings as the SDK types them, or
 * `{propertyName, direction}` objects as the guide shows), offset paging through `after`.
 */
import { z } from 'zod';
import { comparable, type PropertyDefinition } from './property-catalog.ts';
import type { StoredRecord } from './record-store.ts';

export const OPERATORS = ['EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'IN', 'NOT_IN', 'HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN'] as const;

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const filterSchema = z.object({
  propertyName: z.string(),
  operator: z.enum(OPERATORS),
  value: scalar.optional(),
  highValue: scalar.optional(),
  values: z.array(scalar).optional(),
});
export type SearchFilter = z.infer<typeof filterSchema>;

const sortSchema = z.union([
  z.string(),
  z.object({ propertyName: z.string(), direction: z.enum(['ASCENDING', 'DESCENDING']).optional() }),
]);

export const searchRequestSchema = z.object({
  filterGroups: z.array(z.object({ filters: z.array(filterSchema) })).optional(),
  sorts: z.array(sortSchema).optional(),
  properties: z.array(z.string()).optional(),
  limit: z.number().int().optional(),
  after: z.union([z.string(), z.number()]).optional(),
  query: z.string().optional(),
});
export type SearchRequest = z.infer<typeof searchRequestSchema>;

/** HubSpot search limits (search guide; changelog 2024-08-26 "Expanded filtering"). */
export const SEARCH_LIMITS = { maxLimit: 200, maxResults: 10_000, maxGroups: 5, maxFiltersPerGroup: 10, maxFilters: 25 } as const;

function tokens(value: string): string[] {
  return value.toLowerCase().split(/[^a-z0-9@._*-]+/).filter((t) => t !== '');
}

function tokenMatch(haystack: string, needle: string): boolean {
  const n = needle.toLowerCase();
  const parts = [...tokens(haystack), haystack.toLowerCase()];
  if (n.includes('*')) {
    const re = new RegExp(`^${n.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return parts.some((t) => re.test(t));
  }
  return parts.includes(n);
}

function valueOf(record: StoredRecord, name: string): string | null {
  if (name === 'hs_object_id') return record.id;
  const v = record.props[name];
  return v === undefined ? null : v;
}

function matches(record: StoredRecord, f: SearchFilter, defs: Map<string, PropertyDefinition>): boolean {
  const def = defs.get(f.propertyName);
  const raw = valueOf(record, f.propertyName);
  switch (f.operator) {
    case 'HAS_PROPERTY':
      return raw !== null && raw !== '';
    case 'NOT_HAS_PROPERTY':
      return raw === null || raw === '';
    default:
      break;
  }
  if (f.operator === 'NEQ' || f.operator === 'NOT_IN' || f.operator === 'NOT_CONTAINS_TOKEN') {
    if (raw === null) return true;
  } else if (raw === null) return false;
  const v = comparable(def, raw ?? '');
  const c = (x: string | undefined): number | string => comparable(def, x ?? '');
  const multi = def?.fieldType === 'checkbox' ? (raw ?? '').toLowerCase().split(';') : null;
  switch (f.operator) {
    case 'EQ':
      return multi ? multi.includes((f.value ?? '').toLowerCase()) : v === c(f.value);
    case 'NEQ':
      return multi ? !multi.includes((f.value ?? '').toLowerCase()) : v !== c(f.value);
    case 'LT':
      return v < c(f.value);
    case 'LTE':
      return v <= c(f.value);
    case 'GT':
      return v > c(f.value);
    case 'GTE':
      return v >= c(f.value);
    case 'BETWEEN':
      return v >= c(f.value) && v <= c(f.highValue);
    case 'IN':
      return (f.values ?? []).some((x) => (multi ? multi.includes(x.toLowerCase()) : c(x) === v));
    case 'NOT_IN':
      return !(f.values ?? []).some((x) => (multi ? multi.includes(x.toLowerCase()) : c(x) === v));
    case 'CONTAINS_TOKEN':
      return tokenMatch(raw ?? '', f.value ?? '');
    case 'NOT_CONTAINS_TOKEN':
      return !tokenMatch(raw ?? '', f.value ?? '');
    default:
      return false;
  }
}

/** Properties the default-text `query` searches (HubSpot search guide, "Search default searchable properties"). */
const QUERY_PROPS = ['email', 'firstname', 'lastname', 'phone', 'company', 'name', 'domain', 'dealname', 'hs_additional_emails'];

/** Matching live records, sorted, before paging. */
export function runSearch(records: Iterable<StoredRecord>, request: SearchRequest, defs: Map<string, PropertyDefinition>): StoredRecord[] {
  const groups = request.filterGroups ?? [];
  const query = request.query?.trim().toLowerCase();
  const out: StoredRecord[] = [];
  for (const r of records) {
    if (r.archived) continue;
    if (groups.length > 0 && !groups.some((g) => g.filters.every((f) => matches(r, f, defs)))) continue;
    if (query && !QUERY_PROPS.some((p) => (valueOf(r, p) ?? '').toLowerCase().includes(query))) continue;
    out.push(r);
  }
  const first = request.sorts?.[0];
  let prop = 'hs_object_id';
  let dir = 1;
  if (typeof first === 'string') {
    prop = first.startsWith('-') ? first.slice(1) : first;
    dir = first.startsWith('-') ? -1 : 1;
  } else if (first) {
    prop = first.propertyName;
    dir = first.direction === 'DESCENDING' ? -1 : 1;
  }
  const def = defs.get(prop);
  const keyed = out.map((r) => {
    const raw = valueOf(r, prop);
    return { r, k: raw === null ? null : comparable(def, raw), id: Number(r.id) };
  });
  keyed.sort((a, b) => {
    if (a.k !== b.k) {
      if (a.k === null) return 1;
      if (b.k === null) return -1;
      return (a.k < b.k ? -1 : 1) * dir;
    }
    return a.id - b.id;
  });
  return keyed.map((x) => x.r);
}
