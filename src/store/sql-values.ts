import type { JsonValue } from '../core/types.ts';
import type { SqlRow } from './sql-executor.ts';

/**
 * Reading our own rows back. The database is written only by this module, so values are trusted to
 * have the shapes the migrations declare; these helpers only smooth driver differences (Postgres
 * returns COUNT(*) as a string, SQLite has no booleans).
 */
export function text(row: SqlRow, column: string): string {
  const value = row[column];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  throw new TypeError(`column ${column} is not text`);
}

export function textOrNull(row: SqlRow, column: string): string | null {
  const value = row[column];
  return value === null || value === undefined ? null : text(row, column);
}

export function int(row: SqlRow, column: string): number {
  const value = row[column];
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) throw new TypeError(`column ${column} is not a number`);
  return n;
}

export function json<T extends JsonValue = JsonValue>(row: SqlRow, column: string): T {
  // Trusted: only this module writes these columns, always with JSON.stringify.
  return JSON.parse(text(row, column)) as T;
}

/** Canonical time form: `toISOString()` (UTC, milliseconds), so text order is time order. */
const CANONICAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function iso(time: string): string {
  // Fast path: already canonical (what every caller producing `toISOString()` passes) — this runs
  // several times per stored event, so skip the parse/format round trip.
  if (CANONICAL_TIME.test(time)) return time;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new TypeError(`not an ISO-8601 time: ${time}`);
  return new Date(ms).toISOString();
}

export function isoOrNull(time: string | null | undefined): string | null {
  return time === null || time === undefined ? null : iso(time);
}

/** `?, ?, ?` for n parameters. */
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}
