/**
 * The Salesforce connector module: built from `SALESFORCE_*` settings; its sandbox lives in
 * `./sandbox/` (issue 4).
 */
import type { ConnectorModule } from '../../src/connector-kit/connector-module.ts';
import { salesforceFromEnv } from './env.ts';
import { startSalesforceSandbox } from './sandbox/index.ts';

const salesforce: ConnectorModule = {
  slug: 'salesforce',
  displayName: 'Salesforce',
  fromEnv: (env, options) => salesforceFromEnv(env, options),
  startSandbox: (options) => startSalesforceSandbox(options),
};

export default salesforce;
