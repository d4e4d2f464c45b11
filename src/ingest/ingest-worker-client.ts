/**
 * The main thread's side of the ingest worker (`ingest-worker.ts`): starts the thread, hands it each
 * request's prepared events and resolves with their outcomes once the worker's group transaction
 * holding them has committed. While the worker writes, this thread parses and validates the next
 * requests — the point of the worker: SQLite is synchronous, so on this thread every statement,
 * COMMIT and fsync would block HTTP handling.
 *
 * The worker writes only while this thread holds the main store's write turn for it (so the two
 * connections never race for SQLite's lock): the turn is taken when work is submitted and given
 * back when the worker runs out of work — or, so that this thread's own writers (the sync engine)
 * are not starved under a steady stream of events, when it has been held for `turnBudgetMs`.
 *
 * The worker commits without syncing (`synchronous=NORMAL`); a submission is answered only after
 * an fdatasync of the WAL file, started here after its result arrived, returned (see
 * `ingest-worker.ts`): on disk, as with `synchronous=FULL`, while the worker already runs the next
 * group. Results that arrive while a sync runs share the next one.
 *
 * The `onProfilesChanged` hook runs here (the sync engine lives on this thread) against a stand-in
 * transaction whose every method call is carried out by the worker in the group's transaction.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, fdatasync, openSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { CrmhubError, toCrmhubError } from '../connector-kit/errors.ts';
import type { ProfileId } from '../core/types.ts';
import type { StoreTx } from '../store/port.ts';
import type { PreparedEvent, ProfilesChangedHook } from './ingest-group.ts';
import {
  decodeOutcomes,
  encodeGroup,
  type FromWorker,
  fromErrorData,
  type IngestWorkerData,
  type ToWorker,
  toErrorData,
  type WorkerOutcome,
} from './ingest-worker-protocol.ts';

/**
 * Runs in the new thread (CommonJS, evaluated): registers tsx when the modules are TypeScript, then
 * hands the port to `runIngestWorker`. Failures before that are reported as `fatal`.
 */
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader !== null) (await import(workerData.loader)).register();
  (await import(workerData.entry)).runIngestWorker(parentPort, workerData);
})().catch((error) => {
  parentPort.postMessage({ type: 'fatal', error: { name: 'Error', message: String(error && error.message || error), stack: error && error.stack } });
});
`;

/** tsx's ESM API, when this module runs as TypeScript (the worker needs the same loader). */
function tsxLoader(entry: string): string | null {
  if (!entry.endsWith('.ts')) return null;
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return null;
  }
}

/** What the worker needs of the main store (`SqliteStore` has it). */
export interface WriteTurnStore {
  /** Runs `fn` holding the store's write turn (its transactions wait meanwhile). */
  withWriteTurn<T>(fn: () => Promise<T>): Promise<T>;
}

export interface IngestWorkerOptions {
  /** Absolute path of the SQLite database file (migrated already). */
  file: string;
  /** The main thread's store on that file, whose write turn the worker borrows. */
  store: WriteTurnStore;
  /** Most events per transaction. */
  maxItems: number;
  /** Group commit wait, ms (0: the next event-loop turn). */
  maxWaitMs: number;
  /** The hook to run inside each transaction (read when the worker asks; undefined: none). */
  hook: () => ProfilesChangedHook | undefined;
  /** Longest the worker keeps the write turn while others may wait for it, ms. Default 100. */
  turnBudgetMs?: number;
  /** Called after each transaction attempt (metrics). */
  onFlush?: (events: number, durationMs: number, committed: boolean) => void;
}

export class IngestWorker {
  /** Resolves when the worker has opened the database; rejects if it cannot start. */
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (outcomes: WorkerOutcome[]) => void; reject: (error: Error) => void }>();
  private readonly calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private stopped: Error | null = null;
  private closing: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  /**
   * The write turn held for the worker, whether it has been asked to give it back, and how to run
   * code in the async context the turn was taken in (the hook runs there, so that a store
   * transaction it starts is refused as nested — as in-process — instead of waiting for the turn
   * its own caller holds).
   */
  private turn: { release: () => void; since: number; yieldSent: boolean; inTurn: <R>(fn: () => R) => R } | null = null;
  private acquiring = false;
  private hookEnabled: boolean;
  /** The WAL file (opened on first sync), results waiting for the next sync, and whether one runs. */
  private walFd: number | null = null;
  private unsynced: { id: number; outcomes: WorkerOutcome[] }[] = [];
  private syncing = false;
  /** Submissions the worker has not answered yet (those still need the write turn). */
  private inWorker = 0;

  constructor(private readonly options: IngestWorkerOptions) {
    const entry = new URL('./ingest-worker.ts', import.meta.url).href;
    this.hookEnabled = options.hook() !== undefined;
    const data: IngestWorkerData = { file: options.file, entry, loader: tsxLoader(entry), maxItems: options.maxItems, maxWaitMs: options.maxWaitMs, hook: this.hookEnabled };
    this.worker = new Worker(BOOTSTRAP, { eval: true, workerData: data });
    // Only submissions in flight keep the process alive (see `submit`).
    this.worker.unref();
    let started: () => void = () => undefined;
    let failed: (error: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    // A worker that never starts must not surface as an unhandled rejection: callers check `ready`.
    this.ready.catch(() => undefined);
    this.worker.on('message', (message: FromWorker) => this.onMessage(message, started, failed));
    this.worker.on('error', (error) => {
      this.stop(error);
      failed(error);
    });
    this.worker.on('exit', (code) => {
      this.stop(new CrmhubError('internal', `the ingest worker exited (code ${code})`, { code: 'INGEST_WORKER_STOPPED' }));
      failed(this.stopped as Error);
    });
  }

  /** False once the worker has stopped (failed, exited or closed): callers store in-process instead. */
  get alive(): boolean {
    return this.stopped === null;
  }

  /**
   * Stores `events` in one of the worker's group transactions; resolves with one outcome per event
   * once that transaction committed (or, for an event that failed on its own, its error). Rejects
   * only if the worker stopped before answering — then nothing is known about these events.
   */
  submit(events: readonly PreparedEvent[]): Promise<WorkerOutcome[]> {
    if (this.stopped !== null) return Promise.reject(this.stopped);
    if (this.closing !== null) return Promise.reject(new TypeError('the ingest worker is closing'));
    const id = this.nextId++;
    const result = new Promise<WorkerOutcome[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.ref();
    this.inWorker += 1;
    this.send({ type: 'submit', id, group: encodeGroup(events) });
    this.requestTurn();
    return result;
  }

  /** Tells the worker whether a hook is set now (see `IngestWorkerOptions.hook`). */
  hookChanged(): void {
    const enabled = this.options.hook() !== undefined;
    if (enabled === this.hookEnabled || this.stopped !== null) return;
    this.hookEnabled = enabled;
    this.send({ type: 'hook', enabled });
  }

  /** Waits for the submissions in flight, lets the worker close its connection, then ends the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.pending.size > 0 && this.stopped === null) await new Promise<void>((resolve) => (this.drained = resolve));
      if (this.stopped === null) {
        const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
        this.worker.ref();
        this.send({ type: 'close' });
        // The worker closes its port after its connection; a stuck one is ended after a grace period.
        const timer = setTimeout(() => void this.worker.terminate(), 5_000);
        await exited;
        clearTimeout(timer);
      }
      this.stop(new TypeError('the ingest worker is closed'));
      if (this.walFd !== null) closeSync(this.walFd);
      this.walFd = null;
    })();
    return this.closing;
  }

  private onMessage(message: FromWorker, started: () => void, failed: (error: Error) => void): void {
    switch (message.type) {
      case 'ready':
        started();
        break;
      case 'fatal':
        this.stop(fromErrorData(message.error));
        failed(this.stopped as Error);
        break;
      case 'result': {
        this.inWorker -= 1;
        this.unsynced.push({ id: message.id, outcomes: decodeOutcomes(message.outcomes) });
        this.sync();
        const turn = this.turn;
        if (turn !== null && !turn.yieldSent && performance.now() - turn.since > (this.options.turnBudgetMs ?? 100)) {
          turn.yieldSent = true;
          this.send({ type: 'yield' });
        }
        break;
      }
      case 'idle': {
        const turn = this.turn;
        this.turn = null;
        turn?.release();
        // Work submitted meanwhile (or left when asked to yield) needs the turn again: queue for it
        // behind whoever waits now.
        if (this.inWorker > 0) this.requestTurn();
        break;
      }
      case 'flush':
        this.options.onFlush?.(message.events, message.durationMs, message.committed);
        break;
      case 'hook-run':
        void this.runHook(message.tx, message.profileIds, message.methods);
        break;
      case 'call-result': {
        const pending = this.calls.get(message.call);
        this.calls.delete(message.call);
        if (pending === undefined) break;
        if ('error' in message) pending.reject(fromErrorData(message.error));
        else pending.resolve(message.value);
        break;
      }
      case 'closed':
        break;
    }
  }

  /**
   * Answers the results received so far once they are on disk: one fdatasync of the WAL, started
   * after they arrived (so after the worker's COMMIT wrote their frames). A failed sync fails
   * their stored events (committed but maybe not durable: the clients resend, and get duplicates).
   */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const batch = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    const done = (error: Error | null): void => {
      this.syncing = false;
      for (const { id, outcomes } of batch) {
        const pending = this.pending.get(id);
        this.pending.delete(id);
        pending?.resolve(error === null ? outcomes : outcomes.map((o) => (o.ok ? { ok: false, error } : o)));
      }
      if (this.pending.size === 0) {
        this.worker.unref();
        this.drained?.();
      }
      this.sync();
    };
    try {
      this.walFd ??= openSync(`${this.options.file}-wal`, 'r');
    } catch (error) {
      done(toCrmhubError(error));
      return;
    }
    fdatasync(this.walFd, (error) => done(error === null ? null : toCrmhubError(error)));
  }

  /** Takes the write turn for the worker (if it does not hold it already) and grants it. */
  private requestTurn(): void {
    if (this.turn !== null || this.acquiring || this.stopped !== null) return;
    this.acquiring = true;
    this.options.store
      .withWriteTurn(
        () =>
          new Promise<void>((release) => {
            this.acquiring = false;
            if (this.stopped !== null) {
              release();
              return;
            }
            this.turn = { release, since: performance.now(), yieldSent: false, inTurn: AsyncLocalStorage.snapshot() };
            this.send({ type: 'grant' });
          }),
      )
      .catch((error: unknown) => {
        this.acquiring = false;
        this.stop(toCrmhubError(error));
      });
  }

  private send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  /** Fails everything in flight (the worker is gone: whether those events were stored is unknown) and gives the write turn back. */
  private stop(error: Error): void {
    if (this.stopped === null) this.stopped = error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
    for (const pending of this.calls.values()) pending.reject(error);
    this.calls.clear();
    const turn = this.turn;
    this.turn = null;
    turn?.release();
    this.drained?.();
    this.worker.unref();
  }

  private async runHook(tx: number, profileIds: ProfileId[], methods: string[]): Promise<void> {
    const hook = this.options.hook();
    const inTurn = this.turn?.inTurn ?? (<R>(fn: () => R): R => fn());
    let error: Error | undefined;
    try {
      if (hook !== undefined) await inTurn(() => hook(this.remoteTx(tx, methods), profileIds));
    } catch (e) {
      error = e instanceof Error ? e : toCrmhubError(e);
    }
    if (this.stopped === null) this.send(error === undefined ? { type: 'hook-done', tx } : { type: 'hook-done', tx, error: toErrorData(error) });
  }

  /** A StoreTx whose methods run in the worker's transaction `tx`. */
  private remoteTx(tx: number, methods: string[]): StoreTx {
    const handle: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const method of methods) {
      handle[method] = (...args: unknown[]) => {
        if (this.stopped !== null) return Promise.reject(this.stopped);
        const call = this.nextId++;
        return new Promise((resolve, reject) => {
          this.calls.set(call, { resolve, reject });
          this.send({ type: 'call', tx, call, method, args });
        });
      };
    }
    // Every method the worker's transaction has is here, answering with the same data.
    return handle as unknown as StoreTx;
  }
}

