/**
 * Value formats of the REST API: datetimes as `2024-05-02T11:22:33.000+0000`, dates as
 * `YYYY-MM-DD`, and the per-field checks Salesforce applies on write with its error codes
 * (`STRING_TOO_LONG`, `INVALID_EMAIL_ADDRESS`, `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`, …,
 * REST API Developer Guide "Status Codes and Error Responses" and the SOAP `StatusCode` enum).
 */
import type { SfFieldDef } from './schema.ts';
import { normalizeId } from './ids.ts';

export type SfValue = string | number | boolean | null;
export type SfRecord = Record<string, SfValue>;

/** One item of a save result's `errors` (collections use `statusCode`; REST bodies use `errorCode`). */
export interface SfSaveError {
  statusCode: string;
  message: string;
  fields: string[];
}

/** Salesforce's REST datetime format (always UTC, `+0000`). */
export function formatDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

/** Parses a REST/SOQL datetime (`Z`, `+hh:mm` or `+hhmm` offsets); NaN when malformed. */
export function parseDateTime(value: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})?$/.exec(value.trim());
  if (!m) return Number.NaN;
  let zone = m[3] ?? 'Z';
  if (zone !== 'Z' && !zone.includes(':')) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(`${m[1]}T${m[2]}${zone}`);
}

const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

export type Coerced = { ok: true; value: SfValue } | { ok: false; error: SfSaveError };

const fail = (statusCode: string, message: string, field: string): Coerced => ({
  ok: false,
  error: { statusCode, message, fields: [field] },
});

/** Text of an incoming value for messages and text fields (objects as JSON). */
export function show(raw: unknown): string {
  if (raw === null || raw === undefined) return '';
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return raw.toString();
  return JSON.stringify(raw) ?? '';
}

function asNumber(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return null;
}

/**
 * Checks and normalises one incoming value for a field. `null`, and `''` for text fields, mean
 * "no value" (Salesforce stores empty strings as null); required-ness is checked by the caller.
 */
export function coerceValue(field: SfFieldDef, raw: unknown, keyPrefixOf: (object: string) => string | undefined): Coerced {
  if (raw === null || raw === undefined) return { ok: true, value: null };
  const label = field.label;
  switch (field.type) {
    case 'string':
    case 'textarea':
    case 'phone':
    case 'url':
    case 'email':
    case 'picklist':
    case 'multipicklist': {
      if (typeof raw === 'object') return fail('JSON_PARSER_ERROR', `Cannot deserialize instance of string from START_OBJECT value for field ${field.name}`, field.name);
      let value = show(raw);
      if (value === '') return { ok: true, value: null };
      if (field.type === 'multipicklist') {
        const parts = value.split(';').map((p) => p.trim()).filter((p) => p !== '');
        if (field.restrictedPicklist && field.picklist) {
          const bad = parts.find((p) => !field.picklist?.includes(p));
          if (bad !== undefined) return fail('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${label}: bad value for restricted picklist field: ${bad}`, field.name);
        }
        value = [...new Set(parts)].join(';');
      } else if (field.type === 'picklist' && field.restrictedPicklist && field.picklist && !field.picklist.includes(value)) {
        return fail('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${label}: bad value for restricted picklist field: ${value}`, field.name);
      }
      if (field.type === 'email' && !EMAIL.test(value)) return fail('INVALID_EMAIL_ADDRESS', `${label}: invalid email address: ${value}`, field.name);
      if (field.length !== undefined && value.length > field.length) {
        return fail('STRING_TOO_LONG', `${label}: data value too large: ${value} (max length=${field.length})`, field.name);
      }
      return { ok: true, value };
    }
    case 'double':
    case 'int':
    case 'currency':
    case 'percent': {
      const n = asNumber(raw);
      if (n === null) return fail('INVALID_TYPE_ON_FIELD_IN_RECORD', `${label}: value not of required type: ${show(raw)}`, field.name);
      if (field.type === 'int' && !Number.isInteger(n)) return fail('INVALID_TYPE_ON_FIELD_IN_RECORD', `${label}: value not of required type: ${show(raw)}`, field.name);
      const scale = field.scale ?? 0;
      const rounded = Number(n.toFixed(scale));
      const integerDigits = (field.precision ?? 18) - scale;
      if (Math.abs(Math.trunc(rounded)) >= 10 ** integerDigits) {
        return fail('NUMBER_OUTSIDE_VALID_RANGE', `${label}: value outside of valid range on numeric field: ${show(raw)}`, field.name);
      }
      return { ok: true, value: rounded };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (raw === 'true' || raw === 'false') return { ok: true, value: raw === 'true' };
      return fail('INVALID_TYPE_ON_FIELD_IN_RECORD', `${label}: value not of required type: ${show(raw)}`, field.name);
    }
    case 'date': {
      const s = show(raw);
      const m = /^(\d{4}-\d{2}-\d{2})(?:T.*)?$/.exec(s);
      if (!m || Number.isNaN(Date.parse(`${m[1]}T00:00:00Z`))) {
        return fail('INVALID_TYPE_ON_FIELD_IN_RECORD', `${label}: value not of required type: ${s}`, field.name);
      }
      return { ok: true, value: m[1] ?? s };
    }
    case 'datetime': {
      const ms = typeof raw === 'number' ? raw : parseDateTime(show(raw));
      if (Number.isNaN(ms)) return fail('INVALID_TYPE_ON_FIELD_IN_RECORD', `${label}: value not of required type: ${show(raw)}`, field.name);
      return { ok: true, value: formatDateTime(ms) };
    }
    case 'id':
    case 'reference': {
      const s = show(raw);
      if (s === '') return { ok: true, value: null };
      const id = normalizeId(s);
      const prefix = field.referenceTo ? keyPrefixOf(field.referenceTo) : undefined;
      if (!id || (prefix !== undefined && !id.startsWith(prefix))) {
        return fail('MALFORMED_ID', `${label}: id value of incorrect type: ${s}`, field.name);
      }
      return { ok: true, value: id };
    }
  }
}

/** Rewrites ids and datetimes of a value for CSV/SOAP output (null stays null). */
export function valueToText(value: SfValue): string {
  if (value === null) return '';
  return typeof value === 'string' ? value : String(value);
}
