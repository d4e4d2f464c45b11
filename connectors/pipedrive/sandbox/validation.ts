/**
 * Strict request validation of the sandbox's v2 endpoints. API v2 validates strictly: numbers must
 * be numbers, booleans true/false, unknown attributes are refused (migration guide, crm-reference
 * §3.1). Attribute lists come from the request bodies of `addPerson`, `addOrganization`, `addDeal`
 * in `openapi-v2.yaml`. Persons take `name` only: `first_name`/`last_name` are derived by Pipedrive.
 */
import { z } from 'zod';
import type { FieldCatalogue, FieldDefinition, PipedriveEntity } from './fields.ts';

const int = z.number().int();
const contact = z.strictObject({ value: z.string(), primary: z.boolean().optional(), label: z.string().optional() });
const address = z.record(z.string(), z.string());
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');
const rfc3339 = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, 'must be an RFC 3339 date-time');
const customFields = z.record(z.string(), z.unknown());

const personShape = {
  name: z.string().min(1),
  owner_id: int,
  org_id: int.nullable(),
  add_time: rfc3339,
  emails: z.array(contact),
  phones: z.array(contact),
  visible_to: int,
  label_ids: z.array(int),
  postal_address: address,
  notes: z.string(),
  im: z.array(contact),
  birthday: date.nullable(),
  job_title: z.string().nullable(),
  marketing_status: z.enum(['no_consent', 'unsubscribed', 'subscribed', 'archived']),
  custom_fields: customFields,
};

const organizationShape = {
  name: z.string().min(1),
  owner_id: int,
  add_time: rfc3339,
  visible_to: int,
  label_ids: z.array(int),
  address: address.nullable(),
  website: z.string().nullable(),
  linkedin: z.string().nullable(),
  industry: int.nullable(),
  annual_revenue: int.nullable(),
  employee_count: int.nullable(),
  custom_fields: customFields,
};

const dealShape = {
  title: z.string().min(1),
  owner_id: int,
  person_id: int.nullable(),
  org_id: int.nullable(),
  pipeline_id: int,
  stage_id: int,
  value: z.number(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code'),
  is_deleted: z.boolean(),
  is_archived: z.boolean(),
  archive_time: rfc3339.nullable(),
  status: z.enum(['open', 'won', 'lost']),
  probability: z.number().min(0).max(100).nullable(),
  lost_reason: z.string().nullable(),
  visible_to: int,
  close_time: rfc3339.nullable(),
  won_time: rfc3339.nullable(),
  lost_time: rfc3339.nullable(),
  expected_close_date: date.nullable(),
  label_ids: z.array(int),
  custom_fields: customFields,
};

const createSchemas: Record<PipedriveEntity, z.ZodType<Record<string, unknown>>> = {
  person: z.strictObject(personShape).partial().required({ name: true }),
  organization: z.strictObject(organizationShape).partial().required({ name: true }),
  deal: z.strictObject(dealShape).partial().required({ title: true }),
};
const updateSchemas: Record<PipedriveEntity, z.ZodType<Record<string, unknown>>> = {
  person: z.strictObject(personShape).partial(),
  organization: z.strictObject(organizationShape).partial(),
  deal: z.strictObject(dealShape).partial(),
};

export type ValidationResult = { ok: true; body: Record<string, unknown> } | { ok: false; error: string };

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const at = i.path.join('.');
      if (i.code === 'unrecognized_keys') return `Unknown parameter(s): ${i.keys.join(', ')}`;
      return at ? `Parameter '${at}' ${i.message}` : i.message;
    })
    .join('; ');
}

/** Validates one custom field value against its definition; returns an error text or null. */
function checkCustomValue(def: FieldDefinition, value: unknown): string | null {
  if (value === null) return null; // null clears any custom field, `set` included (migration guide)
  const where = `custom_fields.${def.field_code}`;
  switch (def.field_type) {
    case 'varchar':
    case 'text':
    case 'phone':
      return typeof value === 'string' ? null : `Parameter '${where}' must be a string`;
    case 'double':
      return typeof value === 'number' && Number.isFinite(value) ? null : `Parameter '${where}' must be a number`;
    case 'int':
      return Number.isInteger(value) ? null : `Parameter '${where}' must be an integer`;
    case 'date':
      return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) ? null : `Parameter '${where}' must be a date YYYY-MM-DD`;
    case 'enum':
      return Number.isInteger(value) && def.options?.some((o) => o.id === value) ? null : `Parameter '${where}' must be one of the field's option ids`;
    case 'set':
      return Array.isArray(value) && value.length > 0 && value.every((v) => Number.isInteger(v) && def.options?.some((o) => o.id === v))
        ? null
        : `Parameter '${where}' must be a non-empty array of the field's option ids (null clears it)`;
    case 'monetary': {
      const parsed = z.strictObject({ value: z.number(), currency: z.string() }).safeParse(value);
      return parsed.success ? null : `Parameter '${where}' must be an object {value, currency}`;
    }
    default:
      return null;
  }
}

/** Validates a POST (create) or PATCH (update) body of an entity, custom field keys included. */
export function validateWrite(entity: PipedriveEntity, body: unknown, mode: 'create' | 'update', fields: FieldCatalogue): ValidationResult {
  const schema = mode === 'create' ? createSchemas[entity] : updateSchemas[entity];
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) return { ok: false, error: `Validation failed: ${describeIssues(parsed.error)}` };
  const custom = parsed.data['custom_fields'];
  if (custom !== undefined) {
    for (const [key, value] of Object.entries(custom as Record<string, unknown>)) {
      const def = fields.custom(entity, key);
      if (!def) return { ok: false, error: `Validation failed: Unknown custom field key '${key}'` };
      const problem = checkCustomValue(def, value);
      if (problem) return { ok: false, error: `Validation failed: ${problem}` };
    }
  }
  return { ok: true, body: parsed.data };
}

/** Query parameters of the v2 list endpoints (`getPersons`, `getOrganizations`, `getDeals`). */
export const listQuerySchema = z.strictObject({
  filter_id: z.coerce.number().int().optional(),
  ids: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'must be comma separated ids')
    .refine((s) => s.split(',').length <= 100, 'takes at most 100 ids')
    .optional(),
  owner_id: z.coerce.number().int().optional(),
  org_id: z.coerce.number().int().optional(),
  person_id: z.coerce.number().int().optional(),
  deal_id: z.coerce.number().int().optional(),
  pipeline_id: z.coerce.number().int().optional(),
  stage_id: z.coerce.number().int().optional(),
  status: z.enum(['open', 'won', 'lost', 'deleted', 'all_not_deleted']).optional(),
  updated_since: rfc3339.optional(),
  updated_until: rfc3339.optional(),
  sort_by: z.enum(['id', 'update_time', 'add_time']).optional(),
  sort_direction: z.enum(['asc', 'desc']).optional(),
  include_fields: z.string().optional(),
  custom_fields: z
    .string()
    .refine((s) => s.split(',').length <= 15, 'takes at most 15 keys')
    .optional(),
  include_option_labels: z.enum(['true', 'false']).optional(),
  include_labels: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().optional(),
  api_token: z.string().optional(),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

export const searchQuerySchema = z.strictObject({
  term: z.string(),
  fields: z.string().optional(),
  exact_match: z.enum(['true', 'false']).optional(),
  organization_id: z.coerce.number().int().optional(),
  person_id: z.coerce.number().int().optional(),
  status: z.enum(['open', 'won', 'lost']).optional(),
  include_fields: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().optional(),
  api_token: z.string().optional(),
});
export type SearchQuery = z.infer<typeof searchQuerySchema>;

export function describeQueryIssues(error: z.ZodError): string {
  return `Validation failed: ${describeIssues(error)}`;
}
