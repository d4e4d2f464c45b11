/**
 * Validates one mapping file's text: YAML syntax, the zod schema, and the checks that need the
 * whole file or the CRM's schema (duplicates, read-only targets, identity keys, transform fit).
 * Collects every issue at once, each pointing at its YAML node. Pure: the CRM schema comes in as
 * an argument (the live one from `--remote`, else the built-in catalogue).
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import { z } from 'zod';
import type { $ZodIssue } from 'zod/v4/core';
import type { ObjectSchema, RemoteField } from '../connector-kit/connector.ts';
import { closest } from './edit-distance.ts';
import { builtinObjectSchema } from './field-catalogue.ts';
import type { Issue, IssueCode } from './issue.ts';
import { pathToString } from './issue.ts';
import { DIRECTIONS, fieldSchema, mappingSchema, SIMPLE_TRANSFORMS } from './mapping-schema.ts';
import type { Direction, FieldSpec, MappingDoc, TransformSpec } from './mapping-schema.ts';
import { misfitTransformIndex, transformName } from './transforms.ts';

type Path = (string | number)[];

export interface ValidateOptions {
  /** File name used in issues. */
  file: string;
  /** Live schema of the object (`--remote`). When absent the built-in catalogue is used. */
  remoteSchema?: ObjectSchema;
  /** Connector and object implied by the file's place (`mappings/<connector>/<object>.yaml`). */
  expected?: { connector: string; object: string };
}

export interface ValidateResult {
  /** The parsed document when the schema accepted it (it may still have semantic issues). */
  doc?: MappingDoc;
  issues: Issue[];
}

/** Finds a remote field by vendor key, or — for custom fields — by label (Pipedrive names). */
export function findRemoteField(schema: ObjectSchema, name: string): RemoteField | undefined {
  return (
    schema.fields.find((f) => f.name === name) ?? schema.fields.find((f) => f.custom && f.label === name)
  );
}

const TRANSFORM_KEYS = ['date', 'datetime', 'enum', 'join', 'split', 'static'];

class Locator {
  readonly lines = new LineCounter();
  doc: Document.Parsed | undefined;

  parse(text: string): Document.Parsed {
    this.doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false });
    return this.doc;
  }

  /** Line/col of the node at `path` (or of its key), falling back to the nearest existing parent. */
  at(path: readonly (string | number | PropertyKey)[], onKey = false): { line: number; col: number } {
    let node: unknown = this.doc?.contents;
    let offset = 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (last && onKey && isScalar(pair.key)) {
          offset = pair.key.range?.[0] ?? offset;
          node = undefined;
          break;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (item === undefined) break;
        node = item;
      } else break;
      offset = (node as Node | null)?.range?.[0] ?? offset;
    }
    if (node !== undefined && node !== null) offset = (node as Node).range?.[0] ?? offset;
    const pos = this.lines.linePos(offset);
    return { line: pos.line, col: pos.col };
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** Keys allowed by the zod schema at `path` (for "did you mean" on unknown keys). */
function allowedKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const unwrap = (s: z.ZodType): z.ZodType[] => {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      return unwrap(s.def.innerType as z.ZodType);
    }
    if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).flatMap(unwrap);
    return [s];
  };
  let current = unwrap(schema);
  for (const seg of path) {
    const next: z.ZodType[] = [];
    for (const s of current) {
      if (s instanceof z.ZodObject && typeof seg === 'string') {
        const child = (s.shape as Record<string, z.ZodType | undefined>)[seg];
        if (child) next.push(...unwrap(child));
      } else if (s instanceof z.ZodArray && typeof seg === 'number') {
        next.push(...unwrap(s.element as z.ZodType));
      }
    }
    current = next;
  }
  return current.flatMap((s) => (s instanceof z.ZodObject ? Object.keys(s.shape) : []));
}

function describeValue(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** Validates a mapping file's text. Never throws on bad input; returns issues. */
export function validateMappingSource(text: string, options: ValidateOptions): ValidateResult {
  const loc = new Locator();
  const issues: Issue[] = [];
  const add = (
    code: IssueCode,
    path: Path | readonly PropertyKey[],
    message: string,
    extra: { onKey?: boolean; suggestion?: string | undefined } = {},
  ): void => {
    const { line, col } = loc.at(path, extra.onKey ?? false);
    issues.push({
      file: options.file,
      line,
      col,
      code,
      path: pathToString(path),
      message,
      severity: code.startsWith('W_') ? 'warning' : 'error',
      ...(extra.suggestion === undefined ? {} : { suggestion: extra.suggestion }),
    });
  };

  const doc = loc.parse(text);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = loc.lines.linePos(e.pos[0]);
      issues.push({
        file: options.file,
        line: pos.line,
        col: pos.col,
        code: 'E_YAML_SYNTAX',
        path: '',
        message: e.message.split('\n')[0] ?? e.message,
        severity: 'error',
      });
    }
    return { issues };
  }
  const raw: unknown = doc.toJS();

  const convert = (issue: $ZodIssue, base: readonly PropertyKey[]): void => {
    const path = [...base, ...issue.path];
    const value = valueAt(raw, path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          add('E_UNKNOWN_KEY', [...path, key], `unknown key "${key}"`, {
            onKey: true,
            suggestion: closest(key, allowedKeys(mappingSchema, path)),
          });
        }
        return;
      case 'invalid_value': {
        if (value === undefined) {
          add('E_MISSING_KEY', path, `missing required key "${String(path[path.length - 1])}"`);
          return;
        }
        const values = issue.values.map(String);
        add('E_BAD_ENUM', path, `${describeValue(value)} is not one of ${values.join(', ')}`, {
          suggestion: typeof value === 'string' ? closest(value, values) : undefined,
        });
        return;
      }
      case 'invalid_type':
        if (value === undefined)
          add('E_MISSING_KEY', path, `missing required key "${String(path[path.length - 1])}"`);
        else add('E_TYPE', path, `expected ${issue.expected}, got ${describeValue(value)}`);
        return;
      case 'invalid_union':
        convertTransformUnion(issue.errors, path, value);
        return;
      default:
        add('E_INVALID', path, issue.message);
    }
  };

  // A transform is a union (a name or a one-key object); report against the branch the admin meant.
  const convertTransformUnion = (
    branches: $ZodIssue[][],
    path: Path | readonly PropertyKey[],
    value: unknown,
  ): void => {
    if (typeof value === 'string') {
      add(
        'E_BAD_TRANSFORM',
        path,
        `unknown transform "${value}"; transforms are ${[...SIMPLE_TRANSFORMS, ...TRANSFORM_KEYS].join(', ')}`,
        {
          suggestion: closest(value, SIMPLE_TRANSFORMS),
        },
      );
      return;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const key = keys.length === 1 ? keys[0] : undefined;
      if (key !== undefined && TRANSFORM_KEYS.includes(key)) {
        const meant = branches.find((b) => !b.some((i) => i.path.length === 0));
        if (meant) {
          for (const i of meant) convert(i, path);
          return;
        }
      }
      const unknownKey = keys.find((k) => !TRANSFORM_KEYS.includes(k));
      if (unknownKey !== undefined) {
        add('E_BAD_TRANSFORM', [...path, unknownKey], `unknown transform "${unknownKey}"`, {
          onKey: true,
          suggestion: closest(unknownKey, TRANSFORM_KEYS),
        });
        return;
      }
    }
    add(
      'E_BAD_TRANSFORM',
      path,
      `a transform is a name (${SIMPLE_TRANSFORMS.join(', ')}) or a one-key object (${TRANSFORM_KEYS.join(', ')})`,
    );
  };

  const parsed = mappingSchema.safeParse(raw);
  if (!parsed.success) for (const i of parsed.error.issues) convert(i, []);

  semanticChecks(raw, parsed.success ? parsed.data : undefined, options, add);
  issues.sort((a, b) => a.line - b.line || a.col - b.col || a.code.localeCompare(b.code));
  return parsed.success ? { doc: parsed.data, issues } : { issues };
}

type AddIssue = (
  code: IssueCode,
  path: Path,
  message: string,
  extra?: { onKey?: boolean; suggestion?: string | undefined },
) => void;

interface LooseField {
  index: number;
  profile: string | undefined;
  remote: string | undefined;
  direction: Direction;
  /** The whole field, when it parses on its own. */
  spec: FieldSpec | undefined;
}

const looseString = z.string().min(1).optional().catch(undefined);
const looseDirection = z.enum(DIRECTIONS).optional().catch(undefined);

/** Records `key` for `index`; returns the index that claimed it first, if another did. */
function claim(seen: Map<string, number>, key: string, index: number): number | undefined {
  const first = seen.get(key);
  if (first === undefined) seen.set(key, index);
  return first;
}

const writesRemote = (d: Direction): boolean => d === 'both' || d === 'to_remote';
const writesProfile = (d: Direction): boolean => d === 'both' || d === 'to_profile';

/**
 * Whole-file and CRM-schema checks. Runs on the raw data too (fields that parse on their own), so
 * one schema error does not hide the rest.
 */
function semanticChecks(
  raw: unknown,
  doc: MappingDoc | undefined,
  options: ValidateOptions,
  add: AddIssue,
): void {
  const connector = doc?.connector ?? valueAt(raw, ['connector']);
  const object = doc?.object ?? valueAt(raw, ['object']);
  if (options.expected) {
    if (typeof connector === 'string' && connector !== options.expected.connector) {
      add(
        'E_FILE_PLACE',
        ['connector'],
        `connector "${connector}" does not match the folder "${options.expected.connector}"`,
      );
    }
    if (typeof object === 'string' && object !== options.expected.object) {
      add(
        'E_FILE_PLACE',
        ['object'],
        `object "${object}" does not match the file name "${options.expected.object}.yaml"`,
      );
    }
  }
  const defaultDirection = looseDirection.parse(valueAt(raw, ['defaults', 'direction'])) ?? 'both';
  const rawFields = valueAt(raw, ['fields']);
  const fields: LooseField[] = [];
  if (Array.isArray(rawFields)) {
    rawFields.forEach((f: unknown, index) => {
      const r = fieldSchema.safeParse(f);
      fields.push({
        index,
        profile: looseString.parse(valueAt(f, ['profile'])),
        remote: looseString.parse(valueAt(f, ['remote'])),
        direction: looseDirection.parse(valueAt(f, ['direction'])) ?? defaultDirection,
        spec: r.success ? r.data : undefined,
      });
    });
  }

  const seenRemote = new Map<string, number>();
  const seenTarget = new Map<string, number>();
  for (const { index, spec, profile, remote, direction } of fields) {
    const hasStatic = (spec?.transforms?.to_remote ?? []).some((t) => typeof t !== 'string' && 'static' in t);
    if (spec && profile === undefined && !(hasStatic && direction === 'to_remote')) {
      add(
        'E_MISSING_PROFILE',
        ['fields', index],
        'a field needs `profile` unless it is `direction: to_remote` with a `static` transform',
      );
    }
    const firstRemote = remote === undefined ? undefined : claim(seenRemote, remote, index);
    if (firstRemote !== undefined) {
      const what = `remote field "${remote}" is already mapped`;
      add('E_DUPLICATE_REMOTE', ['fields', index, 'remote'], `${what} by fields[${firstRemote}]`);
    }
    const firstTarget =
      profile !== undefined && writesProfile(direction) ? claim(seenTarget, profile, index) : undefined;
    if (firstTarget !== undefined) {
      const what = `profile trait "${profile}" is already written`;
      add('E_DUPLICATE_TARGET', ['fields', index, 'profile'], `${what} by fields[${firstTarget}]`);
    }
  }

  if (typeof connector !== 'string' || typeof object !== 'string') return;
  const live = options.remoteSchema;
  const schema = live ?? builtinObjectSchema(connector, object);
  if (!schema) {
    add(
      'W_UNKNOWN_OBJECT',
      ['object'],
      `the built-in catalogue does not know ${connector} "${object}"; field checks skipped (run with --remote)`,
    );
    return;
  }
  const names = schema.fields.flatMap((f) => (f.custom && f.label !== f.name ? [f.name, f.label] : [f.name]));
  const lookup = (name: string, path: Path): RemoteField | undefined => {
    const found = findRemoteField(schema, name);
    if (found) return found;
    const suggestion = closest(name, names);
    if (live || suggestion !== undefined) {
      add('E_UNKNOWN_FIELD', path, `${connector} ${object} has no field "${name}"`, { suggestion });
    } else {
      add(
        'W_UNKNOWN_FIELD',
        path,
        `"${name}" is not in the built-in catalogue of ${connector} ${object}; run with --remote to check it`,
      );
    }
    return undefined;
  };

  const match = valueAt(raw, ['identity', 'match']);
  (Array.isArray(match) ? match : []).forEach((key: unknown, i) => {
    const remote = looseString.parse(valueAt(key, ['remote']));
    if (remote === undefined) return;
    const field = lookup(remote, ['identity', 'match', i, 'remote']);
    if (field && !field.unique) {
      add(
        'E_NOT_UNIQUE',
        ['identity', 'match', i, 'remote'],
        `"${remote}" is not unique in ${connector} ${object}, so it cannot be an identity match key`,
      );
    }
  });

  // Join keys only need to exist: they are looked up inbound, never used as upsert keys.
  const join = valueAt(raw, ['identity', 'join']);
  (Array.isArray(join) ? join : []).forEach((key: unknown, i) => {
    const remote = looseString.parse(valueAt(key, ['remote']));
    if (remote !== undefined) lookup(remote, ['identity', 'join', i, 'remote']);
  });

  // Creating records needs every field the CRM requires; a gap fails each create at run time.
  const onNoMatch = valueAt(raw, ['identity', 'on_no_match']) ?? 'create';
  if (onNoMatch === 'create') {
    const written = new Set(
      fields
        .filter((f) => writesRemote(f.direction) && f.remote !== undefined)
        .map((f) => findRemoteField(schema, f.remote ?? '')?.name),
    );
    for (const required of schema.fields.filter((f) => f.required && !f.readOnly)) {
      if (!written.has(required.name)) {
        add(
          'W_REQUIRED_UNMAPPED',
          ['identity'],
          `${connector} requires "${required.label}" to create a ${object} record, and no to_remote field writes it`,
        );
      }
    }
  }

  for (const { index, spec, remote, direction } of fields) {
    if (remote === undefined) continue;
    const field = lookup(remote, ['fields', index, 'remote']);
    if (!field) continue;
    if (field.readOnly && writesRemote(direction)) {
      add(
        'E_READ_ONLY',
        ['fields', index, 'remote'],
        `"${remote}" is read-only in ${connector}; use direction: to_profile`,
      );
    }
    if (spec) checkTransforms(spec, index, field, add);
  }
}

function checkTransforms(spec: FieldSpec, index: number, field: RemoteField, add: AddIssue): void {
  for (const dir of ['to_remote', 'to_profile'] as const) {
    const chain: TransformSpec[] = spec.transforms?.[dir] ?? [];
    const bad = misfitTransformIndex(chain, dir, field.type);
    const badSpec = chain[bad];
    if (badSpec !== undefined) {
      add(
        'E_TRANSFORM_TYPE',
        ['fields', index, 'transforms', dir, bad],
        `transform "${transformName(badSpec)}" does not fit ${field.type} field "${spec.remote}"`,
      );
    }
  }
  const options = field.options?.map((o) => o.value);
  if (!options || options.length === 0) return;
  (spec.transforms?.to_remote ?? []).forEach((t, ti) => {
    if (typeof t === 'string') return;
    if ('enum' in t) {
      for (const [from, to] of Object.entries(t.enum.map)) {
        if (to !== null && !options.includes(String(to))) {
          add(
            'E_ENUM_OPTION',
            ['fields', index, 'transforms', 'to_remote', ti, 'enum', 'map', from],
            `${JSON.stringify(to)} is not an option of "${spec.remote}" (${options.join(', ')})`,
            {
              suggestion: closest(String(to), options),
            },
          );
        }
      }
    } else if ('static' in t && t.static !== null && !options.includes(String(t.static))) {
      add(
        'E_ENUM_OPTION',
        ['fields', index, 'transforms', 'to_remote', ti, 'static'],
        `${JSON.stringify(t.static)} is not an option of "${spec.remote}" (${options.join(', ')})`,
        {
          suggestion: closest(String(t.static), options),
        },
      );
    }
  });
}
