/**
 * The properties the HubSpot sandbox knows per object, in the shape of HubSpot's Properties API v3
 * (`Property` in `@hubspot/api-client` `codegen/crm/properties/models/Property.d.ts`), and the
 * value validation HubSpot applies on writes. Standard properties are the subset crmhub uses
 * (names verbatim from HubSpot); the crmhub-owned custom properties are the fixed set of
 * notes/custom-fields.md.
 */

/** HubSpot's object type ids (`0-1` contacts, `0-2` companies, `0-3` deals). */
export const OBJECT_TYPE_IDS = { contacts: '0-1', companies: '0-2', deals: '0-3' } as const;
export type ObjectName = keyof typeof OBJECT_TYPE_IDS;
export const OBJECT_NAMES = Object.keys(OBJECT_TYPE_IDS) as ObjectName[];

/** Singular names used in webhook `subscriptionType` (`contact.creation`) and error messages. */
export const SINGULAR: Record<ObjectName, string> = { contacts: 'contact', companies: 'company', deals: 'deal' };

/** Resolves `contacts`, `contact`, `0-1`, `CONTACT` to the object name; null when unknown. */
export function resolveObjectName(value: string): ObjectName | null {
  const v = value.toLowerCase();
  for (const name of OBJECT_NAMES) {
    if (v === name || v === SINGULAR[name] || v === OBJECT_TYPE_IDS[name]) return name;
  }
  return null;
}

export interface PropertyOption {
  label: string;
  value: string;
  displayOrder: number;
  hidden: boolean;
  description?: string;
}

/** A property definition as the Properties API returns it. */
export interface PropertyDefinition {
  name: string;
  label: string;
  type: 'string' | 'number' | 'date' | 'datetime' | 'enumeration' | 'bool' | 'phone_number';
  fieldType: string;
  groupName: string;
  description: string;
  options: PropertyOption[];
  displayOrder: number;
  hasUniqueValue: boolean;
  hidden: boolean;
  hubspotDefined?: boolean;
  calculated: boolean;
  externalOptions: boolean;
  formField: boolean;
  archived: boolean;
  createdAt: string;
  updatedAt: string;
  modificationMetadata: { archivable: boolean; readOnlyDefinition: boolean; readOnlyValue: boolean };
}

const STANDARD_CREATED = '2019-08-06T02:41:52.261Z';

function options(values: string[]): PropertyOption[] {
  return values.map((value, i) => ({ label: value.replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase()), value, displayOrder: i, hidden: false }));
}

interface Spec {
  name: string;
  label: string;
  type: PropertyDefinition['type'];
  fieldType: string;
  options?: string[];
  unique?: boolean;
  readOnly?: boolean;
  /** Calculated by HubSpot (modified/created times, ids): never written by API callers. */
  calculated?: boolean;
  /** Options come from elsewhere (owners): any value accepted. */
  external?: boolean;
}

function standard(spec: Spec, group: string): PropertyDefinition {
  return {
    name: spec.name,
    label: spec.label,
    type: spec.type,
    fieldType: spec.fieldType,
    groupName: group,
    description: '',
    options: options(spec.options ?? []),
    displayOrder: -1,
    hasUniqueValue: spec.unique ?? false,
    hidden: false,
    hubspotDefined: true,
    calculated: spec.calculated ?? false,
    externalOptions: spec.external ?? false,
    formField: !spec.readOnly,
    archived: false,
    createdAt: STANDARD_CREATED,
    updatedAt: STANDARD_CREATED,
    modificationMetadata: { archivable: false, readOnlyDefinition: true, readOnlyValue: spec.readOnly ?? false },
  };
}

/** A property created by a user or integration (no `hubspotDefined`). */
export function customProperty(spec: Spec, group: string, now: string): PropertyDefinition {
  const def = standard(spec, group);
  delete def.hubspotDefined;
  def.createdAt = now;
  def.updatedAt = now;
  def.formField = false;
  def.modificationMetadata = { archivable: true, readOnlyDefinition: false, readOnlyValue: false };
  return def;
}

const LIFECYCLE = ['subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer', 'evangelist', 'other'];
const DEAL_STAGES = ['appointmentscheduled', 'qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin', 'contractsent', 'closedwon', 'closedlost'];

const COMMON: Spec[] = [
  { name: 'hs_object_id', label: 'Record ID', type: 'number', fieldType: 'number', unique: true, readOnly: true, calculated: true },
  { name: 'createdate', label: 'Create Date', type: 'datetime', fieldType: 'date', readOnly: true, calculated: true },
  { name: 'hs_lastmodifieddate', label: 'Object last modified date/time', type: 'datetime', fieldType: 'date', readOnly: true, calculated: true },
  { name: 'hubspot_owner_id', label: 'Owner', type: 'enumeration', fieldType: 'select', external: true },
  { name: 'hs_merged_object_ids', label: 'Merged record IDs', type: 'enumeration', fieldType: 'checkbox', readOnly: true, calculated: true, external: true },
];

const STANDARD_SPECS: Record<ObjectName, { group: string; specs: Spec[] }> = {
  contacts: {
    group: 'contactinformation',
    specs: [
      { name: 'email', label: 'Email', type: 'string', fieldType: 'text', unique: true },
      { name: 'firstname', label: 'First Name', type: 'string', fieldType: 'text' },
      { name: 'lastname', label: 'Last Name', type: 'string', fieldType: 'text' },
      { name: 'phone', label: 'Phone Number', type: 'string', fieldType: 'phonenumber' },
      { name: 'company', label: 'Company Name', type: 'string', fieldType: 'text' },
      { name: 'jobtitle', label: 'Job Title', type: 'string', fieldType: 'text' },
      { name: 'lifecyclestage', label: 'Lifecycle Stage', type: 'enumeration', fieldType: 'radio', options: LIFECYCLE },
      { name: 'lastmodifieddate', label: 'Last Modified Date', type: 'datetime', fieldType: 'date', readOnly: true, calculated: true },
      { name: 'hs_additional_emails', label: 'Additional email addresses', type: 'enumeration', fieldType: 'checkbox', readOnly: true, external: true },
      ...COMMON,
    ],
  },
  companies: {
    group: 'companyinformation',
    specs: [
      { name: 'name', label: 'Company name', type: 'string', fieldType: 'text' },
      { name: 'domain', label: 'Company Domain Name', type: 'string', fieldType: 'text' },
      { name: 'industry', label: 'Industry', type: 'string', fieldType: 'text' },
      { name: 'numberofemployees', label: 'Number of Employees', type: 'number', fieldType: 'number' },
      ...COMMON,
    ],
  },
  deals: {
    group: 'dealinformation',
    specs: [
      { name: 'dealname', label: 'Deal Name', type: 'string', fieldType: 'text' },
      { name: 'dealstage', label: 'Deal Stage', type: 'enumeration', fieldType: 'radio', options: DEAL_STAGES },
      { name: 'amount', label: 'Amount', type: 'number', fieldType: 'number' },
      { name: 'closedate', label: 'Close Date', type: 'datetime', fieldType: 'date' },
      { name: 'pipeline', label: 'Pipeline', type: 'enumeration', fieldType: 'select', options: ['default'] },
      ...COMMON,
    ],
  },
};

const PLAN = ['free', 'starter', 'pro', 'enterprise'];
const CUSTOM_SPECS: Record<ObjectName, Spec[]> = {
  contacts: [
    { name: 'crmhub_id', label: 'crmhub id', type: 'string', fieldType: 'text', unique: true },
    { name: 'crmhub_plan', label: 'Plan', type: 'enumeration', fieldType: 'select', options: PLAN },
    { name: 'crmhub_product_usage_score', label: 'Product usage score', type: 'number', fieldType: 'number' },
    { name: 'crmhub_engagement_score', label: 'Engagement score', type: 'number', fieldType: 'number' },
    { name: 'crmhub_churn_risk', label: 'Churn risk', type: 'enumeration', fieldType: 'select', options: ['low', 'medium', 'high'] },
    { name: 'crmhub_audiences', label: 'Audiences', type: 'enumeration', fieldType: 'checkbox', options: ['trial_users', 'power_users', 'at_risk', 'newsletter'] },
  ],
  companies: [
    { name: 'crmhub_id', label: 'crmhub id', type: 'string', fieldType: 'text', unique: true },
    { name: 'crmhub_plan', label: 'Plan', type: 'enumeration', fieldType: 'select', options: PLAN },
    { name: 'crmhub_seats', label: 'Seats', type: 'number', fieldType: 'number' },
  ],
  deals: [{ name: 'crmhub_id', label: 'crmhub id', type: 'string', fieldType: 'text', unique: true }],
};

/** A fresh catalog: standard properties plus the crmhub custom ones, per object. */
export function defaultCatalog(now: string): Record<ObjectName, Map<string, PropertyDefinition>> {
  const out = {} as Record<ObjectName, Map<string, PropertyDefinition>>;
  for (const object of OBJECT_NAMES) {
    const { group, specs } = STANDARD_SPECS[object];
    const map = new Map<string, PropertyDefinition>();
    for (const spec of specs) map.set(spec.name, standard(spec, group));
    for (const spec of CUSTOM_SPECS[object]) map.set(spec.name, customProperty(spec, group, now));
    out[object] = map;
  }
  return out;
}

/** One failed property of a write, in the shape HubSpot puts inside "Property values were not valid: [...]". */
export interface PropertyIssue {
  isValid: false;
  message: string;
  error: 'PROPERTY_DOESNT_EXIST' | 'INVALID_EMAIL' | 'INVALID_OPTION' | 'INVALID_INTEGER' | 'INVALID_DATE' | 'INVALID_BOOLEAN' | 'READ_ONLY_VALUE';
  name: string;
  localizedErrorMessage: string;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function issue(error: PropertyIssue['error'], name: string, message: string): PropertyIssue {
  return { isValid: false, message, error, name, localizedErrorMessage: message };
}

/**
 * Checks one value against its property and returns the value HubSpot would store (numbers
 * normalised, dates as ISO, emails lower-cased) or an issue. `""` clears a value (HubSpot docs:
 * "to clear a property value, pass an empty string").
 */
export function normaliseValue(def: PropertyDefinition | undefined, name: string, raw: unknown): { value: string | null } | { issue: PropertyIssue } {
  if (!def) return { issue: issue('PROPERTY_DOESNT_EXIST', name, `Property "${name}" does not exist`) };
  if (def.modificationMetadata.readOnlyValue) return { issue: issue('READ_ONLY_VALUE', name, `${name} is a read only property; its value cannot be set.`) };
  if (raw === null || raw === undefined || raw === '') return { value: null };
  const value = typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : JSON.stringify(raw);
  switch (def.type) {
    case 'number': {
      const n = Number(value);
      if (!Number.isFinite(n) || value.trim() === '') return { issue: issue('INVALID_INTEGER', name, `${value} is not a valid number.`) };
      return { value: String(n) };
    }
    case 'bool':
      if (value !== 'true' && value !== 'false') return { issue: issue('INVALID_BOOLEAN', name, `${value} is not a valid boolean.`) };
      return { value };
    case 'date':
    case 'datetime': {
      const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
      if (!Number.isFinite(ms)) return { issue: issue('INVALID_DATE', name, `${value} is not a valid date.`) };
      return { value: new Date(ms).toISOString() };
    }
    case 'enumeration': {
      if (def.externalOptions) return { value };
      const allowed = new Set(def.options.map((o) => o.value));
      const parts = def.fieldType === 'checkbox' ? value.split(';').filter((p) => p !== '') : [value];
      const bad = parts.find((p) => !allowed.has(p));
      if (bad !== undefined) {
        const list = def.options.map((o) => `label: "${o.label}"\nvalue: "${o.value}"`).join(', ');
        return { issue: issue('INVALID_OPTION', name, `${bad} was not one of the allowed options: [${list}]`) };
      }
      return { value: parts.join(';') };
    }
    default:
      if (name === 'email') {
        if (!EMAIL_RE.test(value)) return { issue: issue('INVALID_EMAIL', name, `Email address ${value} is invalid`) };
        return { value: value.toLowerCase() };
      }
      return { value };
  }
}

/** Comparable form of a stored value for search filters and sorts. */
export function comparable(def: PropertyDefinition | undefined, value: string): number | string {
  if (def && (def.type === 'number' || def.type === 'date' || def.type === 'datetime')) {
    const cached = numericCache.get(value);
    if (cached !== undefined) return cached;
    const n = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : Date.parse(value);
    const out = Number.isFinite(n) ? n : value.toLowerCase();
    // Searches over 10k records parse the same timestamps again and again; a bounded cache keeps them cheap.
    if (numericCache.size > 200_000) numericCache.clear();
    numericCache.set(value, out);
    return out;
  }
  return value.toLowerCase();
}
const numericCache = new Map<string, number | string>();
