/**
 * The composition root's list of connectors. Only src/cli and the server's start-up import
 * connector folders (design.md §2); adding a CRM means adding its module here.
 */
import type { ConnectorModule } from '../connector-kit/connector-module.ts';
import salesforce from '../../connectors/salesforce/index.ts';
import hubspot from '../../connectors/hubspot/index.ts';
import pipedrive from '../../connectors/pipedrive/index.ts';

/** In the order of design.md §6's sandbox JSON and `--port-base` offsets (N, N+1, N+2). */
export const connectorModules: readonly ConnectorModule[] = [salesforce, hubspot, pipedrive];
