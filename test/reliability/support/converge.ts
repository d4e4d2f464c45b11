/** Runs the engine until nothing moves: the quiescence loop of the faults and crash suites. */
import type { RunSummary, SyncEngine } from '../../../src/sync/sync-engine.ts';

export interface ConvergeResult {
  rounds: number;
  converged: boolean;
  /** One line per round: changed/failed/pending totals. */
  log: string[];
}

/** A round is quiet when every object succeeded, nothing was created/updated/deleted, nothing is pending. */
export function quiet(summary: RunSummary): boolean {
  return summary.objects.every((o) => o.status === 'succeeded' && o.created + o.updated + o.deleted + o.failed === 0 && o.pending === 0);
}

export async function converge(engine: SyncEngine, options: { maxRounds: number; deadline: number }): Promise<ConvergeResult> {
  const log: string[] = [];
  for (let round = 1; round <= options.maxRounds && Date.now() < options.deadline; round++) {
    const started = Date.now();
    const s = await engine.runOnce({ direction: 'both', trigger: 'reliability' });
    await engine.settled();
    const sum = (k: 'created' | 'updated' | 'failed' | 'pending' | 'apiCalls') => s.objects.reduce((n, o) => n + o[k], 0);
    const errors = s.objects.filter((o) => o.status !== 'succeeded').map((o) => `${o.connector}.${o.object}:${(o.error ?? o.status).slice(0, 60)}`);
    log.push(`round ${round} ${Date.now() - started}ms created ${sum('created')} updated ${sum('updated')} failed ${sum('failed')} pending ${sum('pending')} calls ${sum('apiCalls')}${errors.length ? ` errors ${errors.join(' | ')}` : ''}`);
    if (quiet(s)) return { rounds: round, converged: true, log };
  }
  return { rounds: log.length, converged: false, log };
}
