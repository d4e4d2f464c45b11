/** The engine's connector contract suite, run against the Salesforce connector and its sandbox. */
import { describeConnectorContract } from '../../connector-kit/contract-suite.ts';
import { startHarness } from './sandbox-harness.ts';

describeConnectorContract('salesforce', async () => {
  const h = await startHarness();
  return {
    connector: h.connector,
    object: 'Contact',
    validFields: (n) => ({ LastName: `Contract${n}`, FirstName: 'Casey', Email: `contract.${n}@example.com` }),
    invalidFields: (n) => ({ LastName: `Bad${n}`, Email: 'not-an-email' }),
    upsertKey: (n) => ({ field: 'Crmhub_Id__c', value: `prf_contract_${n}` }),
    updateField: (v) => ({ Title: `Title ${v}` }),
    async repEdit(id, fields) {
      if (id === undefined) return h.createAsRep('Contact', fields);
      await h.control('/_sandbox/edit', { object: 'Contact', id, fields });
      return id;
    },
    async buildWebhook(id) {
      const hook = await h.waitForWebhook((w) => w.text.includes(id) && w.text.includes('<notifications'));
      return { method: hook.method, url: hook.url, headers: hook.headers, rawBody: hook.rawBody, now: Date.now() };
    },
    // Salesforce does not sign Outbound Message bodies: the URL token and the org id are the
    // credentials, so tampering means changing one of them.
    tamper(request) {
      const url = new URL(request.url);
      const token = url.searchParams.get('token') ?? '';
      url.searchParams.set('token', `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`);
      return { ...request, url: url.toString() };
    },
    cleanup: () => h.close(),
  };
});
