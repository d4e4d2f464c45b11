/**
 * The SOQL subset the sandbox runs: `SELECT` fields (and parent fields one level up, e.g.
 * `Account.Name`), `COUNT()`/`COUNT(field)`, `FROM` one sObject, `WHERE` with = != < > <= >= IN
 * NOT IN LIKE INCLUDES EXCLUDES, AND/OR/NOT and parentheses, null, date/datetime literals and a
 * few date literals (TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n),
 * `ORDER BY` (several, ASC/DESC, NULLS FIRST/LAST), `LIMIT`, `OFFSET`. Parsing is done by
 * @jetstreamapp/soql-parser-js; string literals are unescaped here by Salesforce's rules
 * (SOQL and SOSL Reference, "Quoted String Escape Sequences"), and errors use Salesforce's
 * codes and message shapes (`MALFORMED_QUERY`, `INVALID_FIELD` with the caret excerpt, `INVALID_TYPE`).
 */
import { parseQuery, type Condition, type FieldType, type OrderByClause, type WhereClause } from '@jetstreamapp/soql-parser-js';
import { normalizeId } from './ids.ts';
import { findObject, type SfFieldDef, type SfObjectDef } from './schema.ts';
import { SfRequestError } from './org.ts';
import { formatDateTime, parseDateTime, type SfRecord, type SfValue } from './values.ts';

/** A field reference: direct (`Email`) or through a parent relationship (`Account.Name`). */
export interface FieldPath {
  /** Canonical output names, e.g. ['Account', 'Name'] or ['Email']. */
  names: string[];
  /** For parent paths: the reference field on the queried object (AccountId). */
  via?: SfFieldDef;
  parent?: SfObjectDef;
  field: SfFieldDef;
}

type SelectItem = { kind: 'field'; path: FieldPath } | { kind: 'count'; path?: FieldPath; alias: string };

type Expr =
  | { kind: 'and' | 'or'; items: Expr[] }
  | { kind: 'not'; item: Expr }
  | { kind: 'cond'; test: (row: SfRecord, resolve: RowResolver) => boolean };

type RowResolver = (row: SfRecord, path: FieldPath) => SfValue;

export interface SoqlPlan {
  soql: string;
  object: SfObjectDef;
  select: SelectItem[];
  /** `SELECT COUNT() FROM …`: only totalSize is answered. */
  countOnly: boolean;
  aggregate: boolean;
  where: Expr | null;
  orderBy: { path: FieldPath; desc: boolean; nullsLast: boolean }[];
  limit?: number;
  offset?: number;
}

const malformed = (message: string): SfRequestError => new SfRequestError(400, 'MALFORMED_QUERY', message);

/** Salesforce's caret excerpt: the query, a caret under the offending token, then row/column. */
function located(soql: string, token: string, message: string): string {
  const flat = soql.replace(/\s+/g, ' ');
  const at = flat.toLowerCase().search(new RegExp(`(?<![\\w.])${token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').toLowerCase()}(?![\\w])`));
  const col = at < 0 ? 0 : at;
  return `\n${flat}\n${' '.repeat(col)}^\nERROR at Row:1:Column:${col + 1}\n${message}`;
}

// ----- string literals ----------------------------------------------------------------------------

interface LiteralChar {
  ch: string;
  /** `\_` and `\%`: a literal wildcard character inside LIKE. */
  escapedWildcard: boolean;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', "'": "'", '\\': '\\' };

/** Unescapes a quoted SOQL string literal; MALFORMED_QUERY on an escape Salesforce does not define. */
export function unescapeLiteral(quoted: string, soql: string): LiteralChar[] {
  const body = quoted.startsWith("'") && quoted.endsWith("'") && quoted.length >= 2 ? quoted.slice(1, -1) : quoted;
  const out: LiteralChar[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (c !== '\\') {
      out.push({ ch: c, escapedWildcard: false });
      continue;
    }
    const next = body.charAt(i + 1);
    i++;
    if (next === '_' || next === '%') {
      out.push({ ch: next, escapedWildcard: true });
      continue;
    }
    const mapped = ESCAPES[next] ?? ESCAPES[next.toLowerCase()];
    if (mapped === undefined || (next !== next.toLowerCase() && !'NRTBF'.includes(next))) {
      throw malformed(located(soql, quoted.slice(0, 12), `Invalid string literal '${body}'. Illegal escape sequence '\\${next}'`));
    }
    out.push({ ch: mapped, escapedWildcard: false });
  }
  return out;
}

const literalText = (chars: LiteralChar[]): string => chars.map((c) => c.ch).join('');

function likeRegex(chars: LiteralChar[]): RegExp {
  let src = '';
  for (const c of chars) {
    if (!c.escapedWildcard && c.ch === '%') src += '[\\s\\S]*';
    else if (!c.escapedWildcard && c.ch === '_') src += '[\\s\\S]';
    else src += c.ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'i');
}

// ----- field resolution ---------------------------------------------------------------------------

const invalidField = (soql: string, token: string, message: string): SfRequestError => new SfRequestError(400, 'INVALID_FIELD', located(soql, token, message));

const noSuchColumn = (soql: string, token: string, name: string, entity: string): SfRequestError =>
  invalidField(
    soql,
    token,
    `No such column '${name}' on entity '${entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`,
  );

function resolvePath(object: SfObjectDef, raw: string, soql: string): FieldPath {
  const parts = raw.split('.');
  if (parts.length === 1) {
    const field = object.byName.get(raw.toLowerCase());
    if (!field) throw noSuchColumn(soql, raw, raw, object.name);
    return { names: [field.name], field };
  }
  const [rel, name] = parts;
  if (parts.length !== 2 || rel === undefined || name === undefined) throw malformed(located(soql, raw, `Only one level of relationship is supported by this sandbox: ${raw}`));
  const via = object.fields.find((f) => f.relationshipName?.toLowerCase() === rel.toLowerCase());
  const parent = via?.referenceTo ? findObject(via.referenceTo) : undefined;
  if (!via || !parent) {
    throw invalidField(
      soql,
      raw,
      `Didn't understand relationship '${rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.`,
    );
  }
  const field = parent.byName.get(name.toLowerCase());
  if (!field) throw noSuchColumn(soql, raw, name, parent.name);
  return { names: [via.relationshipName ?? rel, field.name], via, parent, field };
}

// ----- WHERE --------------------------------------------------------------------------------------

type Token = '(' | ')' | 'AND' | 'OR' | 'NOT' | { cond: Condition };

/** The parser's WHERE chain, read loosely: a right-leaning list with paren counts on conditions. */
interface LooseWhere {
  left?: (Condition & { openParen?: number; closeParen?: number }) | null;
  operator?: string;
  right?: LooseWhere;
}

function flatten(where: WhereClause | undefined, out: Token[]): void {
  let node = where as LooseWhere | undefined;
  while (node) {
    const n: LooseWhere = node;
    if (n.left) {
      const c = n.left;
      for (let i = 0; i < (c.openParen ?? 0); i++) out.push('(');
      out.push({ cond: c });
      for (let i = 0; i < (c.closeParen ?? 0); i++) out.push(')');
      if (n.operator === 'AND' || n.operator === 'OR') out.push(n.operator);
    } else if (n.operator === 'NOT') {
      out.push('NOT');
    }
    node = n.right;
  }
}

/** SOQL refuses AND and OR side by side without parentheses ("unexpected token: OR"). */
function checkMixing(tokens: Token[], soql: string): void {
  const seen: Set<string>[] = [new Set()];
  for (const t of tokens) {
    if (t === '(') seen.push(new Set());
    else if (t === ')') seen.pop();
    else if (t === 'AND' || t === 'OR') {
      const level = seen[seen.length - 1];
      if (!level) continue;
      level.add(t);
      if (level.size > 1) throw malformed(located(soql, t, `unexpected token: '${t}'`));
    }
  }
}

function dayStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
}

const DAY = 86_400_000;

/** [start, end) of a date literal in ms (UTC, the sandbox user's time zone). */
function dateLiteralRange(value: string, n: number | undefined, now: number, soql: string): [number, number] {
  const today = dayStart(now);
  const name = value.split(':')[0]?.toUpperCase();
  switch (name) {
    case 'TODAY':
      return [today, today + DAY];
    case 'YESTERDAY':
      return [today - DAY, today];
    case 'TOMORROW':
      return [today + DAY, today + 2 * DAY];
    case 'LAST_N_DAYS':
      return [today - (n ?? 0) * DAY, today + DAY];
    case 'NEXT_N_DAYS':
      return [today + DAY, today + (n ?? 0) * DAY + DAY];
    case 'N_DAYS_AGO':
      return [today - (n ?? 0) * DAY, today - (n ?? 0) * DAY + DAY];
    default:
      throw malformed(located(soql, value, `The date literal ${value} is not supported by the crmhub sandbox`));
  }
}

type Scalar = string | number | boolean | null;

const TEXT_TYPES = new Set(['string', 'textarea', 'email', 'phone', 'url', 'picklist', 'multipicklist']);
const NUMBER_TYPES = new Set(['double', 'int', 'currency', 'percent']);

function typeError(path: FieldPath, soql: string, quoted: boolean): SfRequestError {
  const t = path.field.type === 'datetime' ? 'dateTime' : path.field.type === 'int' ? 'int' : path.field.type;
  const fieldName = path.names.join('.');
  const message = quoted
    ? `value of filter criterion for field '${fieldName}' must be of type ${t} and should not be enclosed in quotes`
    : `value of filter criterion for field '${fieldName}' must be of type ${TEXT_TYPES.has(path.field.type) || path.field.type === 'id' || path.field.type === 'reference' ? 'string' : t} and should be enclosed in quotes`;
  return new SfRequestError(400, 'INVALID_FIELD', located(soql, fieldName, message));
}

/** Converts one literal to the comparable form of the field's type. */
function literalValue(path: FieldPath, literalType: string, raw: string, soql: string): { value: Scalar; like?: RegExp; range?: [string, string] } {
  const type = path.field.type;
  if (literalType === 'NULL') return { value: null };
  if (literalType === 'STRING') {
    const chars = unescapeLiteral(raw, soql);
    const text = literalText(chars);
    if (type === 'id' || type === 'reference') {
      const id = normalizeId(text);
      if (!id) throw new SfRequestError(400, 'INVALID_QUERY_FILTER_OPERATOR', located(soql, path.names.join('.'), `invalid ID field: ${text}`));
      return { value: id.toLowerCase() };
    }
    if (!TEXT_TYPES.has(type)) throw typeError(path, soql, true);
    return { value: text.toLowerCase(), like: likeRegex(chars) };
  }
  if (literalType === 'INTEGER' || literalType === 'DECIMAL') {
    if (!NUMBER_TYPES.has(type)) throw typeError(path, soql, false);
    return { value: Number(raw) };
  }
  if (literalType === 'BOOLEAN') {
    if (type !== 'boolean') throw typeError(path, soql, false);
    return { value: raw.toUpperCase() === 'TRUE' };
  }
  if (literalType === 'DATETIME') {
    if (type !== 'datetime') throw typeError(path, soql, false);
    const ms = parseDateTime(raw);
    if (Number.isNaN(ms)) throw malformed(located(soql, raw, `line 1:0 no viable alternative at character '${raw}'`));
    // Stored datetimes share one fixed-width UTC form, so they compare as strings (fast sorts).
    return { value: formatDateTime(ms) };
  }
  if (literalType === 'DATE') {
    if (type !== 'date') throw typeError(path, soql, false);
    return { value: raw };
  }
  throw malformed(located(soql, raw, `unsupported literal ${raw}`));
}

function comparable(path: FieldPath, v: SfValue): Scalar {
  if (v === null) return null;
  switch (path.field.type) {
    case 'datetime':
      return String(v);
    case 'id':
    case 'reference':
      return String(v).toLowerCase();
    default:
      return typeof v === 'string' ? v.toLowerCase() : v;
  }
}

function compareScalars(a: Scalar, b: Scalar): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const as = String(a);
  const bs = String(b);
  return as < bs ? -1 : as > bs ? 1 : 0;
}

function buildCondition(object: SfObjectDef, c: Condition, soql: string, now: number): Expr {
  const cond = c as unknown as { operator?: string; field?: string; fn?: unknown; valueQuery?: unknown; literalType?: string | string[]; value?: string | string[]; dateLiteralVariable?: number };
  if (cond.fn || cond.valueQuery || typeof cond.field !== 'string') {
    throw malformed(located(soql, 'WHERE', 'functions and semi-joins in WHERE are not supported by the crmhub sandbox'));
  }
  const path = resolvePath(object, cond.field, soql);
  if (path.field.filterable === false) throw new SfRequestError(400, 'INVALID_FIELD', located(soql, cond.field, `field '${cond.field}' can not be filtered in a query call`));
  const op = String(cond.operator).toUpperCase();
  const literalType = Array.isArray(cond.literalType) ? (cond.literalType[0] ?? 'STRING') : (cond.literalType ?? 'STRING');
  const rawValues = Array.isArray(cond.value) ? cond.value : [cond.value ?? ''];
  const dateLiteral = literalType === 'DATE_LITERAL' || literalType === 'DATE_N_LITERAL';
  if (dateLiteral && path.field.type !== 'date' && path.field.type !== 'datetime') throw typeError(path, soql, false);
  const literals = rawValues.map((raw, i) => {
    const lt = Array.isArray(cond.literalType) ? (cond.literalType[i] ?? literalType) : literalType;
    if (lt === 'DATE_LITERAL' || lt === 'DATE_N_LITERAL') {
      const [from, to] = dateLiteralRange(raw, cond.dateLiteralVariable, now, soql);
      const text = (ms: number) => (path.field.type === 'date' ? formatDateTime(ms).slice(0, 10) : formatDateTime(ms));
      const range: [string, string] = [text(from), text(to)];
      return { value: range[0], range };
    }
    return literalValue(path, lt, raw, soql);
  });
  const first = literals[0];
  if (!first) throw malformed(located(soql, cond.field, 'missing value'));
  const asComparable = (v: SfValue): Scalar => comparable(path, v);
  const equals = (cv: Scalar, lit: { value: Scalar; range?: [string, string] }): boolean => {
    if (lit.range) return typeof cv === 'string' && cv >= lit.range[0] && cv < lit.range[1];
    if (path.field.type === 'multipicklist' && typeof cv === 'string' && typeof lit.value === 'string') {
      return [...cv.split(';')].sort().join(';') === [...lit.value.split(';')].sort().join(';');
    }
    return cv === lit.value;
  };
  if ((op === 'IN' || op === 'NOT IN') && literals.some((l) => l.value === null) && op === 'IN') {
    // Salesforce accepts null inside IN lists.
  }
  const read = (row: SfRecord, resolve: RowResolver): Scalar => asComparable(resolve(row, path));
  switch (op) {
    case '=':
      return { kind: 'cond', test: (row, r) => equals(read(row, r), first) };
    case '!=':
    case '<>':
      return { kind: 'cond', test: (row, r) => !equals(read(row, r), first) };
    case '<':
    case '>':
    case '<=':
    case '>=': {
      if (first.value === null) throw malformed(located(soql, cond.field, `invalid operator on null value: ${op}`));
      if (path.field.type === 'boolean') throw new SfRequestError(400, 'INVALID_FIELD', located(soql, cond.field, `invalid operator on boolean field: ${op}`));
      const lo = first.range ? first.range[0] : first.value;
      const hiExclusive = first.range ? first.range[1] : null;
      return {
        kind: 'cond',
        test: (row, r) => {
          const cv = read(row, r);
          if (cv === null) return false;
          if (op === '<') return compareScalars(cv, lo) < 0;
          if (op === '>=') return compareScalars(cv, lo) >= 0;
          if (hiExclusive !== null) return op === '>' ? compareScalars(cv, hiExclusive) >= 0 : compareScalars(cv, hiExclusive) < 0;
          return op === '>' ? compareScalars(cv, lo) > 0 : compareScalars(cv, lo) <= 0;
        },
      };
    }
    case 'IN':
    case 'NOT IN':
      return {
        kind: 'cond',
        test: (row, r) => {
          const cv = read(row, r);
          const hit = literals.some((l) => equals(cv, l));
          return op === 'IN' ? hit : !hit;
        },
      };
    case 'LIKE': {
      if (!TEXT_TYPES.has(path.field.type) && path.field.type !== 'id' && path.field.type !== 'reference') {
        throw new SfRequestError(400, 'INVALID_FIELD', located(soql, cond.field, `invalid operator on field '${cond.field}': LIKE`));
      }
      const re = first.like ?? likeRegex(unescapeLiteral(rawValues[0] ?? "''", soql));
      return {
        kind: 'cond',
        test: (row, r) => {
          const v = r(row, path);
          return v !== null && re.test(String(v));
        },
      };
    }
    case 'INCLUDES':
    case 'EXCLUDES': {
      if (path.field.type !== 'multipicklist') throw new SfRequestError(400, 'INVALID_FIELD', located(soql, cond.field, `includes or excludes operator only valid on multipicklist field`));
      const groups = literals.map((l) => String(l.value).split(';'));
      return {
        kind: 'cond',
        test: (row, r) => {
          const cv = read(row, r);
          const have = new Set(typeof cv === 'string' ? cv.split(';') : []);
          const hit = groups.some((g) => g.every((v) => have.has(v)));
          return op === 'INCLUDES' ? hit : !hit;
        },
      };
    }
    default:
      throw malformed(located(soql, op, `unexpected token: ${op}`));
  }
}

function parseExpr(tokens: Token[], object: SfObjectDef, soql: string, now: number): Expr {
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  /** `operand (OP operand)*` for OP = OR (lowest precedence) and AND. */
  const chain = (op: 'AND' | 'OR', operand: () => Expr): Expr => {
    const items = [operand()];
    while (peek() === op) {
      pos++;
      items.push(operand());
    }
    return items.length === 1 && items[0] ? items[0] : { kind: op === 'OR' ? 'or' : 'and', items };
  };
  const parseOr = (): Expr => chain('OR', parseAnd);
  const parseAnd = (): Expr => chain('AND', parseNot);
  const parseNot = (): Expr => {
    if (peek() === 'NOT') {
      pos++;
      return { kind: 'not', item: parseNot() };
    }
    const t = peek();
    if (t === '(') {
      pos++;
      const inner = parseOr();
      if (peek() !== ')') throw malformed(located(soql, 'WHERE', 'unbalanced parentheses'));
      pos++;
      return inner;
    }
    if (t && typeof t === 'object') {
      pos++;
      return buildCondition(object, t.cond, soql, now);
    }
    throw malformed(located(soql, 'WHERE', `unexpected token: ${String(t)}`));
  };
  const expr = parseOr();
  if (pos !== tokens.length) throw malformed(located(soql, 'WHERE', 'unexpected token after condition'));
  return expr;
}

export function evaluate(expr: Expr, row: SfRecord, resolve: RowResolver): boolean {
  switch (expr.kind) {
    case 'and':
      return expr.items.every((e) => evaluate(e, row, resolve));
    case 'or':
      return expr.items.some((e) => evaluate(e, row, resolve));
    case 'not':
      return !evaluate(expr.item, row, resolve);
    case 'cond':
      return expr.test(row, resolve);
  }
}

// ----- SELECT -------------------------------------------------------------------------------------

/** Parses and checks a SOQL statement against the sandbox schema; throws SfRequestError. */
export function planQuery(soql: string, now: number = Date.now()): SoqlPlan {
  let parsed;
  try {
    parsed = parseQuery(soql);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw malformed(`\n${soql.replace(/\s+/g, ' ')}\n^\nERROR at Row:1:Column:1\n${message}`);
  }
  const objectName = parsed.sObject;
  const object = objectName ? findObject(objectName) : undefined;
  if (!object) {
    throw new SfRequestError(
      400,
      'INVALID_TYPE',
      located(
        soql,
        objectName ?? 'FROM',
        `sObject type '${objectName ?? ''}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`,
      ),
    );
  }
  const extra = parsed as unknown as Record<string, unknown>;
  if (parsed.groupBy || parsed.having || extra.withSecurityEnforced || extra.for || extra.withDataCategory || extra.update) {
    throw malformed(located(soql, 'GROUP', 'GROUP BY, HAVING, WITH and FOR clauses are not supported by the crmhub sandbox'));
  }
  const select: SelectItem[] = [];
  let countOnly = false;
  let exprN = 0;
  for (const f of parsed.fields ?? []) {
    const item = f as FieldType & { type: string; field?: string; relationships?: string[]; functionName?: string; parameters?: unknown[]; alias?: string; rawValue?: string };
    if (item.type === 'Field' && item.field) {
      select.push({ kind: 'field', path: resolvePath(object, item.field, soql) });
    } else if (item.type === 'FieldRelationship' && item.field && item.relationships) {
      select.push({ kind: 'field', path: resolvePath(object, [...item.relationships, item.field].join('.'), soql) });
    } else if (item.type === 'FieldFunctionExpression' && item.functionName?.toUpperCase() === 'COUNT') {
      const param = item.parameters?.[0];
      if (param === undefined) countOnly = true;
      else select.push({ kind: 'count', path: resolvePath(object, typeof param === 'string' ? param : JSON.stringify(param), soql), alias: item.alias ?? `expr${exprN++}` });
    } else {
      throw malformed(located(soql, item.rawValue ?? item.field ?? 'SELECT', `the crmhub sandbox does not support this select item: ${item.rawValue ?? item.type}`));
    }
  }
  if (countOnly && select.length > 0) throw malformed(located(soql, 'COUNT', "unexpected token: 'COUNT'"));
  const aggregate = select.some((s) => s.kind === 'count');
  if (aggregate && select.some((s) => s.kind === 'field')) {
    const f = select.find((s) => s.kind === 'field');
    const name = f?.kind === 'field' ? f.path.names.join('.') : '';
    throw malformed(located(soql, name, `Field must be grouped or aggregated: ${name}`));
  }
  let where: Expr | null = null;
  if (parsed.where) {
    const tokens: Token[] = [];
    flatten(parsed.where, tokens);
    checkMixing(tokens, soql);
    where = parseExpr(tokens, object, soql, now);
  }
  const orderBy = ((parsed.orderBy ?? []) as OrderByClause[]).map((o) => {
    const ob = o as OrderByClause & { field?: string; order?: string; nulls?: string };
    if (!ob.field) throw malformed(located(soql, 'ORDER', 'ORDER BY functions are not supported by the crmhub sandbox'));
    const path = resolvePath(object, ob.field, soql);
    if (path.field.sortable === false) throw new SfRequestError(400, 'INVALID_FIELD', located(soql, ob.field, `field '${ob.field}' can not be sorted in a query call`));
    const desc = ob.order?.toUpperCase() === 'DESC';
    const nullsLast = ob.nulls ? ob.nulls.toUpperCase() === 'LAST' : desc;
    return { path, desc, nullsLast };
  });
  // SOQL Reference, "OFFSET": the maximum offset is 2,000 rows.
  if (parsed.offset !== undefined && parsed.offset > 2000) throw new SfRequestError(400, 'NUMBER_OUTSIDE_VALID_RANGE', 'Maximum SOQL offset allowed is 2000');
  return {
    soql,
    object,
    select,
    countOnly,
    aggregate,
    where,
    orderBy,
    ...(parsed.limit === undefined ? {} : { limit: parsed.limit }),
    ...(parsed.offset === undefined ? {} : { offset: parsed.offset }),
  };
}

export interface QueryOutput {
  totalSize: number;
  records: Record<string, unknown>[];
}

/** Runs a plan over the rows; `lookupParent` finds the parent row of a relationship path. */
export function runQuery(
  plan: SoqlPlan,
  rows: Iterable<SfRecord>,
  options: { includeDeleted: boolean; urlOf: (object: string, id: string) => string; lookupParent: (object: SfObjectDef, id: string) => SfRecord | undefined },
): QueryOutput {
  const resolve: RowResolver = (row, path) => {
    if (!path.via || !path.parent) return row[path.field.name] ?? null;
    const ref = row[path.via.name];
    if (typeof ref !== 'string') return null;
    return options.lookupParent(path.parent, ref)?.[path.field.name] ?? null;
  };
  let matched: SfRecord[] = [];
  for (const row of rows) {
    if (!options.includeDeleted && row.IsDeleted === true) continue;
    if (plan.where && !evaluate(plan.where, row, resolve)) continue;
    matched.push(row);
  }
  if (plan.orderBy.length > 0) {
    const keys = plan.orderBy;
    matched.sort((a, b) => {
      for (const k of keys) {
        const av = comparable(k.path, resolve(a, k.path));
        const bv = comparable(k.path, resolve(b, k.path));
        if (av === bv) continue;
        if (av === null) return k.nullsLast ? 1 : -1;
        if (bv === null) return k.nullsLast ? -1 : 1;
        const c = compareScalars(av, bv);
        if (c !== 0) return k.desc ? -c : c;
      }
      return 0;
    });
  }
  if (plan.offset !== undefined) matched = matched.slice(plan.offset);
  if (plan.limit !== undefined) matched = matched.slice(0, plan.limit);
  if (plan.countOnly) return { totalSize: matched.length, records: [] };
  if (plan.aggregate) {
    const out: Record<string, unknown> = { attributes: { type: 'AggregateResult' } };
    for (const s of plan.select) {
      if (s.kind !== 'count') continue;
      const path = s.path;
      out[s.alias] = path ? matched.filter((r) => resolve(r, path) !== null).length : matched.length;
    }
    return { totalSize: 1, records: [out] };
  }
  const records = matched.map((row) => {
    const id = String(row.Id);
    const out: Record<string, unknown> = { attributes: { type: plan.object.name, url: options.urlOf(plan.object.name, id) } };
    for (const s of plan.select) {
      if (s.kind !== 'field') continue;
      const p = s.path;
      if (!p.via || !p.parent) {
        out[p.field.name] = row[p.field.name] ?? null;
        continue;
      }
      const relName = p.names[0] ?? p.via.name;
      const ref = row[p.via.name];
      const parentRow = typeof ref === 'string' ? options.lookupParent(p.parent, ref) : undefined;
      if (!parentRow) {
        out[relName] = null;
        continue;
      }
      const existing = out[relName];
      const nested: Record<string, unknown> =
        existing && typeof existing === 'object' ? (existing as Record<string, unknown>) : { attributes: { type: p.parent.name, url: options.urlOf(p.parent.name, String(parentRow.Id)) } };
      nested[p.field.name] = parentRow[p.field.name] ?? null;
      out[relName] = nested;
    }
    return out;
  });
  return { totalSize: records.length, records };
}
