/**
 * What `crmhub serve` runs besides the HTTP API (design.md §1, §4): the composition root's runtime
 * (connectors, live mappings, sync engine), the webhook and sync-admin routes, the ingest → outbox
 * hook, one outbox worker loop per connector, the cron scheduler, and the mapping watcher with its
 * readiness check on `/readyz`.
 *
 * `createSyncServeHook()` returns a fresh hook each call (its state lives in a closure), so several
 * servers in one process (tests, the demo) never share an engine; {@link syncServeHook} is the one
 * `crmhub serve` runs.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Connector, WebhookRequest } from '../connector-kit/connector.ts';
import { CrmhubError } from '../connector-kit/errors.ts';
import { formatIssue } from '../mapping/issue.ts';
import { syncAdminRoutes } from '../server/routes/sync-admin.ts';
import { webhookRoutes } from '../server/routes/webhooks.ts';
import type { RunOnceOptions } from '../sync/sync-engine.ts';
import { SyncScheduler, type ScheduleEntry } from '../sync/sync-scheduler.ts';
import type { ServeHook } from './commands/serve.ts';
import { openRuntime, type OpenRuntimeOptions, type Runtime } from './runtime.ts';

export interface SyncServeHookOptions {
  /** Connectors to use instead of building them from the settings (tests, the demo). */
  connectors?: Map<string, Connector>;
  /**
   * Cron jobs. Default: an incremental run per configured connector on `CRMHUB_SYNC_CRON`
   * (default every 5 minutes) and a full reconciliation on `CRMHUB_RECONCILE_CRON` (default 03:00
   * daily); `off` turns either off. An empty list turns the scheduler off.
   */
  schedule?: ScheduleEntry[];
  /** Outbox worker idle poll, ms. Default 1 000. */
  workerPollMs?: number;
  /** Webhook inbox sweep period, ms (receipts left unprocessed, retries, pruning). Default 30 000. */
  webhookSweepMs?: number;
  /** Start the outbox worker loops with the server. Default true (the demo starts them after its first pull). */
  workers?: boolean;
  /** Public base URL the CRMs call (signatures cover the full URL). */
  publicBaseUrl?: string;
  /** Engine knobs (tests shorten retries). */
  engine?: OpenRuntimeOptions['engine'];
  /** Receives the runtime once it is open (the demo and tests drive the engine directly). */
  onRuntime?: (runtime: Runtime) => void;
}

const cronSetting = z.string().trim().min(1).optional();

/** The default cron jobs for the configured connectors. */
export function defaultSchedule(slugs: Iterable<string>, env: Record<string, string | undefined> = process.env): ScheduleEntry[] {
  const incremental = cronSetting.parse(env['CRMHUB_SYNC_CRON']) ?? '*/5 * * * *';
  const full = cronSetting.parse(env['CRMHUB_RECONCILE_CRON']) ?? '0 3 * * *';
  const out: ScheduleEntry[] = [];
  for (const connector of slugs) {
    if (incremental !== 'off') out.push({ connector, cron: incremental });
    if (full !== 'off') out.push({ connector, cron: full, full: true });
  }
  return out;
}

/** A serve hook that runs the sync side of crmhub inside the server. */
export function createSyncServeHook(options: SyncServeHookOptions = {}): ServeHook {
  let runtime: Runtime | null = null;
  const engine = (): Runtime['engine'] => {
    if (!runtime) throw new CrmhubError('transient', 'the sync engine is starting', { code: 'ENGINE_STARTING', retryAfterMs: 1_000 });
    return runtime.engine;
  };
  // Routes are registered before the hook starts (buildApp takes plugins up front), so they reach
  // the engine through this late-bound proxy; the server listens only after `start` returned.
  const receiver = {
    has: (slug: string): boolean => runtime?.engine.has(slug) ?? false,
    receiveWebhook: (slug: string, request: WebhookRequest) => engine().receiveWebhook(slug, request),
  };
  const admin = {
    runOnce: (o: RunOnceOptions) => engine().runOnce(o),
    connectionStates: () => engine().connectionStates(),
  };
  const plugins: FastifyPluginAsync[] = [
    webhookRoutes(receiver, options.publicBaseUrl === undefined ? {} : { publicBaseUrl: options.publicBaseUrl }),
    syncAdminRoutes(admin),
  ];
  return {
    name: 'sync',
    plugins,
    async start({ config, store, app, logger }) {
      const rt = await openRuntime({
        config,
        store,
        logger,
        watchMappings: true,
        ...(options.connectors ? { connectors: options.connectors } : {}),
        // Workers start while the scheduler's first pulls run: creates wait for each object's first
        // pull so records the CRM already has are linked, not created again.
        engine: { holdCreatesUntilPulled: true, ...options.engine },
      });
      runtime = rt;
      options.onRuntime?.(rt);
      const { ingest, readiness } = app.crmhub;
      // Inside each ingest transaction: the profile change and its outbox rows commit together.
      ingest.setProfilesChangedHook(async (tx, ids) => {
        await rt.engine.onProfilesChanged(tx, ids);
      });
      readiness.register('mappings', () => {
        const status = rt.mappings.status();
        const bad = Object.entries(status.files).filter(([, f]) => !f.ok);
        if (bad.length === 0) return { ok: true, detail: `${rt.mappings.all().length} mappings live` };
        const first = status.issues.find((i) => i.severity === 'error');
        return { ok: false, detail: `${bad.length} invalid mapping file(s); last good versions stay live${first ? `; ${formatIssue(first)}` : ''}` };
      });
      // Informational: a paused CRM connection (expired token) must not take the event API out of a
      // load balancer's rotation; its rows wait in the outbox. Details: GET /admin/connections.
      readiness.register('connections', () => ({
        ok: true,
        detail: Object.entries(rt.engine.connectionStates()).map(([slug, s]) => `${slug} ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join(', ') || 'no connectors configured',
      }));
      if (options.workers !== false) rt.engine.startWorkers(options.workerPollMs === undefined ? {} : { pollMs: options.workerPollMs });
      // Webhook changes a previous process acknowledged but never applied are applied now, and the
      // sweep keeps retrying failed ones and pruning old receipts while the server runs.
      rt.engine.startWebhookInbox(options.webhookSweepMs === undefined ? {} : { pollMs: options.webhookSweepMs });
      const scheduler = new SyncScheduler(rt.engine, options.schedule ?? defaultSchedule(rt.connectors.keys()));
      scheduler.start();
      logger.info({ connectors: [...rt.connectors.keys()], mappings: rt.mappings.all().length, schedule: scheduler.nextRuns() }, 'sync engine started');
      return async () => {
        ingest.setProfilesChangedHook(undefined);
        await scheduler.stop();
        await rt.close();
        runtime = null;
      };
    },
  };
}

/**
 * The hook `crmhub serve` registers (src/cli/commands/serve.ts pushes it at its hook point; this
 * module imports nothing of serve.ts at run time, so the two never form an evaluation cycle).
 */
export const syncServeHook: ServeHook = createSyncServeHook();
