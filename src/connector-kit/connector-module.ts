/**
 * What each `connectors/<slug>/index.ts` exports as its default: how to build the connector from
 * settings and how to start its sandbox. Only the composition root (`src/cli`, the server's
 * start-up) imports these modules; adding a CRM means adding a folder that exports one.
 */
import type { Connector } from './connector.ts';
import type { SandboxServer } from './sandbox/sandbox-server.ts';

/** Minimal logger shape (pino's) so connectors can log without depending on our server. */
export interface ConnectorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ConnectorEnvOptions {
  logger?: ConnectorLogger;
  /** Identifies our own writes (HubSpot app id, Salesforce `Sforce-Call-Options` client, …). Default `crmhub`. */
  clientName?: string;
}

export interface SandboxStartOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Base URL of crmhub; webhooks go to `${webhookTarget}/webhooks/<slug>`. */
  webhookTarget?: string;
  /** Persist state to this file (loaded at start, saved at close). */
  stateFile?: string;
}

export interface RunningSandbox {
  slug: string;
  baseUrl: string;
  /**
   * Credentials in the shape of design.md §6 for `crmhub sandbox --json`
   * (Salesforce: instanceUrl, loginUrl, accessToken, clientId, clientSecret, orgId;
   *  HubSpot: baseUrl, accessToken, clientSecret; Pipedrive: baseUrl, apiToken, webhookUser, webhookPassword).
   */
  credentials: Record<string, string>;
  /** The environment variables that point crmhub at this sandbox (`HUBSPOT_ACCESS_TOKEN`, …). */
  env: Record<string, string>;
  server: SandboxServer;
  close(): Promise<void>;
}

export interface ConnectorModule {
  slug: string;
  displayName: string;
  /** Builds the connector from environment settings; null when its credentials are not set. */
  fromEnv(env: Record<string, string | undefined>, options?: ConnectorEnvOptions): Connector | null;
  startSandbox(options: SandboxStartOptions): Promise<RunningSandbox>;
}
