/**
 * Describe → `RemoteField`s, and the type-aware value conversion for writes (multi-select picklists
 * are `;`-separated strings, dates are `YYYY-MM-DD`, numbers and booleans are JSON scalars).
 * Field types: SOAP API Developer Guide, "Field Types".
 */
import type { ObjectSchema, RemoteField } from '../../src/connector-kit/connector.ts';
import type { JsonValue } from '../../src/core/types.ts';
import type { DescribeField, DescribeResult } from './client.ts';

const TYPE_MAP: Record<string, RemoteField['type']> = {
  string: 'string',
  textarea: 'string',
  email: 'string',
  phone: 'string',
  url: 'string',
  id: 'string',
  encryptedstring: 'string',
  combobox: 'enum',
  picklist: 'enum',
  multipicklist: 'set',
  boolean: 'boolean',
  int: 'number',
  long: 'number',
  double: 'number',
  currency: 'number',
  percent: 'number',
  date: 'date',
  datetime: 'datetime',
  reference: 'reference',
};

/** Compound and binary fields are left out of default field lists (their parts are listed too). */
export const UNREADABLE_TYPES = new Set(['address', 'location', 'base64', 'anyType', 'complexvalue']);

export function toRemoteField(field: DescribeField): RemoteField {
  const options = field.picklistValues
    .filter((p) => p.active !== false)
    .map((p) => ({ value: p.value, label: p.label ?? p.value }));
  return {
    name: field.name,
    label: field.label,
    type: TYPE_MAP[field.type] ?? 'other',
    readOnly: !field.updateable && !field.createable,
    unique: field.unique || field.externalId || field.type === 'id',
    required: !field.nillable && field.createable && !field.defaultedOnCreate && field.type !== 'boolean',
    custom: field.custom,
    ...(options.length > 0 ? { options } : {}),
  };
}

export function toObjectSchema(describe: DescribeResult, object: string): ObjectSchema {
  return { object, fields: describe.fields.map(toRemoteField) };
}

/** Converts a profile-side value to what Salesforce accepts for the field, when its type is known. */
export function toSalesforceValue(value: JsonValue, field: DescribeField | undefined): JsonValue {
  if (value === null) return null;
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(';');
  if (field === undefined) return value;
  switch (field.type) {
    case 'date':
      if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)) return value.slice(0, 10);
      if (typeof value === 'number') return new Date(value).toISOString().slice(0, 10);
      return value;
    case 'datetime':
      if (typeof value === 'number') return new Date(value).toISOString();
      return value;
    case 'int':
    case 'long':
    case 'double':
    case 'currency':
    case 'percent':
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
      return value;
    case 'boolean':
      if (value === 'true') return true;
      if (value === 'false') return false;
      return value;
    default:
      return typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
  }
}

/** Converts a text value (Outbound Message XML) to its JSON type when the field's type is known. */
export function fromSalesforceText(value: JsonValue, field: DescribeField | undefined): JsonValue {
  if (typeof value !== 'string' || field === undefined) return value;
  switch (field.type) {
    case 'boolean':
      return value === 'true';
    case 'int':
    case 'long':
    case 'double':
    case 'currency':
    case 'percent':
      return value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
    default:
      return value;
  }
}
