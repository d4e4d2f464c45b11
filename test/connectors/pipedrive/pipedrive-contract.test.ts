/** The engine's connector contract suite, run against the Pipedrive connector and its sandbox. */
import { describeConnectorContract } from '../../connector-kit/contract-suite.ts';
import { repBody, startPipedriveRig } from './sandbox-harness.ts';

describeConnectorContract('pipedrive', async () => {
  const rig = await startPipedriveRig();
  return {
    connector: rig.connector,
    object: 'persons',
    validFields: (n) => ({ first_name: 'Contract', last_name: `Person ${n}`, email: `contract.${n}@example.com`, Plan: 'pro' }),
    // "platinum" is not an option of the Plan enum: refused for this record alone.
    invalidFields: (n) => ({ first_name: 'Bad', last_name: `Person ${n}`, email: `bad.${n}@example.com`, Plan: 'platinum' }),
    upsertKey: (n) => ({ field: 'email', value: `contract.${n}@example.com` }),
    updateField: (v) => ({ 'Engagement score': v }),
    async repEdit(id, fields) {
      if (id === undefined) return rig.repCreatePerson(fields);
      const res = await rig.control('edit', { object: 'persons', id, fields: repBody(fields) });
      if (res.status !== 200) throw new TypeError(`rep edit failed: ${JSON.stringify(res)}`);
      return id;
    },
    buildWebhook: (id) => rig.personWebhook(id),
    // Pipedrive signs nothing: a forgery is a request with the wrong Basic credentials.
    tamper: (request) => ({ ...request, headers: { ...request.headers, authorization: `Basic ${Buffer.from('crmhub:guess').toString('base64')}` } }),
    pageSize: 2,
    cleanup: () => rig.close(),
  };
});
