/**
 * The sObjects the sandbox knows (Contact, Lead, Account, Opportunity) with their standard fields
 * and the crmhub custom fields of notes/custom-fields.md. Field properties follow the describe
 * result of the REST API (`/sobjects/Contact/describe`): type, length, nillable, createable,
 * updateable, externalId, unique, idLookup, picklistValues, restrictedPicklist, referenceTo.
 */

export type SfFieldType =
  | 'id'
  | 'string'
  | 'textarea'
  | 'email'
  | 'phone'
  | 'url'
  | 'picklist'
  | 'multipicklist'
  | 'double'
  | 'int'
  | 'currency'
  | 'percent'
  | 'boolean'
  | 'date'
  | 'datetime'
  | 'reference';

export interface SfFieldDef {
  name: string;
  label: string;
  type: SfFieldType;
  /** Characters, for text types. */
  length?: number;
  precision?: number;
  scale?: number;
  nillable: boolean;
  createable: boolean;
  updateable: boolean;
  /** Required on create (not nillable, createable, no default). */
  required?: boolean;
  externalId?: boolean;
  unique?: boolean;
  idLookup?: boolean;
  picklist?: readonly string[];
  restrictedPicklist?: boolean;
  defaultValue?: string | number | boolean;
  referenceTo?: string;
  relationshipName?: string;
  custom?: boolean;
  filterable?: boolean;
  sortable?: boolean;
}

export interface SfObjectDef {
  name: string;
  label: string;
  labelPlural: string;
  keyPrefix: string;
  fields: readonly SfFieldDef[];
  /** Lower-case field name → definition. */
  byName: ReadonlyMap<string, SfFieldDef>;
}

const sys = (name: string, label: string, type: SfFieldType, extra: Partial<SfFieldDef> = {}): SfFieldDef => ({
  name,
  label,
  type,
  nillable: false,
  createable: false,
  updateable: false,
  ...extra,
});

const text = (name: string, label: string, length: number, extra: Partial<SfFieldDef> = {}): SfFieldDef => ({
  name,
  label,
  type: 'string',
  length,
  nillable: true,
  createable: true,
  updateable: true,
  ...extra,
});

const typed = (name: string, label: string, type: SfFieldType, extra: Partial<SfFieldDef> = {}): SfFieldDef => ({
  name,
  label,
  type,
  nillable: true,
  createable: true,
  updateable: true,
  ...(type === 'email' ? { length: 80 } : {}),
  ...(type === 'phone' ? { length: 40 } : {}),
  ...(type === 'url' ? { length: 255 } : {}),
  ...extra,
});

const ref = (name: string, label: string, to: string, extra: Partial<SfFieldDef> = {}): SfFieldDef => ({
  name,
  label,
  type: 'reference',
  length: 18,
  nillable: true,
  createable: true,
  updateable: true,
  referenceTo: to,
  relationshipName: name.endsWith('__c') ? name.replace(/__c$/, '__r') : name.replace(/Id$/, ''),
  ...extra,
});

const commonHead = (): SfFieldDef[] => [
  sys('Id', 'Record ID', 'id', { length: 18, idLookup: true }),
  sys('IsDeleted', 'Deleted', 'boolean', { defaultValue: false }),
];

const commonTail = (): SfFieldDef[] => [
  ref('OwnerId', 'Owner ID', 'User', { nillable: false, defaultValue: 'owner' }),
  sys('CreatedDate', 'Created Date', 'datetime'),
  ref('CreatedById', 'Created By ID', 'User', { nillable: false, createable: false, updateable: false }),
  sys('LastModifiedDate', 'Last Modified Date', 'datetime'),
  ref('LastModifiedById', 'Last Modified By ID', 'User', { nillable: false, createable: false, updateable: false }),
  sys('SystemModstamp', 'System Modstamp', 'datetime'),
];

const PLAN = ['free', 'starter', 'pro', 'enterprise'] as const;
const CHURN = ['low', 'medium', 'high'] as const;
const AUDIENCES = ['trial_users', 'power_users', 'at_risk', 'newsletter'] as const;
const LEAD_SOURCE = ['Web', 'Phone Inquiry', 'Partner Referral', 'Purchased List', 'Other'] as const;
const LEAD_STATUS = ['Open - Not Contacted', 'Working - Contacted', 'Closed - Converted', 'Closed - Not Converted'] as const;
const INDUSTRY = ['Agriculture', 'Banking', 'Communications', 'Consulting', 'Education', 'Finance', 'Healthcare', 'Manufacturing', 'Media', 'Retail', 'Technology', 'Other'] as const;
const STAGES = [
  'Prospecting',
  'Qualification',
  'Needs Analysis',
  'Value Proposition',
  'Id. Decision Makers',
  'Perception Analysis',
  'Proposal/Price Quote',
  'Negotiation/Review',
  'Closed Won',
  'Closed Lost',
] as const;

const crmhubId = (): SfFieldDef =>
  text('Crmhub_Id__c', 'Crmhub Id', 64, { externalId: true, unique: true, idLookup: true, custom: true });

/** Custom picklists created since Spring '17 are restricted by default; standard ones here are not. */
const personCustom = (): SfFieldDef[] => [
  crmhubId(),
  typed('Plan__c', 'Plan', 'picklist', { picklist: PLAN, restrictedPicklist: true, custom: true, length: 255 }),
  typed('Product_Usage_Score__c', 'Product Usage Score', 'double', { precision: 5, scale: 2, custom: true }),
  typed('Engagement_Score__c', 'Engagement Score', 'double', { precision: 5, scale: 2, custom: true }),
  typed('Churn_Risk__c', 'Churn Risk', 'picklist', { picklist: CHURN, restrictedPicklist: true, custom: true, length: 255 }),
  typed('Audiences__c', 'Audiences', 'multipicklist', { picklist: AUDIENCES, restrictedPicklist: true, custom: true, length: 4099 }),
];

function objectDef(name: string, labelPlural: string, keyPrefix: string, fields: SfFieldDef[]): SfObjectDef {
  const byName = new Map<string, SfFieldDef>();
  for (const f of fields) {
    byName.set(f.name.toLowerCase(), { filterable: true, sortable: f.type !== 'multipicklist' && f.type !== 'textarea', ...f });
  }
  return { name, label: name, labelPlural, keyPrefix, fields: [...byName.values()], byName };
}

export const SOBJECTS: ReadonlyMap<string, SfObjectDef> = new Map(
  [
    objectDef('Account', 'Accounts', '001', [
      ...commonHead(),
      text('Name', 'Account Name', 255, { nillable: false, required: true, idLookup: false }),
      typed('Website', 'Website', 'url'),
      typed('Industry', 'Industry', 'picklist', { picklist: INDUSTRY, length: 255 }),
      typed('NumberOfEmployees', 'Employees', 'int', { precision: 8, scale: 0 }),
      typed('Phone', 'Account Phone', 'phone'),
      ...commonTail(),
      crmhubId(),
      typed('Plan__c', 'Plan', 'picklist', { picklist: PLAN, restrictedPicklist: true, custom: true, length: 255 }),
      typed('Seats__c', 'Seats', 'double', { precision: 18, scale: 0, custom: true }),
    ]),
    objectDef('Contact', 'Contacts', '003', [
      ...commonHead(),
      ref('AccountId', 'Account ID', 'Account'),
      text('LastName', 'Last Name', 80, { nillable: false, required: true }),
      text('FirstName', 'First Name', 40),
      sys('Name', 'Full Name', 'string', { length: 121 }),
      typed('Email', 'Email', 'email', { idLookup: true }),
      typed('Phone', 'Business Phone', 'phone'),
      text('Title', 'Title', 128),
      typed('LeadSource', 'Lead Source', 'picklist', { picklist: LEAD_SOURCE, length: 255 }),
      ...commonTail(),
      ...personCustom(),
    ]),
    objectDef('Lead', 'Leads', '00Q', [
      ...commonHead(),
      text('LastName', 'Last Name', 80, { nillable: false, required: true }),
      text('FirstName', 'First Name', 40),
      sys('Name', 'Full Name', 'string', { length: 121 }),
      typed('Email', 'Email', 'email', { idLookup: true }),
      typed('Phone', 'Phone', 'phone'),
      text('Title', 'Title', 128),
      text('Company', 'Company', 255, { nillable: false, required: true }),
      typed('Status', 'Status', 'picklist', { picklist: LEAD_STATUS, nillable: false, defaultValue: 'Open - Not Contacted', length: 255 }),
      typed('LeadSource', 'Lead Source', 'picklist', { picklist: LEAD_SOURCE, length: 255 }),
      sys('IsConverted', 'Converted', 'boolean', { defaultValue: false }),
      sys('ConvertedDate', 'Converted Date', 'date', { nillable: true }),
      ref('ConvertedContactId', 'Converted Contact ID', 'Contact', { createable: false, updateable: false }),
      ref('ConvertedAccountId', 'Converted Account ID', 'Account', { createable: false, updateable: false }),
      ...commonTail(),
      ...personCustom(),
    ]),
    objectDef('Opportunity', 'Opportunities', '006', [
      ...commonHead(),
      ref('AccountId', 'Account ID', 'Account'),
      text('Name', 'Name', 120, { nillable: false, required: true }),
      typed('StageName', 'Stage', 'picklist', { picklist: STAGES, nillable: false, required: true, length: 255 }),
      typed('Amount', 'Amount', 'currency', { precision: 18, scale: 2 }),
      typed('CloseDate', 'Close Date', 'date', { nillable: false, required: true }),
      sys('IsClosed', 'Closed', 'boolean', { defaultValue: false }),
      sys('IsWon', 'Won', 'boolean', { defaultValue: false }),
      ...commonTail(),
      crmhubId(),
    ]),
  ].map((o) => [o.name.toLowerCase(), o]),
);

/** Looks an sObject up case-insensitively, as the API does. */
export function findObject(name: string): SfObjectDef | undefined {
  return SOBJECTS.get(name.toLowerCase());
}

/** Other key prefixes the sandbox mints ids with (not queryable objects). */
export const KEY_PREFIXES = {
  user: '005',
  org: '00D',
  queryLocator: '01g',
  outboundAction: '04k',
  outboundNotification: '04l',
  ingestJob: '750',
} as const;

const displayType: Record<SfFieldType, string> = {
  id: 'id',
  string: 'string',
  textarea: 'textarea',
  email: 'email',
  phone: 'phone',
  url: 'url',
  picklist: 'picklist',
  multipicklist: 'multipicklist',
  double: 'double',
  int: 'int',
  currency: 'currency',
  percent: 'percent',
  boolean: 'boolean',
  date: 'date',
  datetime: 'datetime',
  reference: 'reference',
};

const soapType: Record<SfFieldType, string> = {
  id: 'tns:ID',
  string: 'xsd:string',
  textarea: 'xsd:string',
  email: 'xsd:string',
  phone: 'xsd:string',
  url: 'xsd:string',
  picklist: 'xsd:string',
  multipicklist: 'xsd:string',
  double: 'xsd:double',
  int: 'xsd:int',
  currency: 'xsd:double',
  percent: 'xsd:double',
  boolean: 'xsd:boolean',
  date: 'xsd:date',
  datetime: 'xsd:dateTime',
  reference: 'tns:ID',
};

/** One entry of `fields` in a describe result. */
export function describeField(f: SfFieldDef): Record<string, unknown> {
  const isText = ['string', 'textarea', 'email', 'phone', 'url', 'picklist', 'multipicklist', 'id', 'reference'].includes(f.type);
  return {
    aggregatable: f.type !== 'textarea' && f.type !== 'multipicklist',
    autoNumber: false,
    byteLength: isText ? (f.length ?? 0) * 3 : 0,
    calculated: f.name === 'Name' && !f.createable,
    caseSensitive: false,
    createable: f.createable,
    custom: f.custom ?? false,
    defaultValue: f.defaultValue === 'owner' ? null : (f.defaultValue ?? null),
    defaultedOnCreate: f.defaultValue !== undefined || !f.createable,
    digits: f.type === 'int' ? (f.precision ?? 9) : 0,
    externalId: f.externalId ?? false,
    filterable: f.filterable ?? true,
    groupable: !['double', 'currency', 'percent', 'textarea', 'multipicklist', 'datetime'].includes(f.type),
    idLookup: f.idLookup ?? false,
    label: f.label,
    length: isText ? (f.length ?? 0) : 0,
    name: f.name,
    nameField: f.name === 'Name',
    nillable: f.nillable,
    picklistValues: (f.picklist ?? []).map((value, i) => ({
      active: true,
      defaultValue: f.defaultValue === value || (f.name === 'Status' && i === 0),
      label: value,
      validFor: null,
      value,
    })),
    precision: ['double', 'currency', 'percent'].includes(f.type) ? (f.precision ?? 18) : 0,
    referenceTo: f.referenceTo ? [f.referenceTo] : [],
    relationshipName: f.relationshipName ?? null,
    restrictedPicklist: f.restrictedPicklist ?? false,
    scale: f.scale ?? 0,
    soapType: soapType[f.type],
    sortable: f.sortable ?? true,
    type: displayType[f.type],
    unique: f.unique ?? false,
    updateable: f.updateable,
  };
}

/** The object-level properties shared by describeGlobal and describe. */
export function describeObjectSummary(o: SfObjectDef, base: string): Record<string, unknown> {
  return {
    activateable: false,
    createable: true,
    custom: false,
    customSetting: false,
    deletable: true,
    deprecatedAndHidden: false,
    feedEnabled: true,
    keyPrefix: o.keyPrefix,
    label: o.label,
    labelPlural: o.labelPlural,
    layoutable: true,
    mergeable: o.name !== 'Opportunity',
    mruEnabled: true,
    name: o.name,
    queryable: true,
    replicateable: true,
    retrieveable: true,
    searchable: true,
    triggerable: true,
    undeletable: true,
    updateable: true,
    urls: {
      sobject: `${base}/sobjects/${o.name}`,
      describe: `${base}/sobjects/${o.name}/describe`,
      rowTemplate: `${base}/sobjects/${o.name}/{ID}`,
    },
  };
}
