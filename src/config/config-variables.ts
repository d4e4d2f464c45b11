/**
 * Every setting crmhub reads (design.md §6, "Environment"), with its default, whether it is a
 * secret, and where it lives in the structured {@link CrmhubConfig} and in `crmhub.config.yaml`.
 * This table is the single source: the loader, the redaction list and the docs are derived from it.
 */

/** One setting: its environment variable name, its path in the structured config, and metadata. */
export interface ConfigVariable {
  /** Environment variable name, also accepted verbatim as a top-level key in `crmhub.config.yaml`. */
  name: string;
  /** Path in the structured config object, also accepted as nested keys in `crmhub.config.yaml`. */
  path: readonly [string] | readonly [string, string];
  description: string;
  /** Default as a string (as it would be written in the environment); absent = unset. */
  default?: string;
  /** Secrets are redacted from logs and error messages and never echoed back. */
  secret: boolean;
}

/** All settings, in the order of design.md §6 (crmhub's own additions after). */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  { name: 'CRMHUB_DATABASE_URL', path: ['databaseUrl'], description: '`sqlite:PATH` or `postgres://…`', default: 'sqlite:./.crmhub/crmhub.db', secret: false },
  { name: 'CRMHUB_REDIS_URL', path: ['redisUrl'], description: 'optional; shares rate limits across processes', secret: false },
  { name: 'CRMHUB_MAPPINGS_DIR', path: ['mappingsDir'], description: 'folder of mapping files', default: './mappings', secret: false },
  { name: 'CRMHUB_PORT', path: ['port'], description: 'HTTP port (0 = any free port)', default: '8080', secret: false },
  { name: 'CRMHUB_HOST', path: ['host'], description: 'HTTP listen address', default: '127.0.0.1', secret: false },
  { name: 'CRMHUB_WRITE_KEYS', path: ['writeKeys'], description: 'comma-separated write keys for the event API (HTTP Basic user name)', secret: true },
  { name: 'CRMHUB_ADMIN_TOKEN', path: ['adminToken'], description: 'bearer token for admin routes and profile reads', secret: true },
  { name: 'HUBSPOT_ACCESS_TOKEN', path: ['hubspot', 'accessToken'], description: 'HubSpot private-app or OAuth access token', secret: true },
  { name: 'HUBSPOT_CLIENT_SECRET', path: ['hubspot', 'clientSecret'], description: 'HubSpot app client secret; verifies webhook signatures', secret: true },
  { name: 'HUBSPOT_BASE_URL', path: ['hubspot', 'baseUrl'], description: 'HubSpot API base URL', default: 'https://api.hubapi.com', secret: false },
  { name: 'SALESFORCE_INSTANCE_URL', path: ['salesforce', 'instanceUrl'], description: 'Salesforce instance (My Domain) URL', secret: false },
  { name: 'SALESFORCE_ACCESS_TOKEN', path: ['salesforce', 'accessToken'], description: 'Salesforce session / OAuth access token', secret: true },
  { name: 'SALESFORCE_CLIENT_ID', path: ['salesforce', 'clientId'], description: 'connected-app consumer key (client credentials flow)', secret: false },
  { name: 'SALESFORCE_CLIENT_SECRET', path: ['salesforce', 'clientSecret'], description: 'connected-app consumer secret', secret: true },
  { name: 'SALESFORCE_LOGIN_URL', path: ['salesforce', 'loginUrl'], description: 'OAuth login URL', default: 'https://login.salesforce.com', secret: false },
  { name: 'SALESFORCE_API_VERSION', path: ['salesforce', 'apiVersion'], description: 'REST API version, e.g. `62.0`', default: '62.0', secret: false },
  { name: 'SALESFORCE_WEBHOOK_TOKEN', path: ['salesforce', 'webhookToken'], description: '`?token=` shared secret of Outbound Message / change-event webhooks', secret: true },
  { name: 'SALESFORCE_ORG_ID', path: ['salesforce', 'orgId'], description: '18-character org id; Outbound Messages from other orgs are refused', secret: false },
  { name: 'PIPEDRIVE_API_TOKEN', path: ['pipedrive', 'apiToken'], description: 'Pipedrive API token', secret: true },
  { name: 'PIPEDRIVE_BASE_URL', path: ['pipedrive', 'baseUrl'], description: 'Pipedrive API base URL', default: 'https://api.pipedrive.com', secret: false },
  { name: 'PIPEDRIVE_WEBHOOK_USER', path: ['pipedrive', 'webhookUser'], description: 'HTTP Basic user Pipedrive webhooks must send', secret: false },
  { name: 'PIPEDRIVE_WEBHOOK_PASSWORD', path: ['pipedrive', 'webhookPassword'], description: 'HTTP Basic password Pipedrive webhooks must send', secret: true },
  { name: 'CRMHUB_LOG_LEVEL', path: ['logLevel'], description: 'pino level: fatal, error, warn, info, debug, trace, silent', default: 'info', secret: false },
  { name: 'CRMHUB_INGEST_MAX_WAIT_MS', path: ['ingest', 'maxWaitMs'], description: 'group commit: how long a request may wait for others to share its transaction, ms', default: '0', secret: false },
  { name: 'CRMHUB_INGEST_MAX_EVENTS', path: ['ingest', 'maxEvents'], description: 'group commit: most events in one transaction', default: '2000', secret: false },
  { name: 'CRMHUB_INGEST_WORKER', path: ['ingest', 'worker'], description: 'SQLite: store events from a worker thread, so HTTP parsing overlaps the writes (`on`/`off`)', default: 'on', secret: false },
  {
    name: 'CRMHUB_READ_BEFORE_WRITE',
    path: ['sync', 'readBeforeWrite'],
    description: 'lost-update guard before updates: `pull` (one incremental pull of the object per freshness window), `ids` (read the linked records, one call per batch), `off`',
    default: 'pull',
    secret: false,
  },
  {
    name: 'CRMHUB_READ_BEFORE_WRITE_FRESHNESS_MS',
    path: ['sync', 'readBeforeWriteFreshnessMs'],
    description: '`pull` guard: a pull of the object completed this recently (ms) is fresh enough, no new one runs',
    default: '60000',
    secret: false,
  },
  {
    name: 'CRMHUB_OUTBOX_LEASE_MS',
    path: ['outbox', 'leaseMs'],
    description: 'how long a worker holds claimed outbox rows (and webhook receipts) before another process may take them over, ms; longer than the slowest CRM write',
    default: '60000',
    secret: false,
  },
];

/** Names of the secret settings (redacted from logs and errors). */
export const SECRET_VARIABLES: readonly string[] = CONFIG_VARIABLES.filter((v) => v.secret).map((v) => v.name);
