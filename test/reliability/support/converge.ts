/** Runs the engine until nothing moves: the quiescence loops of the faults and crash suites. */
import type { RunSummary, SyncEngine } from '../../../src/sync/sync-engine.ts';

export interface ConvergeResult {
  rounds: number;
  converged: boolean;
  /** One line per round: changed/failed/pending totals. */
  log: string[];
}

const moved = (o: RunSummary['objects'][number]): number => o.created + o.updated + o.deleted + o.failed;

/** A run is quiet when every object succeeded, nothing was created/updated/deleted, nothing is pending. */
export function quiet(summary: RunSummary): boolean {
  return summary.objects.every((o) => o.status === 'succeeded' && moved(o) === 0 && o.pending === 0);
}

/**
 * Under injected faults some object's pull fails in most rounds, so "one fully quiet round" may
 * take many rounds. Equivalent: since the last round in which anything moved (or anything was
 * pending), every object has had a successful pull that found nothing.
 */
class QuietTracker {
  private readonly clean = new Set<string>();

  observe(summary: RunSummary, pending: number): boolean {
    if (pending > 0 || summary.objects.some((o) => moved(o) > 0)) this.clean.clear();
    for (const o of summary.objects) if (o.status === 'succeeded' && moved(o) === 0) this.clean.add(`${o.connector}.${o.object}`);
    return pending === 0 && summary.objects.every((o) => this.clean.has(`${o.connector}.${o.object}`));
  }
}

/**
 * The shape of `crmhub serve`: the outbox workers run all the time (one loop per connection) while
 * pulls run round after round (the scheduler's incremental runs, back to back). Stops when quiet.
 */
export async function converge(engine: SyncEngine, options: { maxRounds: number; deadline: number; pending: () => Promise<number> }): Promise<ConvergeResult> {
  const log: string[] = [];
  const tracker = new QuietTracker();
  const verbose = process.env['CRMHUB_REL_VERBOSE'] !== undefined;
  engine.startWorkers({ pollMs: 100 });
  try {
    for (let round = 1; round <= options.maxRounds && Date.now() < options.deadline; round++) {
      const started = Date.now();
      const s = await engine.runOnce({ direction: 'pull', trigger: 'reliability' });
      await engine.settled();
      const pending = await options.pending();
      const sum = (k: 'created' | 'updated' | 'failed') => s.objects.reduce((n, o) => n + o[k], 0);
      const errors = s.objects.filter((o) => o.status !== 'succeeded').map((o) => `${o.connector}.${o.object}:${(o.error ?? o.status).slice(0, 50)}`);
      log.push(`round ${round} ${Date.now() - started}ms created ${sum('created')} updated ${sum('updated')} failed ${sum('failed')} pending ${pending}${errors.length ? ` errors ${errors.join(' | ')}` : ''}`);
      if (verbose) process.stderr.write(`${log.at(-1) ?? ''}\n`);
      if (tracker.observe(s, pending)) return { rounds: round, converged: true, log };
      // Let the workers make progress between pulls when nothing new came in.
      if (sum('created') + sum('updated') === 0 && pending > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return { rounds: log.length, converged: false, log };
  } finally {
    await engine.stopWorkers();
  }
}
