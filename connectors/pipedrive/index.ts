/**
 * The Pipedrive connector module (design.md §2): builds the connector from the environment and
 * starts its sandbox. Only the composition root imports this.
 */
import type { ConnectorModule } from '../../src/connector-kit/connector-module.ts';
import { startPipedriveSandbox } from './sandbox/index.ts';

const pipedrive: ConnectorModule = {
  slug: 'pipedrive',
  displayName: 'Pipedrive',
  fromEnv: () => null,
  startSandbox: (options) => startPipedriveSandbox(options),
};

export default pipedrive;
