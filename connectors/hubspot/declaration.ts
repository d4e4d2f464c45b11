/**
 * What the HubSpot connector declares to the engine: its objects, limits and capabilities.
 * Limits (reference README §1.6, HubSpot "Private apps overview" rate-limit table and changelog
 * "Increasing our API limits"): 100 requests per rolling 10 s for a Free/Starter private app
 * (190 Professional/Enterprise), search ~5 requests/s per account and exempt from the 10-second
 * window, 250,000 requests per day (Free/Starter). The figures actually in force are read back
 * from `X-HubSpot-RateLimit-*` into `quota()`.
 */
import type { ConnectorDeclaration, ConnectorLimits, ObjectDeclaration } from '../../src/connector-kit/connector.ts';

/** Per-object facts the connector's code uses beside the declaration. */
export interface HubSpotObjectInfo {
  declaration: ObjectDeclaration;
  /** Search-indexed modified-time property used for incremental pulls (reference §1.2). */
  modifiedProperty: string;
  /** Singular used in webhook `subscriptionType` (`contact.propertyChange`). */
  singular: string;
  /** crmhub-owned custom properties (notes/custom-fields.md) that `ensureCustomProperties` creates. */
  customProperties: CustomPropertySpec[];
}

export interface CustomPropertySpec {
  name: string;
  label: string;
  type: 'string' | 'number' | 'enumeration';
  fieldType: 'text' | 'number' | 'select' | 'checkbox';
  hasUniqueValue?: boolean;
  options?: string[];
}

const PLAN = ['free', 'starter', 'pro', 'enterprise'];
const CRMHUB_ID: CustomPropertySpec = { name: 'crmhub_id', label: 'crmhub id', type: 'string', fieldType: 'text', hasUniqueValue: true };

export const HUBSPOT_OBJECTS: Record<string, HubSpotObjectInfo> = {
  contacts: {
    declaration: {
      name: 'contacts',
      profileKind: 'person',
      identifierType: 'hubspot.contact',
      maxBatchSize: 100,
      upsertKeys: ['email', 'crmhub_id'],
      modifiedField: 'lastmodifieddate',
      links: [{ field: 'associations.companies', object: 'companies' }],
    },
    modifiedProperty: 'lastmodifieddate',
    singular: 'contact',
    customProperties: [
      CRMHUB_ID,
      { name: 'crmhub_plan', label: 'Plan', type: 'enumeration', fieldType: 'select', options: PLAN },
      { name: 'crmhub_product_usage_score', label: 'Product usage score', type: 'number', fieldType: 'number' },
      { name: 'crmhub_engagement_score', label: 'Engagement score', type: 'number', fieldType: 'number' },
      { name: 'crmhub_churn_risk', label: 'Churn risk', type: 'enumeration', fieldType: 'select', options: ['low', 'medium', 'high'] },
      { name: 'crmhub_audiences', label: 'Audiences', type: 'enumeration', fieldType: 'checkbox', options: ['trial_users', 'power_users', 'at_risk', 'newsletter'] },
    ],
  },
  companies: {
    declaration: {
      name: 'companies',
      profileKind: 'account',
      identifierType: 'hubspot.company',
      maxBatchSize: 100,
      upsertKeys: ['crmhub_id'],
      modifiedField: 'hs_lastmodifieddate',
    },
    modifiedProperty: 'hs_lastmodifieddate',
    singular: 'company',
    customProperties: [
      CRMHUB_ID,
      { name: 'crmhub_plan', label: 'Plan', type: 'enumeration', fieldType: 'select', options: PLAN },
      { name: 'crmhub_seats', label: 'Seats', type: 'number', fieldType: 'number' },
    ],
  },
  deals: {
    declaration: {
      name: 'deals',
      profileKind: null,
      identifierType: 'hubspot.deal',
      maxBatchSize: 100,
      upsertKeys: ['crmhub_id'],
      modifiedField: 'hs_lastmodifieddate',
      links: [
        { field: 'associations.contacts', object: 'contacts' },
        { field: 'associations.companies', object: 'companies' },
      ],
    },
    modifiedProperty: 'hs_lastmodifieddate',
    singular: 'deal',
    customProperties: [CRMHUB_ID],
  },
};

/** Object name for a webhook `subscriptionType` prefix (`contact` → `contacts`). */
export function objectForSingular(singular: string): string | undefined {
  return Object.keys(HUBSPOT_OBJECTS).find((name) => HUBSPOT_OBJECTS[name]?.singular === singular);
}

/** Defaults: private app, Free/Starter tier (the safe floor); override per portal. */
export const DEFAULT_HUBSPOT_LIMITS: ConnectorLimits = {
  requestsPerWindow: 100,
  windowMs: 10_000,
  maxConcurrent: 5,
  // HubSpot: 5 requests per second per account for search (changelog "Increasing our API limits").
  // Incremental and full pulls page through the search endpoint, so the engine keeps `readChanges`
  // within this budget as well as the general one.
  search: { requestsPerWindow: 5, windowMs: 1_000, usedBy: ['readChanges'] },
  dailyQuota: 250_000,
};

export function hubspotDeclaration(limits: Partial<ConnectorLimits> = {}): ConnectorDeclaration {
  return {
    slug: 'hubspot',
    displayName: 'HubSpot',
    objects: Object.values(HUBSPOT_OBJECTS).map((o) => o.declaration),
    limits: { ...DEFAULT_HUBSPOT_LIMITS, ...limits },
    capabilities: { batchUpsert: true, bulk: false, webhooks: true, deletes: true, fieldChangeTimes: true },
  };
}
