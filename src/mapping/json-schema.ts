/**
 * JSON Schema of mapping files, generated from the zod schema (the source of truth). The output is
 * deterministic and ends with a newline: CI diffs `crmhub mappings schema` against the committed
 * `mappings/mapping.schema.json` byte for byte.
 */
import { z } from 'zod';
import { mappingSchema } from './mapping-schema.ts';

/** The JSON Schema text (2-space indented, trailing newline). */
export function mappingJsonSchemaText(): string {
  // io 'input': editors check what admins write, where defaulted keys are optional.
  const generated = z.toJSONSchema(mappingSchema, { io: 'input', target: 'draft-2020-12' });
  const { $schema, ...rest } = generated;
  const schema = { $schema, title: 'crmhub field mapping', ...rest };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
