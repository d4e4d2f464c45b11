/**
 * The composition root (design.md §2): the one place that wires settings, the profile store, the
 * connectors, the live mappings, the identity resolver and the sync engine together. `crmhub sync`,
 * `crmhub dlq`, `crmhub mappings validate --remote|preview`, `crmhub serve` (through
 * `serve-wiring.ts`) and `crmhub demo` all open it here.
 */
import type { Logger } from 'pino';
import type { Connector, ObjectSchema, RemoteRecord } from '../connector-kit/connector.ts';
import { CrmhubError } from '../connector-kit/errors.ts';
import { loadConfig, type CrmhubConfig } from '../config/load-config.ts';
import type { FieldValues, IdentifierInput, Profile } from '../core/types.ts';
import { IdentityResolver } from '../identity/identity-resolver.ts';
import { getProfileView } from '../identity/profile-view.ts';
import { formatIssue } from '../mapping/issue.ts';
import { MappingRegistry } from '../mapping/mapping-registry.ts';
import { createLogger } from '../server/logger.ts';
import { openStore } from '../store/open-store.ts';
import type { ProfileStore } from '../store/port.ts';
import { identityPortFrom } from '../sync/identity-adapter.ts';
import { syncMappingsFrom, threeWayPlanner } from '../sync/planner-adapter.ts';
import { SyncEngine } from '../sync/sync-engine.ts';
import type { MappingsRuntime } from './commands/mappings.ts';
import type { SyncRuntime } from './commands/sync-runtime.ts';
import { connectorModules } from './connector-modules.ts';
import { withReadRetry } from './read-retry.ts';

export interface OpenRuntimeOptions {
  /** Settings source; default `process.env`. Connector credentials are read from it too. */
  env?: Record<string, string | undefined>;
  /** Already-loaded settings (wins over `env` for crmhub's own settings). */
  config?: CrmhubConfig;
  /** Connectors to use instead of building them from the environment (tests, the demo). */
  connectors?: Map<string, Connector>;
  /** An open store to share (`crmhub serve` opens its own); not closed by `close()`. */
  store?: ProfileStore;
  logger?: Logger;
  /** Watch the mappings folder for edits (serve). Default false (one-off commands). */
  watchMappings?: boolean;
  /** Sync engine knobs passed through (tests shorten retries). */
  engine?: { leaseMs?: number; retry?: { maxAttempts?: number; baseMs?: number; maxMs?: number }; pageSize?: number; holdCreatesUntilPulled?: boolean };
}

/** Everything wired; satisfies {@link SyncRuntime} (`crmhub sync`, `crmhub dlq`). */
export interface Runtime extends SyncRuntime {
  config: CrmhubConfig;
  store: ProfileStore;
  connectors: Map<string, Connector>;
  mappings: MappingRegistry;
  identity: IdentityResolver;
  engine: SyncEngine;
  logger: Logger;
  /** Stops the engine, the watcher, the connectors and (when it opened it) the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * The connector settings as environment variables: crmhub's own settings (which may come from
 * `crmhub.config.yaml`) filled in under what the environment already says, so a connector module's
 * `fromEnv` sees file settings too.
 */
export function connectorEnv(config: CrmhubConfig, env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  const set = (name: string, value: string | null | undefined): void => {
    if (value !== null && value !== undefined && value !== '' && (out[name] === undefined || out[name] === '')) out[name] = value;
  };
  if (config.hubspot) {
    set('HUBSPOT_ACCESS_TOKEN', config.hubspot.accessToken);
    set('HUBSPOT_CLIENT_SECRET', config.hubspot.clientSecret);
    set('HUBSPOT_BASE_URL', config.hubspot.baseUrl);
  }
  if (config.salesforce) {
    const s = config.salesforce;
    set('SALESFORCE_INSTANCE_URL', s.instanceUrl);
    set('SALESFORCE_ACCESS_TOKEN', s.accessToken);
    set('SALESFORCE_CLIENT_ID', s.clientId);
    set('SALESFORCE_CLIENT_SECRET', s.clientSecret);
    set('SALESFORCE_LOGIN_URL', s.loginUrl);
    set('SALESFORCE_API_VERSION', s.apiVersion);
    set('SALESFORCE_WEBHOOK_TOKEN', s.webhookToken);
    set('SALESFORCE_ORG_ID', s.orgId);
  }
  if (config.pipedrive) {
    set('PIPEDRIVE_API_TOKEN', config.pipedrive.apiToken);
    set('PIPEDRIVE_BASE_URL', config.pipedrive.baseUrl);
    set('PIPEDRIVE_WEBHOOK_USER', config.pipedrive.webhookUser);
    set('PIPEDRIVE_WEBHOOK_PASSWORD', config.pipedrive.webhookPassword);
  }
  return out;
}

/** Builds every connector whose credentials are set (`ConnectorModule.fromEnv` returns null otherwise). */
export function connectorsFromEnv(env: Record<string, string | undefined>, logger?: Logger): Map<string, Connector> {
  const out = new Map<string, Connector>();
  for (const module of connectorModules) {
    const connector = module.fromEnv(env, logger ? { logger } : {});
    if (connector) out.set(module.slug, connector);
  }
  return out;
}

function configFrom(options: OpenRuntimeOptions, env: Record<string, string | undefined>): CrmhubConfig {
  if (options.config) return options.config;
  return loadConfig(env);
}

/**
 * Opens everything: settings → store (migrated) → connectors (from credentials) → mapping registry
 * (versions recorded in the store) → identity resolver → sync engine with the three-way planner.
 *
 * @throws CrmhubError `config` for invalid settings or connector credentials.
 */
export async function openRuntime(options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const env = options.env ?? process.env;
  const config = configFrom(options, env);
  // stderr: stdout carries `--json` output of the CLI commands.
  const logger = options.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets, destination: process.stderr });
  const ownStore = options.store === undefined;
  const store = options.store ?? (await openStore(config.databaseUrl));
  const opened: { close(): Promise<void> | void }[] = [];
  try {
    const connectors = withReadRetry(options.connectors ?? connectorsFromEnv(connectorEnv(config, env), logger));
    const mappings = await MappingRegistry.open({
      dir: config.mappingsDir,
      watch: options.watchMappings ?? false,
      logger,
      onLoaded: (connector, object, hash, at) => store.recordMappingVersion({ connector, object, hash, loadedAt: at }),
    });
    opened.push(mappings);
    const status = mappings.status();
    if (!status.ok) {
      // Not fatal: files with errors keep their last good version (none yet at start); the rest sync.
      logger.warn({ dir: config.mappingsDir, issues: status.issues.filter((i) => i.severity === 'error').map(formatIssue) }, 'some mapping files are invalid and are not synced');
    }
    const identity = new IdentityResolver();
    const engine = new SyncEngine({
      store,
      connectors,
      // Pipedrive's connector reads and writes custom fields by NAME (it resolves the 40-character
      // keys itself, connectors/pipedrive/field-resolver.ts), so remote names stay verbatim here.
      // Inbound email joins (Salesforce, Pipedrive) are the engine's own: see inbound-join-keys.ts.
      mappings: syncMappingsFrom(mappings),
      planner: threeWayPlanner,
      identity: identityPortFrom(identity),
      logger,
      leaseMs: options.engine?.leaseMs ?? config.outbox.leaseMs,
      readBeforeWrite: config.sync.readBeforeWrite,
      readBeforeWriteFreshnessMs: config.sync.readBeforeWriteFreshnessMs,
      ...(options.engine?.retry ? { retry: options.engine.retry } : {}),
      ...(options.engine?.pageSize !== undefined ? { pageSize: options.engine.pageSize } : {}),
      ...(options.engine?.holdCreatesUntilPulled !== undefined ? { holdCreatesUntilPulled: options.engine.holdCreatesUntilPulled } : {}),
    });
    let closing: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      await engine.close();
      mappings.close();
      await Promise.allSettled(
        [...connectors.values()].map(async (c) => {
          await c.close?.();
        }),
      );
      if (ownStore) await store.close();
    };
    return { config, store, connectors, mappings, identity, engine, logger, close: () => (closing ??= close()) };
  } catch (error) {
    for (const o of opened) await o.close();
    if (ownStore) await store.close();
    throw error;
  }
}

/** What `crmhub mappings validate --remote` and `preview` need (see `commands/mappings.ts`). */
export async function openMappingsRuntime(options: OpenRuntimeOptions = {}): Promise<MappingsRuntime> {
  const runtime = await openRuntime(options);
  const connector = (slug: string): Connector => {
    const c = runtime.connectors.get(slug);
    if (!c) throw new CrmhubError('config', `connector ${slug} is not configured (set its credentials)`, { code: 'CONNECTOR_NOT_CONFIGURED', context: { connector: slug } });
    return c;
  };
  return {
    async describe(slug: string, object: string): Promise<ObjectSchema> {
      return connector(slug).describe(object);
    },
    loadProfile: (identifier: IdentifierInput): Promise<Profile | null> => getProfileView(runtime.store.read(), `${identifier.type}:${identifier.value}`),
    async readRemote(slug: string, object: string, profile: Profile): Promise<RemoteRecord | null> {
      const links = await runtime.store.read().findRemoteRecordsByProfile(slug, object, profile.id);
      const link = links.find((l) => !l.deleted);
      if (!link) return null;
      const [record] = await connector(slug).readByIds(object, [link.remoteId]);
      return record ?? null;
    },
    async getShadow(slug: string, object: string, remoteId: string): Promise<FieldValues | null> {
      const row = await runtime.store.read().getRemoteRecord(slug, object, remoteId);
      return row && !row.deleted ? row.shadow : null;
    },
    close: () => runtime.close(),
  };
}
