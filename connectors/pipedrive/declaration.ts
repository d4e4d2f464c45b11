/**
 * What the Pipedrive connector syncs and within which limits (crm-reference §3, issue 8).
 *
 * Pipedrive has no batch writes (§4.1): `maxBatchSize` 100 is how many single-record calls one
 * `write()` fans out (paced by the client to the burst limit), and how many ids one `readByIds`
 * reads in a single `GET …?ids=` call (the `ids` filter takes at most 100).
 */
import type { ConnectorDeclaration } from '../../src/connector-kit/connector.ts';
import type { PipedriveEntity } from './client.ts';

export const ENTITY_BY_OBJECT: Readonly<Record<string, PipedriveEntity>> = {
  persons: 'person',
  organizations: 'organization',
  deals: 'deal',
};

export const OBJECT_BY_ENTITY: Readonly<Record<PipedriveEntity, string>> = {
  person: 'persons',
  organization: 'organizations',
  deal: 'deals',
};

/** Records per `write()` / `readByIds()` call (see above). */
export const PIPEDRIVE_BATCH = 100;

export const pipedriveDeclaration: ConnectorDeclaration = {
  slug: 'pipedrive',
  displayName: 'Pipedrive',
  objects: [
    {
      name: 'persons',
      profileKind: 'person',
      identifierType: 'pipedrive.person',
      maxBatchSize: PIPEDRIVE_BATCH,
      // Pipedrive enforces no unique fields; `email` is searched (exact match) for records never linked.
      upsertKeys: ['email', 'crmhub id'],
      modifiedField: 'update_time',
      links: [{ field: 'org_id', object: 'organizations' }],
    },
    {
      name: 'organizations',
      profileKind: 'account',
      identifierType: 'pipedrive.organization',
      maxBatchSize: PIPEDRIVE_BATCH,
      upsertKeys: ['crmhub id', 'name'],
      modifiedField: 'update_time',
    },
    {
      name: 'deals',
      profileKind: null,
      identifierType: 'pipedrive.deal',
      maxBatchSize: PIPEDRIVE_BATCH,
      upsertKeys: ['crmhub id'],
      modifiedField: 'update_time',
      links: [
        { field: 'person_id', object: 'persons' },
        { field: 'org_id', object: 'organizations' },
      ],
    },
  ],
  limits: {
    // api_token burst per 2 s is 20–120 by plan; 20 (lowest) until `x-ratelimit-limit` says more.
    requestsPerWindow: 20,
    windowMs: 2000,
    maxConcurrent: 16,
    search: { requestsPerWindow: 10, windowMs: 2000 },
  },
  capabilities: {
    batchUpsert: false,
    bulk: false,
    webhooks: true,
    deletes: true,
    fieldChangeTimes: false,
  },
};
