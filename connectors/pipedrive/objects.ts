/**
 * Pipedrive records ↔ crmhub field values. Mapping files name standard fields by a flat name
 * (`email`, `phone`, `first_name`, `title`, `stage_id`, …) and custom fields by their Pipedrive NAME
 * ("Plan"); values of enum/set custom fields travel as option labels (`pro`, `trial_users,at_risk`).
 *
 * v2 quirks handled here (crm-reference §3.1–3.3): persons take only `name` on writes (first and
 * last names are derived), `emails`/`phones` are whole arrays (writing the primary email must keep
 * the others), custom fields live in `custom_fields` keyed by 40-character hash with enum values as
 * option ids, `set` fields are cleared with `null` (not `[]`), and numbers must be JSON numbers.
 */
import { createHash } from 'node:crypto';
import type { FieldValues, JsonValue } from '../../src/core/types.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { RemoteField } from '../../src/connector-kit/connector.ts';
import type { FieldDef, PipedriveEntity, V2Record } from './client.ts';
import type { FieldCatalogue, FieldResolver } from './field-resolver.ts';
import { OBJECT_BY_ENTITY } from './declaration.ts';

/** Pipedrive's custom field keys: 40 lowercase hex characters. */
export const CUSTOM_KEY = /^[0-9a-f]{40}$/;

type Kind = 'string' | 'number' | 'integer' | 'date' | 'datetime' | 'strings' | 'json';

/** Standard fields by flat name: value kind and whether writes may set them. */
const STANDARD: Record<PipedriveEntity, Record<string, { kind: Kind; writable: boolean }>> = {
  person: {
    name: { kind: 'string', writable: true },
    first_name: { kind: 'string', writable: true },
    last_name: { kind: 'string', writable: true },
    email: { kind: 'string', writable: true },
    emails: { kind: 'strings', writable: true },
    phone: { kind: 'string', writable: true },
    phones: { kind: 'strings', writable: true },
    org_id: { kind: 'integer', writable: true },
    owner_id: { kind: 'integer', writable: true },
    visible_to: { kind: 'integer', writable: true },
    label_ids: { kind: 'json', writable: true },
    job_title: { kind: 'string', writable: true },
    add_time: { kind: 'datetime', writable: false },
    update_time: { kind: 'datetime', writable: false },
  },
  organization: {
    name: { kind: 'string', writable: true },
    owner_id: { kind: 'integer', writable: true },
    website: { kind: 'string', writable: true },
    linkedin: { kind: 'string', writable: true },
    industry: { kind: 'integer', writable: true },
    employee_count: { kind: 'integer', writable: true },
    annual_revenue: { kind: 'integer', writable: true },
    address: { kind: 'json', writable: true },
    visible_to: { kind: 'integer', writable: true },
    label_ids: { kind: 'json', writable: true },
    add_time: { kind: 'datetime', writable: false },
    update_time: { kind: 'datetime', writable: false },
  },
  deal: {
    title: { kind: 'string', writable: true },
    value: { kind: 'number', writable: true },
    currency: { kind: 'string', writable: true },
    status: { kind: 'string', writable: true },
    stage_id: { kind: 'integer', writable: true },
    pipeline_id: { kind: 'integer', writable: true },
    owner_id: { kind: 'integer', writable: true },
    person_id: { kind: 'integer', writable: true },
    org_id: { kind: 'integer', writable: true },
    expected_close_date: { kind: 'date', writable: true },
    probability: { kind: 'number', writable: true },
    lost_reason: { kind: 'string', writable: true },
    visible_to: { kind: 'integer', writable: true },
    label_ids: { kind: 'json', writable: true },
    won_time: { kind: 'datetime', writable: false },
    lost_time: { kind: 'datetime', writable: false },
    close_time: { kind: 'datetime', writable: false },
    add_time: { kind: 'datetime', writable: false },
    update_time: { kind: 'datetime', writable: false },
  },
};

export function isStandardField(entity: PipedriveEntity, name: string): boolean {
  return name in STANDARD[entity];
}

/** What the connector remembers of a person between calls to keep multi-value writes whole. */
export interface ContactMemo {
  first_name?: string;
  last_name?: string;
  emails?: { value: string; primary: boolean; label: string }[];
  phones?: { value: string; primary: boolean; label: string }[];
}

function contactList(raw: unknown): { value: string; primary: boolean; label: string }[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((c) => {
    if (typeof c === 'string') return [{ value: c, primary: false, label: 'work' }];
    if (c && typeof c === 'object' && typeof (c as { value?: unknown }).value === 'string') {
      const o = c as { value: string; primary?: unknown; label?: unknown };
      return [{ value: o.value, primary: o.primary === true, label: typeof o.label === 'string' ? o.label : 'work' }];
    }
    return [];
  });
}

function primaryOf(list: { value: string; primary: boolean }[]): string | null {
  return (list.find((c) => c.primary) ?? list[0])?.value ?? null;
}

export function memoOf(record: V2Record): ContactMemo {
  const r = record as Record<string, unknown>;
  return {
    ...(typeof r['first_name'] === 'string' ? { first_name: r['first_name'] } : {}),
    ...(typeof r['last_name'] === 'string' ? { last_name: r['last_name'] } : {}),
    emails: contactList(r['emails']),
    phones: contactList(r['phones']),
  };
}

/** A short content hash of a record: tells a same-second change from a re-read (cursor ties). */
export function recordHash(record: V2Record): string {
  return createHash('sha1').update(JSON.stringify(record)).digest('hex').slice(0, 12);
}

function toJson(value: unknown): JsonValue {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

/** Decodes a custom field value (plain, webhook `{type, value}`, or `{id, label}`) into labels. */
export function decodeCustom(def: FieldDef | undefined, raw: unknown): JsonValue {
  let value = raw;
  if (value && typeof value === 'object' && !Array.isArray(value) && 'value' in value && 'type' in value) value = (value as { value: unknown }).value;
  if (value === null || value === undefined) return null;
  if (!def) return toJson(value);
  const label = (v: unknown): string | null => {
    if (v && typeof v === 'object' && 'label' in v) return String((v).label);
    const id = typeof v === 'string' ? Number(v) : v;
    return def.options?.find((o) => Number(o.id) === id)?.label ?? (typeof v === 'string' || typeof v === 'number' ? String(v) : null);
  };
  if (def.field_type === 'enum') return label(value);
  if (def.field_type === 'set') {
    const items = Array.isArray(value) ? value : String(value as string | number).split(',').filter((s) => s !== '');
    const labels = items.map(label).filter((s): s is string => s !== null);
    return labels.length > 0 ? labels.join(',') : null;
  }
  if (def.field_type === 'monetary' && typeof value === 'object' && 'value' in value) return toJson((value).value);
  return toJson(value);
}

/** A v2 record (or a webhook's `data`) as flat crmhub field values; custom fields by name. */
export function toFields(entity: PipedriveEntity, record: Record<string, unknown>, catalogue: FieldCatalogue | undefined): FieldValues {
  const out: FieldValues = {};
  for (const name of Object.keys(STANDARD[entity])) {
    if (name === 'email' || name === 'emails' || name === 'phone' || name === 'phones') continue;
    if (name in record) out[name] = toJson(record[name]);
  }
  if (entity === 'person') {
    if ('emails' in record) {
      const emails = contactList(record['emails']);
      out['email'] = primaryOf(emails);
      out['emails'] = emails.map((e) => e.value);
    }
    if ('phones' in record) {
      const phones = contactList(record['phones']);
      out['phone'] = primaryOf(phones);
      out['phones'] = phones.map((p) => p.value);
    }
  }
  const custom = record['custom_fields'];
  if (custom && typeof custom === 'object') {
    for (const [key, raw] of Object.entries(custom as Record<string, unknown>)) {
      const def = catalogue?.byKey.get(key);
      if (!def) continue; // a key we cannot name (deleted since) is not mappable
      out[def.field_name] = decodeCustom(def, raw);
    }
  }
  return out;
}

function payloadError(entity: PipedriveEntity, field: string, message: string): CrmhubError {
  return new CrmhubError('payload', `Pipedrive ${OBJECT_BY_ENTITY[entity]}.${field}: ${message}`, {
    code: 'PIPEDRIVE_INVALID_VALUE',
    context: { connector: 'pipedrive', object: OBJECT_BY_ENTITY[entity], field },
  });
}

function asNumber(entity: PipedriveEntity, field: string, value: JsonValue, integer: boolean): number | null {
  if (value === null || value === '') return null;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw payloadError(entity, field, `expected ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(value)}`);
  return n;
}

function asString(value: JsonValue): string | null {
  if (value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function splitList(value: JsonValue): string[] {
  if (value === null) return [];
  if (Array.isArray(value)) return value.map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v))).filter((s) => s !== '' && s !== 'null');
  return String(value as string | number | boolean)
    .split(/[;,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Encodes one custom field value for a v2 write (enum/set labels → option ids). */
export function encodeCustom(entity: PipedriveEntity, def: FieldDef, value: JsonValue): unknown {
  const optionId = (label: string): number => {
    const exact = def.options?.find((o) => o.label === label) ?? def.options?.find((o) => o.label.toLowerCase() === label.toLowerCase()) ?? def.options?.find((o) => String(o.id) === label);
    if (!exact) throw payloadError(entity, def.field_name, `"${label}" is not an option (${(def.options ?? []).map((o) => o.label).join(', ')})`);
    return Number(exact.id);
  };
  switch (def.field_type) {
    case 'enum': {
      const s = asString(value);
      return s === null || s === '' ? null : optionId(s);
    }
    case 'set': {
      const ids = splitList(value).map(optionId);
      return ids.length > 0 ? ids : null; // v2 clears a set with null, not [] (migration guide)
    }
    case 'double':
      return asNumber(entity, def.field_name, value, false);
    case 'int':
    case 'user':
    case 'org':
    case 'people':
      return asNumber(entity, def.field_name, value, true);
    case 'monetary': {
      const n = asNumber(entity, def.field_name, value, false);
      return n === null ? null : { value: n, currency: 'USD' };
    }
    case 'date': {
      const s = asString(value);
      return s === null || s === '' ? null : s.slice(0, 10);
    }
    default: {
      const s = asString(value);
      return s === '' ? null : s;
    }
  }
}

/**
 * A v2 write body from flat field values. `memo` is what is known of the current person (names,
 * emails, phones) so that a partial change keeps the rest; null when nothing is known (a create).
 */
export async function toWriteBody(
  entity: PipedriveEntity,
  fields: FieldValues,
  resolver: FieldResolver,
  memo: ContactMemo | null,
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  const std = STANDARD[entity];
  for (const [name, value] of Object.entries(fields)) {
    const spec = std[name];
    if (spec) {
      if (!spec.writable) continue;
      if (entity === 'person' && ['name', 'first_name', 'last_name', 'email', 'emails', 'phone', 'phones'].includes(name)) continue;
      if (spec.kind === 'integer' || spec.kind === 'number') body[name] = asNumber(entity, name, value, spec.kind === 'integer');
      else if (spec.kind === 'date') body[name] = typeof value === 'string' && value !== '' ? value.slice(0, 10) : null;
      else if (spec.kind === 'string') body[name] = asString(value);
      else body[name] = value;
      continue;
    }
    // Custom fields by name ("Plan"), or by key when the mapping was resolved against describe().
    const def = CUSTOM_KEY.test(name) ? await resolver.customByKey(entity, name) : await resolver.customField(entity, name);
    custom[def.field_code] = encodeCustom(entity, def, value);
  }
  if (entity === 'person') personParts(fields, memo, body);
  if (Object.keys(custom).length > 0) body['custom_fields'] = custom;
  return body;
}

/** Names and multi-value contacts of a person write. */
function personParts(fields: FieldValues, memo: ContactMemo | null, body: Record<string, unknown>): void {
  if ('name' in fields && typeof fields['name'] === 'string' && fields['name'].trim() !== '') body['name'] = fields['name'].trim();
  else if ('first_name' in fields || 'last_name' in fields) {
    const first = 'first_name' in fields ? asString(fields['first_name']) : (memo?.first_name ?? null);
    const last = 'last_name' in fields ? asString(fields['last_name']) : (memo?.last_name ?? null);
    const name = [first, last].filter((s): s is string => typeof s === 'string' && s.trim() !== '').join(' ').trim();
    if (name !== '') body['name'] = name;
  }
  const contacts = (single: 'email' | 'phone', many: 'emails' | 'phones'): void => {
    if (!(single in fields) && !(many in fields)) return;
    let list = memo?.[many] ? memo[many].map((c) => ({ ...c })) : [];
    if (many in fields) {
      const values = splitList(fields[many] ?? null);
      list = values.map((v, i) => list.find((c) => c.value.toLowerCase() === v.toLowerCase()) ?? { value: v, primary: i === 0, label: 'work' });
    }
    if (single in fields) {
      const primary = asString(fields[single] ?? null);
      const old = primaryOf(list);
      list = list.filter((c) => c.value.toLowerCase() !== primary?.toLowerCase() && c.value !== old);
      list = (primary ? [{ value: primary, primary: true, label: 'work' }] : []).concat(list.map((c) => ({ ...c, primary: false })));
    }
    list = list.map((c, i) => ({ ...c, primary: i === 0 }));
    body[many] = list;
  };
  contacts('email', 'emails');
  contacts('phone', 'phones');
}

/** The object's fields for `describe()`: standard by flat name, custom by 40-character key. */
export function describeFields(entity: PipedriveEntity, catalogue: FieldCatalogue): RemoteField[] {
  const out: RemoteField[] = Object.entries(STANDARD[entity]).map(([name, spec]) => ({
    name,
    label: name,
    type: spec.kind === 'integer' || spec.kind === 'number' ? 'number' : spec.kind === 'strings' ? 'set' : spec.kind === 'json' ? 'other' : spec.kind,
    readOnly: !spec.writable,
    unique: false,
    required: name === 'name' || name === 'title',
    custom: false,
  }));
  for (const def of catalogue.defs) {
    if (!def.is_custom_field) continue;
    const type: RemoteField['type'] =
      def.field_type === 'enum' ? 'enum' : def.field_type === 'set' ? 'set' : ['double', 'int', 'monetary'].includes(def.field_type) ? 'number' : def.field_type === 'date' ? 'date' : ['user', 'org', 'people'].includes(def.field_type) ? 'reference' : ['varchar', 'text', 'varchar_auto', 'phone'].includes(def.field_type) ? 'string' : 'other';
    out.push({
      name: def.field_code,
      label: def.field_name,
      type,
      readOnly: false,
      unique: false,
      required: false,
      custom: true,
      ...(def.options ? { options: def.options.map((o) => ({ value: o.label, label: o.label })) } : {}),
    });
  }
  return out;
}
