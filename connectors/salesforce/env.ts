/**
 * Builds the Salesforce connector from `SALESFORCE_*` settings (design.md §6 "Environment").
 * Access token + instance URL, or client id + secret + login (My Domain) URL for the OAuth client
 * credentials flow, optionally with `SALESFORCE_REFRESH_TOKEN` for the refresh token flow.
 */
import { z } from 'zod';
import type { ConnectorEnvOptions } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { SalesforceClient, type SalesforceAuth } from './client.ts';
import { SalesforceConnector } from './salesforce-connector.ts';

/** Default API version (crm-reference README §2.1: pick one; jsforce would default to 50.0). */
export const DEFAULT_API_VERSION = '62.0';

const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));
const optionalNumber = optionalText.pipe(
  z
    .string()
    .optional()
    .transform((v) => (v === undefined ? undefined : Number(v)))
    .pipe(z.number().positive().optional()),
);

const envSchema = z.object({
  SALESFORCE_INSTANCE_URL: optionalText.pipe(z.url().optional()),
  SALESFORCE_ACCESS_TOKEN: optionalText,
  SALESFORCE_CLIENT_ID: optionalText,
  SALESFORCE_CLIENT_SECRET: optionalText,
  SALESFORCE_LOGIN_URL: optionalText.pipe(z.url().optional()),
  SALESFORCE_REFRESH_TOKEN: optionalText,
  SALESFORCE_API_VERSION: optionalText.pipe(z.string().regex(/^\d{2,3}\.\d$/).optional()),
  SALESFORCE_WEBHOOK_TOKEN: optionalText,
  SALESFORCE_ORG_ID: optionalText.pipe(z.string().regex(/^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/).optional()),
  /** Writes of at least this many records use Bulk API 2.0 (default 2,000). */
  SALESFORCE_BULK_THRESHOLD: optionalNumber,
  /** Daily calls kept for other integrations: ≥ 1 a count, < 1 a share of the limit (default 0.1). */
  SALESFORCE_QUOTA_RESERVE: optionalNumber,
});

export function salesforceFromEnv(env: Record<string, string | undefined>, options: ConnectorEnvOptions = {}): SalesforceConnector | null {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    // Only the names of the bad settings: their values may be secrets.
    throw new CrmhubError('config', `invalid Salesforce settings: ${fields}`, { code: 'SALESFORCE_ENV_INVALID', context: { connector: 'salesforce' } });
  }
  const e = parsed.data;
  let auth: SalesforceAuth;
  if (e.SALESFORCE_CLIENT_ID !== undefined && e.SALESFORCE_LOGIN_URL !== undefined && e.SALESFORCE_REFRESH_TOKEN !== undefined) {
    auth = {
      kind: 'refresh_token',
      clientId: e.SALESFORCE_CLIENT_ID,
      loginUrl: e.SALESFORCE_LOGIN_URL,
      refreshToken: e.SALESFORCE_REFRESH_TOKEN,
      ...(e.SALESFORCE_CLIENT_SECRET === undefined ? {} : { clientSecret: e.SALESFORCE_CLIENT_SECRET }),
      ...(e.SALESFORCE_ACCESS_TOKEN === undefined ? {} : { accessToken: e.SALESFORCE_ACCESS_TOKEN }),
    };
  } else if (e.SALESFORCE_ACCESS_TOKEN !== undefined && e.SALESFORCE_INSTANCE_URL !== undefined) {
    auth = { kind: 'access_token', accessToken: e.SALESFORCE_ACCESS_TOKEN };
  } else if (e.SALESFORCE_CLIENT_ID !== undefined && e.SALESFORCE_CLIENT_SECRET !== undefined && e.SALESFORCE_LOGIN_URL !== undefined) {
    auth = { kind: 'client_credentials', clientId: e.SALESFORCE_CLIENT_ID, clientSecret: e.SALESFORCE_CLIENT_SECRET, loginUrl: e.SALESFORCE_LOGIN_URL };
  } else {
    return null;
  }
  const clientName = options.clientName ?? 'crmhub';
  const client = new SalesforceClient({
    ...(e.SALESFORCE_INSTANCE_URL === undefined ? {} : { instanceUrl: e.SALESFORCE_INSTANCE_URL }),
    auth,
    apiVersion: e.SALESFORCE_API_VERSION ?? DEFAULT_API_VERSION,
    clientName,
    ...(e.SALESFORCE_QUOTA_RESERVE === undefined ? {} : { quotaReserve: e.SALESFORCE_QUOTA_RESERVE }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  return new SalesforceConnector({
    client,
    clientName,
    ...(e.SALESFORCE_WEBHOOK_TOKEN === undefined ? {} : { webhookToken: e.SALESFORCE_WEBHOOK_TOKEN }),
    ...(e.SALESFORCE_ORG_ID === undefined ? {} : { orgId: e.SALESFORCE_ORG_ID }),
    ...(e.SALESFORCE_BULK_THRESHOLD === undefined ? {} : { bulkThreshold: e.SALESFORCE_BULK_THRESHOLD }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
}
