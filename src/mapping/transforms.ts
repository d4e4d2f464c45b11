/**
 * Named transforms of mapping files (a closed list; no expressions). Each transform is total: it
 * returns a value, asks for the field to be dropped, or reports why the value cannot be used — it
 * never throws. Empty values (null, '', []) pass through untouched except for `static`.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import type { JsonValue } from '../core/types.ts';
import type { RemoteField } from '../connector-kit/connector.ts';
import type { TransformSpec } from './mapping-schema.ts';

export type TransformResult =
  { kind: 'ok'; value: JsonValue } | { kind: 'drop' } | { kind: 'error'; reason: string };

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Empty means "no value": null, undefined, blank string, empty array. */
export function isEmptyValue(value: JsonValue | undefined): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.length === 0;
  return false;
}

function ok(value: JsonValue): TransformResult {
  return { kind: 'ok', value };
}

function err(reason: string): TransformResult {
  return { kind: 'error', reason };
}

function asText(value: JsonValue): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

/** Parses ISO strings, `YYYY-MM-DD` (as UTC midnight) and epoch numbers (ms; ≤ 11 digits = seconds). */
export function parseInstant(value: JsonValue): number | null {
  if (typeof value === 'number')
    return Number.isFinite(value) ? (Math.abs(value) < 1e11 ? value * 1000 : value) : null;
  if (typeof value !== 'string') return null;
  const s = value.trim();
  if (/^-?\d+$/.test(s)) return parseInstant(Number(s));
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const t = Date.parse(`${s}T00:00:00Z`);
    return Number.isNaN(t) ? null : t;
  }
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}

function mapEnum(spec: Extract<TransformSpec, { enum: unknown }>['enum'], value: JsonValue): TransformResult {
  const text = asText(value);
  if (text === null) return err(`enum map needs a scalar, got ${JSON.stringify(value)}`);
  const wanted = text.toLowerCase();
  for (const [from, to] of Object.entries(spec.map)) {
    if (from.toLowerCase() === wanted) return ok(to);
  }
  switch (spec.unknown) {
    case 'pass':
      return ok(value);
    case 'drop':
      return { kind: 'drop' };
    case 'default':
      return ok(spec.default ?? null);
    case 'error':
      return err(`value ${JSON.stringify(text)} is not in the enum map`);
  }
}

function applyOne(spec: TransformSpec, value: JsonValue): TransformResult {
  if (typeof spec !== 'string' && 'static' in spec) return ok(spec.static);
  if (isEmptyValue(value)) return ok(Array.isArray(value) ? value : null);
  if (typeof spec === 'string') {
    switch (spec) {
      case 'email': {
        const text = asText(value)?.trim().toLowerCase();
        return text !== undefined && EMAIL_RE.test(text)
          ? ok(text)
          : err(`${JSON.stringify(value)} is not an email address`);
      }
      case 'phone_e164': {
        const text = asText(value);
        const phone = text === null ? undefined : parsePhoneNumberFromString(text);
        return phone?.isPossible()
          ? ok(phone.number)
          : err(`${JSON.stringify(value)} is not a phone number in international form`);
      }
      case 'trim':
      case 'lowercase':
      case 'uppercase': {
        const text = asText(value);
        if (text === null) return err(`${spec} needs text, got ${JSON.stringify(value)}`);
        return ok(
          spec === 'trim' ? text.trim() : spec === 'lowercase' ? text.toLowerCase() : text.toUpperCase(),
        );
      }
      case 'number':
      case 'integer': {
        const n =
          typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : Number.NaN;
        if (!Number.isFinite(n)) return err(`${JSON.stringify(value)} is not a number`);
        return ok(spec === 'integer' ? Math.round(n) : n);
      }
      case 'boolean': {
        const text = asText(value)?.trim().toLowerCase();
        if (text === 'true' || text === 'yes' || text === '1') return ok(true);
        if (text === 'false' || text === 'no' || text === '0') return ok(false);
        return err(`${JSON.stringify(value)} is not a boolean`);
      }
    }
  }
  if ('date' in spec || 'datetime' in spec) {
    const t = parseInstant(value);
    if (t === null) return err(`${JSON.stringify(value)} is not a date`);
    const iso = new Date(t).toISOString();
    if ('date' in spec) {
      const day = iso.slice(0, 10);
      return ok(spec.date === 'iso_date' ? day : Date.parse(`${day}T00:00:00Z`));
    }
    return ok(spec.datetime === 'iso' ? iso : spec.datetime === 'epoch_ms' ? t : Math.floor(t / 1000));
  }
  if ('enum' in spec) {
    if (!Array.isArray(value)) return mapEnum(spec.enum, value);
    // Multi-value fields map element by element; a dropped element leaves the others.
    const out: JsonValue[] = [];
    for (const item of value) {
      const r = mapEnum(spec.enum, item);
      if (r.kind === 'error') return r;
      if (r.kind === 'ok') out.push(r.value);
    }
    return ok(out);
  }
  if ('join' in spec) {
    if (!Array.isArray(value))
      return typeof value === 'string' ? ok(value) : err(`join needs a list, got ${JSON.stringify(value)}`);
    const parts = value.map(asText);
    if (parts.some((p) => p === null)) return err('join needs a list of scalars');
    return ok(parts.join(spec.join.separator));
  }
  if ('split' in spec) {
    if (Array.isArray(value)) return ok(value);
    const text = asText(value);
    if (text === null) return err(`split needs text, got ${JSON.stringify(value)}`);
    return ok(
      text
        .split(spec.split.separator)
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
  }
  return err('unknown transform');
}

/** Runs a transform chain in order; stops at the first drop or error. */
export function applyTransforms(chain: readonly TransformSpec[], value: JsonValue): TransformResult {
  let current: JsonValue = value;
  for (const spec of chain) {
    const r = applyOne(spec, current);
    if (r.kind !== 'ok') return r;
    current = r.value;
  }
  return ok(current);
}

/** Stable display name of a transform (`email`, `enum`, `date`, …), used in messages. */
export function transformName(spec: TransformSpec): string {
  return typeof spec === 'string' ? spec : (Object.keys(spec)[0] ?? 'unknown');
}

type RemoteType = RemoteField['type'];
const TEXTUAL: RemoteType[] = ['string', 'enum', 'set', 'reference', 'other'];

/** Remote field types a transform's OUTPUT may be written into (to_remote chains; last transform). */
const OUTPUT_FITS: Record<string, RemoteType[]> = {
  email: ['string', 'other'],
  phone_e164: ['string', 'other'],
  trim: TEXTUAL,
  lowercase: TEXTUAL,
  uppercase: TEXTUAL,
  number: ['number', 'string', 'enum', 'reference', 'other'],
  integer: ['number', 'string', 'enum', 'reference', 'other'],
  boolean: ['boolean', 'enum', 'other'],
  date: ['date', 'datetime', 'string', 'other'],
  datetime: ['datetime', 'number', 'string', 'other'],
  enum: ['string', 'enum', 'set', 'boolean', 'number', 'other'],
  join: ['string', 'set', 'other'],
  split: ['set', 'other'],
  static: ['string', 'number', 'boolean', 'date', 'datetime', 'enum', 'set', 'reference', 'other'],
};

/** Remote field types a transform may READ (to_profile chains; first transform). */
const INPUT_FITS: Record<string, RemoteType[]> = {
  email: ['string', 'other'],
  phone_e164: ['string', 'other'],
  trim: TEXTUAL,
  lowercase: TEXTUAL,
  uppercase: TEXTUAL,
  number: ['number', 'string', 'enum', 'other'],
  integer: ['number', 'string', 'enum', 'other'],
  boolean: ['boolean', 'string', 'enum', 'other'],
  date: ['date', 'datetime', 'string', 'number', 'other'],
  datetime: ['date', 'datetime', 'string', 'number', 'other'],
  enum: ['string', 'enum', 'set', 'boolean', 'number', 'reference', 'other'],
  join: ['set', 'other'],
  split: ['string', 'set', 'other'],
  static: ['string', 'number', 'boolean', 'date', 'datetime', 'enum', 'set', 'reference', 'other'],
};

/**
 * Whether a transform chain fits a remote field type: the last to_remote transform must produce
 * something the field stores; the first to_profile transform must read what the field holds.
 * Returns the offending transform's index, or -1 when it fits.
 */
export function misfitTransformIndex(
  chain: readonly TransformSpec[],
  direction: 'to_remote' | 'to_profile',
  type: RemoteType,
): number {
  if (chain.length === 0) return -1;
  const index = direction === 'to_remote' ? chain.length - 1 : 0;
  const spec = chain[index];
  if (spec === undefined) return -1;
  const fits = (direction === 'to_remote' ? OUTPUT_FITS : INPUT_FITS)[transformName(spec)] ?? [];
  return fits.includes(type) ? -1 : index;
}
