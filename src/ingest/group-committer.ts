/**
 * Group commit: concurrent requests share one store transaction, and each is answered only after
 * that transaction commits — so "a 200 means stored" holds while the store pays one commit (one
 * fsync) for many requests instead of one per request.
 *
 * How it batches: submissions wait in a queue. A flush starts when `maxWaitMs` has passed since the
 * first waiting submission (0 = at the end of the current event-loop turn, so every request parsed
 * in the same I/O poll shares), or at once when `maxItems` items wait. Only one flush runs at a time;
 * what arrives meanwhile is flushed right after it (those callers have waited already).
 *
 * Failure isolation: when a shared transaction fails, nothing of it is stored, and the committer
 * re-runs each submission in its own transaction, then (if a multi-item submission still fails)
 * each item alone — so one poison item fails only itself, and every caller learns per item whether
 * it was stored. Items must therefore be idempotent to re-run (ingest dedupes on messageId).
 */

/** Per-item result: the sink's value, or the error that kept this item from being stored. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Runs `items` in ONE transaction and returns one result per item, in order; throws to roll back. */
export type CommitSink<T, R> = (items: T[]) => Promise<R[]>;

export interface GroupCommitterOptions {
  /** How long the first waiting submission waits for company, ms. Default 0 (end of the event-loop turn). */
  maxWaitMs?: number;
  /** Flush as soon as this many items wait; also the most items per transaction. Default 2000. */
  maxItems?: number;
  /** Called after each transaction attempt (for metrics): items in it, duration ms, whether it committed. */
  onFlush?: (items: number, durationMs: number, committed: boolean) => void;
}

interface Submission<T, R> {
  items: T[];
  resolve: (outcomes: Outcome<R>[]) => void;
}

export class GroupCommitter<T, R> {
  private readonly maxWaitMs: number;
  private readonly maxItems: number;
  private readonly onFlush: GroupCommitterOptions['onFlush'];
  private queue: Submission<T, R>[] = [];
  private queuedItems = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly sink: CommitSink<T, R>,
    options: GroupCommitterOptions = {},
  ) {
    this.maxWaitMs = options.maxWaitMs ?? 0;
    this.maxItems = Math.max(1, options.maxItems ?? 2000);
    this.onFlush = options.onFlush;
  }

  /** Queues `items` for the next shared transaction; resolves after it committed (or failed), one outcome per item. */
  submit(items: T[]): Promise<Outcome<R>[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.closed) {
      return Promise.resolve(items.map(() => ({ ok: false as const, error: new TypeError('the group committer is closed') })));
    }
    return new Promise((resolve) => {
      this.queue.push({ items, resolve });
      this.queuedItems += items.length;
      this.schedule();
    });
  }

  /** Flushes what waits and refuses new submissions; resolves when the last transaction ended. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    while (this.running !== null || this.queue.length > 0) {
      if (this.running === null) this.startFlush();
      await this.running;
    }
  }

  private schedule(): void {
    if (this.running !== null) return; // the running flush picks the queue up when it ends
    if (this.queuedItems >= this.maxItems) {
      this.clearTimer();
      this.startFlush();
      return;
    }
    if (this.timer !== null) return;
    const fire = (): void => {
      this.timer = null;
      if (this.running === null) this.startFlush();
    };
    this.timer = this.maxWaitMs <= 0 ? setImmediate(fire) : setTimeout(fire, this.maxWaitMs);
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    if (this.maxWaitMs <= 0) clearImmediate(this.timer as NodeJS.Immediate);
    else clearTimeout(this.timer as NodeJS.Timeout);
    this.timer = null;
  }

  private startFlush(): void {
    const group = this.take();
    if (group.length === 0) return;
    this.running = this.flush(group).finally(() => {
      this.running = null;
      if (this.queue.length > 0) {
        // Callers queued during the flush have waited already: go now.
        this.clearTimer();
        this.startFlush();
      }
    });
  }

  /** Takes whole submissions up to `maxItems` items (at least one submission). */
  private take(): Submission<T, R>[] {
    const group: Submission<T, R>[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Submission<T, R>;
      if (group.length > 0 && count + next.items.length > this.maxItems) break;
      this.queue.shift();
      group.push(next);
      count += next.items.length;
    }
    this.queuedItems -= count;
    return group;
  }

  private async flush(group: Submission<T, R>[]): Promise<void> {
    const all = group.flatMap((s) => s.items);
    const shared = await this.attempt(all);
    if (shared.ok) {
      let offset = 0;
      for (const submission of group) {
        const slice = shared.values.slice(offset, offset + submission.items.length);
        offset += submission.items.length;
        submission.resolve(slice.map((value) => ({ ok: true, value })));
      }
      return;
    }
    // Roll-back of the shared transaction: isolate the failure.
    for (const submission of group) {
      if (group.length > 1) {
        const alone = await this.attempt(submission.items);
        if (alone.ok) {
          submission.resolve(alone.values.map((value) => ({ ok: true, value })));
          continue;
        }
        if (submission.items.length === 1) {
          submission.resolve([{ ok: false, error: alone.error }]);
          continue;
        }
      } else if (submission.items.length === 1) {
        submission.resolve([{ ok: false, error: shared.error }]);
        continue;
      }
      const outcomes: Outcome<R>[] = [];
      for (const item of submission.items) {
        const single = await this.attempt([item]);
        outcomes.push(single.ok ? { ok: true, value: single.values[0] as R } : { ok: false, error: single.error });
      }
      submission.resolve(outcomes);
    }
  }

  private async attempt(items: T[]): Promise<{ ok: true; values: R[] } | { ok: false; error: unknown }> {
    const started = performance.now();
    try {
      const values = await this.sink(items);
      if (values.length !== items.length) {
        throw new TypeError(`commit sink returned ${values.length} results for ${items.length} items`);
      }
      this.onFlush?.(items.length, performance.now() - started, true);
      return { ok: true, values };
    } catch (error) {
      this.onFlush?.(items.length, performance.now() - started, false);
      return { ok: false, error };
    }
  }
}
