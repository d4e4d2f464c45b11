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

/**
 * Under injected faults some object's run fails in most rounds, so "one fully quiet round" may take
 * many rounds. Equivalent and faster: since the last round in which anything moved, every object
 * has had a successful run that found nothing, and nothing is pending.
 */
class QuietTracker {
  private readonly clean = new Set<string>();

  observe(summary: RunSummary): boolean {
    const moved = summary.objects.some((o) => o.created + o.updated + o.deleted + o.failed > 0);
    if (moved) this.clean.clear();
    for (const o of summary.objects) {
      if (o.status === 'succeeded' && o.created + o.updated + o.deleted + o.failed === 0) this.clean.add(`${o.connector}.${o.object}`);
    }
    const pending = summary.objects.reduce((n, o) => n + o.pending, 0);
    return pending === 0 && summary.objects.every((o) => this.clean.has(`${o.connector}.${o.object}`));
  }
}

export async function converge(engine: SyncEngine, options: { maxRounds: number; deadline: number }): Promise<ConvergeResult> {
  const log: string[] = [];
  const tracker = new QuietTracker();
  for (let round = 1; round <= options.maxRounds && Date.now() < options.deadline; round++) {
    const started = Date.now();
    const verbose = process.env['CRMHUB_REL_VERBOSE'] !== undefined;
    const s = await engine.runOnce({
      direction: 'both',
      trigger: 'reliability',
      ...(verbose ? { onProgress: (e) => process.stderr.write(`  ${e.connector}.${e.object} ${e.phase} ${e.done}/${e.total ?? '?'}\n`) } : {}),
    });
    await engine.settled();
    const sum = (k: 'created' | 'updated' | 'failed' | 'pending' | 'apiCalls') => s.objects.reduce((n, o) => n + o[k], 0);
    const errors = s.objects.filter((o) => o.status !== 'succeeded').map((o) => `${o.connector}.${o.object}:${(o.error ?? o.status).slice(0, 60)}`);
    log.push(`round ${round} ${Date.now() - started}ms created ${sum('created')} updated ${sum('updated')} failed ${sum('failed')} pending ${sum('pending')} calls ${sum('apiCalls')}${errors.length ? ` errors ${errors.join(' | ')}` : ''}`);
    if (verbose) process.stderr.write(`${log.at(-1) ?? ''}\n`);
    if (tracker.observe(s)) return { rounds: round, converged: true, log };
  }
  return { rounds: log.length, converged: false, log };
}
