/** Shared set-up for the Salesforce nock tests: a connector pointed at a fake instance URL. */
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { SalesforceClient, type SalesforceClientOptions } from '../../../connectors/salesforce/client.ts';
import { SalesforceConnector, type SalesforceConnectorOptions } from '../../../connectors/salesforce/salesforce-connector.ts';

export const INSTANCE = 'https://acme.my.salesforce.com';
export const API = '/services/data/v62.0';
export const TOKEN = '00Dxx0000000001!AQ0AQtest';
export const FIXTURES = fileURLToPath(new URL('../../../../shared/crm-reference/fixtures/salesforce', import.meta.url));

export function fixture(name: string): string {
  return readFileSync(`${FIXTURES}/${name}`, 'utf8');
}

export function makeConnector(
  connectorOptions: Partial<SalesforceConnectorOptions> = {},
  clientOptions: Partial<SalesforceClientOptions> = {},
): { connector: SalesforceConnector; client: SalesforceClient } {
  const client = new SalesforceClient({
    instanceUrl: INSTANCE,
    auth: { kind: 'access_token', accessToken: TOKEN },
    apiVersion: '62.0',
    clientName: 'crmhub',
    ...clientOptions,
  });
  const connector = new SalesforceConnector({ client, clientName: 'crmhub', webhookToken: 'hook-secret', orgId: '012345678901234', ...connectorOptions });
  return { connector, client };
}

/** Request headers every API call must carry. */
export const apiHeaders = {
  authorization: `Bearer ${TOKEN}`,
  'sforce-call-options': 'client=crmhub',
};
