/**
 * What the Salesforce connector syncs and the limits the engine throttles it by.
 * Limits: crm-reference README §2.6 (daily allocation in `Sforce-Limit-Info`; 25 concurrent
 * long-running requests; no per-second window), §2.4 (collections ≤ 200 records per call).
 */
import type { ConnectorDeclaration, ObjectDeclaration } from '../../src/connector-kit/connector.ts';

/** crmhub's external id field on every synced object (notes/custom-fields.md). */
export const CRMHUB_ID_FIELD = 'Crmhub_Id__c';

/** sObject Collections take at most 200 records per request (REST API Developer Guide, "sObject Collections"). */
export const COLLECTION_MAX = 200;

/** Default record count from which a write goes through Bulk API 2.0 instead of collections. */
export const DEFAULT_BULK_THRESHOLD = 2_000;

/**
 * Most records one `write()` takes: the engine hands over this many at once for large loads, and
 * the connector sends them as one Bulk API 2.0 ingest job (above the threshold) or as collections.
 */
export const BULK_BATCH_MAX = 10_000;

const MODIFIED = 'SystemModstamp';

export const SALESFORCE_OBJECTS: ObjectDeclaration[] = [
  {
    name: 'Contact',
    profileKind: 'person',
    identifierType: 'salesforce.contact',
    maxBatchSize: COLLECTION_MAX,
    bulkBatchSize: BULK_BATCH_MAX,
    upsertKeys: [CRMHUB_ID_FIELD],
    modifiedField: MODIFIED,
    links: [{ field: 'AccountId', object: 'Account' }],
  },
  {
    name: 'Lead',
    profileKind: 'person',
    identifierType: 'salesforce.lead',
    maxBatchSize: COLLECTION_MAX,
    bulkBatchSize: BULK_BATCH_MAX,
    upsertKeys: [CRMHUB_ID_FIELD],
    modifiedField: MODIFIED,
    links: [
      { field: 'ConvertedContactId', object: 'Contact' },
      { field: 'ConvertedAccountId', object: 'Account' },
    ],
  },
  {
    name: 'Account',
    profileKind: 'account',
    identifierType: 'salesforce.account',
    maxBatchSize: COLLECTION_MAX,
    bulkBatchSize: BULK_BATCH_MAX,
    upsertKeys: [CRMHUB_ID_FIELD],
    modifiedField: MODIFIED,
  },
  {
    name: 'Opportunity',
    profileKind: null,
    identifierType: 'salesforce.opportunity',
    maxBatchSize: COLLECTION_MAX,
    bulkBatchSize: BULK_BATCH_MAX,
    upsertKeys: [CRMHUB_ID_FIELD],
    modifiedField: MODIFIED,
    links: [{ field: 'AccountId', object: 'Account' }],
  },
];

export const salesforceDeclaration: ConnectorDeclaration = {
  slug: 'salesforce',
  displayName: 'Salesforce',
  objects: SALESFORCE_OBJECTS,
  limits: {
    // Salesforce has no per-second window; this keeps a polite pace and stays far below the
    // 25 concurrent long-running requests (README §2.6). The real budget is the daily allocation.
    requestsPerWindow: 25,
    windowMs: 1_000,
    maxConcurrent: 10,
    // No dailyQuota here: the allocation depends on edition and licences (15,000 on Developer
    // Edition, 100,000+ on Enterprise); the live figure comes from Sforce-Limit-Info via quota().
  },
  capabilities: {
    batchUpsert: true,
    bulk: true,
    webhooks: true,
    deletes: true,
    fieldChangeTimes: false,
  },
};

export function findObject(name: string): ObjectDeclaration | undefined {
  return SALESFORCE_OBJECTS.find((o) => o.name === name);
}
