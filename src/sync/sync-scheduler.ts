/**
 * Cron-scheduled sync runs (design.md §1 "Scheduled bidirectional sync"): one `croner` job per
 * connector object; across processes only the holder of the job's store lease runs it, so several
 * `crmhub serve` processes never run the same job twice at once.
 */
import { Cron } from 'croner';
import { toCrmhubError } from '../connector-kit/errors.ts';
import type { SyncDirection, SyncEngine } from './sync-engine.ts';

export interface ScheduleEntry {
  connector: string;
  /** All mapped objects of the connector when absent. */
  object?: string;
  /** Cron expression (croner syntax, seconds optional), e.g. `*\/5 * * * *`. */
  cron: string;
  /** Default `both`. */
  direction?: SyncDirection;
  /** Reconciliation passes (e.g. nightly). Default false. */
  full?: boolean;
}

export interface SchedulerOptions {
  /** Lease owner id (process id); default the engine's owner. */
  owner?: string;
  /** Lease length in ms; renewed while a run goes on. Default 10 minutes. */
  leaseMs?: number;
}

/** Runs one job under its store lease; false when another process holds it. */
export async function runScheduledJob(engine: SyncEngine, entry: ScheduleEntry, options: SchedulerOptions = {}): Promise<boolean> {
  const { store } = engine.ctx;
  const owner = options.owner ?? engine.owner;
  const leaseMs = options.leaseMs ?? 600_000;
  const name = `sync:${entry.connector}:${entry.object ?? '*'}:${entry.full ? 'full' : 'incremental'}`;
  const now = engine.ctx.now();
  const taken = await store.acquireLease(name, owner, new Date(now + leaseMs).toISOString(), new Date(now).toISOString());
  if (!taken) return false;
  // Renew at a third of the lease so a long run keeps it.
  const renew = setInterval(() => {
    const t = engine.ctx.now();
    void store.acquireLease(name, owner, new Date(t + leaseMs).toISOString(), new Date(t).toISOString()).catch(() => undefined);
  }, Math.max(1_000, Math.floor(leaseMs / 3)));
  renew.unref();
  try {
    await engine.runOnce({
      connector: entry.connector,
      ...(entry.object ? { object: entry.object } : {}),
      direction: entry.direction ?? 'both',
      ...(entry.full ? { full: true } : {}),
      trigger: 'cron',
    });
  } finally {
    clearInterval(renew);
    await store.releaseLease(name, owner);
  }
  return true;
}

export class SyncScheduler {
  private readonly jobs: Cron[] = [];
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly engine: SyncEngine,
    private readonly entries: ScheduleEntry[],
    private readonly options: SchedulerOptions = {},
  ) {}

  start(): void {
    for (const entry of this.entries) {
      // `protect` skips a tick while the previous run of the same job is still going.
      const job = new Cron(entry.cron, { protect: true }, async () => {
        const run = runScheduledJob(this.engine, entry, this.options).catch((error: unknown) => {
          this.engine.ctx.logger?.error({ err: toCrmhubError(error, { connector: entry.connector }).toJSON() }, 'scheduled sync failed');
        });
        this.running.add(run);
        await run;
        this.running.delete(run);
      });
      this.jobs.push(job);
    }
  }

  /** Next run time of each job (for `serve` logs and admin). */
  nextRuns(): { connector: string; object: string | null; next: string | null }[] {
    return this.entries.map((e, i) => ({ connector: e.connector, object: e.object ?? null, next: this.jobs[i]?.nextRun()?.toISOString() ?? null }));
  }

  async stop(): Promise<void> {
    for (const j of this.jobs) j.stop();
    this.jobs.length = 0;
    await Promise.all([...this.running]);
  }
}
