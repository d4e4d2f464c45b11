/**
 * SOQL building: every value placed in a query goes through `soqlLiteral`, and long field lists are
 * split so one query's URL never exceeds the REST URI limit.
 *
 * Escaping follows "Quoted String Escape Sequences" in the SOQL and SOSL Reference
 * (developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm):
 * inside a single-quoted string `\n \r \t \b \f \" \' \\` are the escapes; any other backslash is an
 * error. In LIKE patterns `\_` and `\%` match the literal characters.
 */
import { CrmhubError } from '../../src/connector-kit/errors.ts';

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

/** Escapes a string for use between single quotes in SOQL (quotes not included). */
export function escapeSoqlString(value: string): string {
  return value.replace(/[\\'"\n\r\t\b\f]/g, (ch) => ESCAPES[ch] ?? ch);
}

/** Escapes a string for a LIKE pattern: the string escapes plus `_` and `%` as literals. */
export function escapeSoqlLike(value: string): string {
  return escapeSoqlString(value).replace(/[_%]/g, (ch) => `\\${ch}`);
}

/** A Salesforce 15/18-character record id; anything else is refused before it reaches a query. */
const ID_PATTERN = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;
/** Field and object API names: letters, digits, underscores; `__c`/`__r` suffixes; dotted relationships. */
const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*$/;

export function isSalesforceId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Refuses anything that is not a plain API name (they are spliced into SOQL unquoted). */
export function soqlName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new CrmhubError('config', `not a valid Salesforce API name: ${JSON.stringify(name)}`, {
      code: 'INVALID_API_NAME',
      context: { connector: 'salesforce', field: name },
    });
  }
  return name;
}

/**
 * Formats a SOQL datetime literal (unquoted, UTC, `YYYY-MM-DDThh:mm:ssZ`). Salesforce returns
 * `2024-05-02T11:22:33.000+0000`; Date parsing accepts both.
 */
export function soqlDateTime(iso: string): string {
  const ms = Date.parse(normaliseSalesforceDate(iso));
  if (Number.isNaN(ms)) {
    throw new CrmhubError('internal', `not a datetime: ${JSON.stringify(iso)}`, { code: 'INVALID_DATETIME' });
  }
  // SOQL documents `YYYY-MM-DDThh:mm:ssZ`; real SystemModstamps have whole seconds, so keep
  // milliseconds only when a value actually has them.
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** `2024-05-02T11:22:33.000+0000` → `2024-05-02T11:22:33.000+00:00` (ECMAScript needs the colon). */
export function normaliseSalesforceDate(value: string): string {
  return value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
}

/** A SOQL literal for any value: strings quoted and escaped, numbers/booleans bare, null as `null`. */
export function soqlLiteral(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CrmhubError('internal', 'non-finite number in SOQL', { code: 'INVALID_NUMBER' });
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return `'${escapeSoqlString(value)}'`;
}

/** `Field IN ('a','b')` with every value escaped. */
export function soqlIn(field: string, values: readonly string[]): string {
  return `${soqlName(field)} IN (${values.map((v) => soqlLiteral(v)).join(',')})`;
}

/**
 * Default budget for one query's URL-encoded SOQL, in characters. The REST API refuses request URIs
 * over 16,384 bytes ("URI Too Long", 414; REST API Developer Guide, "Request Size Limits"); the
 * `/services/data/vNN.N/queryAll?q=` prefix and the instance host take the rest.
 */
export const DEFAULT_MAX_QUERY_CHARS = 15_000;

/** Length of the SOQL once URL-encoded as a `q=` parameter (what counts toward the URI limit). */
export function encodedLength(soql: string): number {
  return encodeURIComponent(soql).length;
}

/**
 * Splits `fields` into groups so that `SELECT <always>, <group> <rest>` stays within `maxChars`
 * when URL-encoded. `always` (Id, SystemModstamp) is repeated in every group so results can be
 * merged by Id. Returns one group (possibly empty) when everything fits.
 */
export function splitFieldList(
  always: readonly string[],
  fields: readonly string[],
  restOfQueryChars: number,
  maxChars: number = DEFAULT_MAX_QUERY_CHARS,
): string[][] {
  const extra = fields.filter((f) => !always.includes(f));
  const base = encodedLength(`SELECT ${always.join(', ')} `) + restOfQueryChars;
  const groups: string[][] = [];
  let current: string[] = [];
  let size = base;
  for (const field of extra) {
    const add = encodedLength(`, ${field}`);
    if (base + add > maxChars) {
      throw new CrmhubError('config', `field name too long for one query: ${field}`, { code: 'QUERY_TOO_LONG', context: { field } });
    }
    if (size + add > maxChars && current.length > 0) {
      groups.push(current);
      current = [];
      size = base;
    }
    current.push(field);
    size += add;
  }
  groups.push(current);
  return groups;
}

/** Builds `SELECT a, b FROM Obj WHERE … ORDER BY … LIMIT n`. */
export function selectSoql(
  object: string,
  fields: readonly string[],
  where?: string,
  tail?: string,
): string {
  const parts = [`SELECT ${fields.map(soqlName).join(', ')} FROM ${soqlName(object)}`];
  if (where !== undefined && where !== '') parts.push(`WHERE ${where}`);
  if (tail !== undefined && tail !== '') parts.push(tail);
  return parts.join(' ');
}

/** Keyset position for incremental pulls: last SystemModstamp seen and the last Id at that time. */
export interface KeysetPosition {
  ts: string;
  id: string;
}

/**
 * `(SystemModstamp > :ts OR (SystemModstamp = :ts AND Id > :id))` — Id breaks ties between records
 * sharing a SystemModstamp, so a page boundary never skips or repeats records.
 */
export function keysetWhere(position: KeysetPosition | null, modifiedField = 'SystemModstamp'): string {
  if (position === null) return '';
  const ts = soqlDateTime(position.ts);
  const field = soqlName(modifiedField);
  return `(${field} > ${ts} OR (${field} = ${ts} AND Id > ${soqlLiteral(position.id)}))`;
}
