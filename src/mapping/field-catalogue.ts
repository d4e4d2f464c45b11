/**
 * The built-in offline catalogue of well-known CRM fields (data in `standard-fields.json`), so
 * `crmhub mappings validate` works with no network. It is a floor, not the truth: an admin's CRM
 * may have more fields, so offline an unknown field far from any known name is only a warning;
 * `--remote` checks against the live schema.
 */
import { z } from 'zod';
import type { ObjectSchema, RemoteField } from '../connector-kit/connector.ts';
import catalogueJson from './standard-fields.json' with { type: 'json' };

const entrySchema = z.strictObject({
  name: z.string(),
  label: z.string().optional(),
  type: z.enum(['string', 'number', 'boolean', 'date', 'datetime', 'enum', 'set', 'reference', 'other']),
  readOnly: z.boolean().default(false),
  unique: z.boolean().default(false),
  required: z.boolean().default(false),
  custom: z.boolean().default(false),
  options: z.array(z.string()).optional(),
});

const catalogueSchema = z
  .object({ $comment: z.string().optional() })
  .catchall(z.record(z.string(), z.array(entrySchema)).or(z.string()));

let parsed: Map<string, ObjectSchema> | undefined;

function load(): Map<string, ObjectSchema> {
  if (parsed) return parsed;
  const data = catalogueSchema.parse(catalogueJson);
  const out = new Map<string, ObjectSchema>();
  for (const [connector, objects] of Object.entries(data)) {
    if (typeof objects === 'string' || objects === undefined) continue;
    for (const [object, entries] of Object.entries(objects)) {
      const fields: RemoteField[] = entries.map((e) => ({
        name: e.name,
        label: e.label ?? e.name,
        type: e.type,
        readOnly: e.readOnly,
        unique: e.unique,
        required: e.required,
        custom: e.custom,
        ...(e.options ? { options: e.options.map((value) => ({ value, label: value })) } : {}),
      }));
      out.set(`${connector}/${object}`, { object, fields });
    }
  }
  parsed = out;
  return out;
}

/** The built-in schema of a connector's object, or undefined when the catalogue does not know it. */
export function builtinObjectSchema(connector: string, object: string): ObjectSchema | undefined {
  return load().get(`${connector}/${object}`);
}

/** Objects the catalogue knows, as `connector/object`. */
export function builtinObjects(): string[] {
  return [...load().keys()].sort();
}
