/* eslint-disable @typescript-eslint/no-explicit-any -- sandbox control answers are untyped JSON */
/**
 * The engine's connector contract suite, run against the HubSpot connector and sandbox.
 */
import { createHmac } from 'node:crypto';
import type { RunningSandbox } from '../../../src/connector-kit/connector-module.ts';
import hubspot from '../../../connectors/hubspot/index.ts';
import { HubSpotConnector } from '../../../connectors/hubspot/hubspot-connector.ts';
import { describeConnectorContract } from '../../connector-kit/contract-suite.ts';

let sb: RunningSandbox | undefined;

describeConnectorContract('hubspot', async () => {
  sb = await hubspot.startSandbox({ port: 0 });
  const running = sb;
  const connector = hubspot.fromEnv(running.env);
  if (!(connector instanceof HubSpotConnector)) throw new TypeError('fromEnv did not build the HubSpot connector');
  const control = async (route: string, body: unknown): Promise<any> =>
    (await fetch(`${running.baseUrl}/_sandbox/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  const api = async (method: string, path: string, body?: unknown): Promise<any> =>
    (
      await fetch(`${running.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${running.credentials.accessToken}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
    ).json();
  // The suite calls readChanges back to back without the engine's limiter; lift the ~5/s search limit.
  await control('config', { rateLimit: { search: 1000 } });
  return {
    connector,
    object: 'contacts',
    validFields: (n) => ({ email: `contract${n}@example.com`, firstname: `First${n}`, crmhub_plan: 'pro' }),
    invalidFields: (n) => ({ email: `contract${n}@example.com`, crmhub_plan: 'platinum' }),
    upsertKey: (n) => ({ field: 'email', value: `contract${n}@example.com` }),
    updateField: (v) => ({ lastname: `Last${v}` }),
    async repEdit(id, fields) {
      if (id === undefined) {
        // A rep creating a record: the sandbox's UI path is an edit, so create through the API then edit.
        const created = await api('POST', '/crm/v3/objects/contacts', { properties: {} });
        await control('edit', { object: 'contacts', id: created.id, fields });
        return String(created.id);
      }
      await control('edit', { object: 'contacts', id, fields });
      return id;
    },
    buildWebhook(id) {
      const url = 'https://crmhub.example/webhooks/hubspot';
      const body = JSON.stringify([{ eventId: 1, subscriptionId: 7, portalId: 62515, appId: 1160452, occurredAt: Date.now(), subscriptionType: 'contact.propertyChange', attemptNumber: 0, objectId: Number(id), propertyName: 'firstname', propertyValue: 'Ada', changeSource: 'CRM_UI' }]);
      const timestamp = String(Date.now());
      const signature = createHmac('sha256', running.credentials.clientSecret ?? '').update(`POST${url}${body}${timestamp}`).digest('base64');
      return Promise.resolve({ method: 'POST', url, headers: { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': timestamp }, rawBody: Buffer.from(body), now: Date.now() });
    },
    async cleanup() {
      await running.close();
    },
  };
});
