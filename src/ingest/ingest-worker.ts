/**
 * The ingest worker thread: runs the group commits of ingestion (`runGroup`: dedupe, identity,
 * traits, event rows) on its own connection to the SQLite file, so that the main thread keeps
 * parsing HTTP requests while a group's statements, COMMIT and fsync run here.
 *
 * Group commit happens here, not on the main thread: every request's prepared events arrive as a
 * `submit`; while a transaction runs, the next ones queue, and the next transaction takes all of
 * them (up to `maxItems` events) as soon as this one has committed — without waiting for the main
 * thread, which may be busy. Each submission is answered after the COMMIT of the transaction
 * holding it returned; the main thread answers the request once that is on disk (see below).
 *
 * Durability without stalling: this connection commits with `synchronous=NORMAL` (COMMIT writes
 * the WAL frames but does not fsync them); the main thread fdatasyncs the WAL file on libuv's
 * thread pool after the result arrives, and answers only when that returned — the guarantee of
 * `synchronous=FULL`, where SQLite runs the same fdatasync inside COMMIT. This thread meanwhile
 * runs the next group instead of waiting for the disk. (A reader may see a group a few
 * milliseconds before it is on disk; no client is told it is stored before it is. Checkpoints keep
 * their syncs: with NORMAL, SQLite syncs the WAL before and the database after each one.)
 *
 * Two writers on one file must not race for SQLite's lock, so the worker writes only while the
 * main thread holds its store's write turn for it (`grant` … `idle`); asked to `yield`, it finishes
 * the running transaction and gives the turn back, so the main thread's own writers get in.
 *
 * Failure isolation as in `GroupCommitter`: when a shared transaction rolls back, each submission
 * is retried alone, then each event of a still failing submission alone, so one poison event fails
 * only itself. The `onProfilesChanged` hook stays on the main thread (the sync engine lives there)
 * but runs inside the transaction: the worker asks for it (`hook-run`) and serves its store calls
 * on the open transaction until `hook-done`; only then does it COMMIT.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ProfileId } from '../core/types.ts';
import { IdentityResolver } from '../identity/identity-resolver.ts';
import type { StoreTx } from '../store/port.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { type PreparedEvent, runGroup } from './ingest-group.ts';
import {
  decodeGroup,
  encodeOutcomes,
  type FromWorker,
  fromErrorData,
  type IngestWorkerData,
  type ToWorker,
  toErrorData,
  type WorkerOutcome,
} from './ingest-worker-protocol.ts';

/** Methods of `tx` (own and inherited), offered to the main thread's hook. */
function methodsOf(tx: StoreTx): string[] {
  const names = new Set<string>();
  for (let o: object | null = tx; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== 'constructor' && typeof (tx as unknown as Record<string, unknown>)[name] === 'function') names.add(name);
    }
  }
  return [...names];
}

interface Submission {
  id: number;
  events: PreparedEvent[];
}

/** Serves `port` until a `close` message (called by the worker's bootstrap with its parentPort and workerData). */
export function runIngestWorker(port: MessagePort, data: IngestWorkerData): void {
  const send = (message: FromWorker): void => port.postMessage(message);
  let store: SqliteStore;
  try {
    // Only this module's code runs transactions here, never nested: no guard (see the option).
    store = new SqliteStore({ file: data.file, nestingGuard: false });
    // Durable before answered all the same: the main thread syncs the WAL (see the module comment).
    store.connection.pragma('synchronous = NORMAL');
  } catch (error) {
    send({ type: 'fatal', error: toErrorData(error) });
    return;
  }
  const identity = new IdentityResolver();
  const queue: Submission[] = [];
  let hookEnabled = data.hook;
  /** May write (the main thread holds the write turn for us). */
  let granted = false;
  let yieldAsked = false;
  /** A group is scheduled or running. */
  let busy = false;
  let closing = false;
  let nextTx = 1;
  /** The transaction whose hook the main thread is running, and how to end the wait for it. */
  let hooked: { tx: number; handle: StoreTx; done: (error?: Error) => void } | null = null;

  const hookFor = (txId: number) => (handle: StoreTx, profileIds: ProfileId[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      hooked = { tx: txId, handle, done: (error) => (error === undefined ? resolve() : reject(error)) };
      send({ type: 'hook-run', tx: txId, profileIds, methods: methodsOf(handle) });
    }).finally(() => {
      hooked = null;
    });

  /** One transaction over `events`: their outcomes, or the error that rolled it back. */
  const attempt = async (events: PreparedEvent[]): Promise<{ ok: true; outcomes: WorkerOutcome[] } | { ok: false; error: unknown }> => {
    const started = performance.now();
    const txId = nextTx++;
    try {
      const outcomes = await store.transaction((tx) => runGroup(tx, identity, events, hookEnabled ? hookFor(txId) : undefined));
      send({ type: 'flush', events: events.length, durationMs: performance.now() - started, committed: true });
      return { ok: true, outcomes: outcomes.map((value) => ({ ok: true, value })) };
    } catch (error) {
      send({ type: 'flush', events: events.length, durationMs: performance.now() - started, committed: false });
      return { ok: false, error };
    }
  };

  const answer = (s: Submission, outcomes: WorkerOutcome[]): void => send({ type: 'result', id: s.id, outcomes: encodeOutcomes(outcomes) });

  /** Takes whole submissions up to `maxItems` events (at least one submission). */
  const take = (): Submission[] => {
    const group: Submission[] = [];
    let count = 0;
    while (queue.length > 0) {
      const next = queue[0] as Submission;
      if (group.length > 0 && count + next.events.length > data.maxItems) break;
      queue.shift();
      group.push(next);
      count += next.events.length;
    }
    return group;
  };

  const runNext = async (): Promise<void> => {
    const group = take();
    const shared = await attempt(group.flatMap((s) => s.events));
    if (shared.ok) {
      let offset = 0;
      for (const s of group) {
        answer(s, shared.outcomes.slice(offset, offset + s.events.length));
        offset += s.events.length;
      }
    } else {
      // Roll-back of the shared transaction: isolate the failure.
      for (const s of group) {
        const alone = group.length > 1 ? await attempt(s.events) : shared;
        if (alone.ok) answer(s, alone.outcomes);
        else if (s.events.length === 1) answer(s, [{ ok: false, error: alone.error }]);
        else {
          const outcomes: WorkerOutcome[] = [];
          for (const event of s.events) {
            const single = await attempt([event]);
            outcomes.push(single.ok ? (single.outcomes[0] as WorkerOutcome) : { ok: false, error: single.error });
          }
          answer(s, outcomes);
        }
      }
    }
    busy = false;
    pump();
  };

  /** Starts the next group when allowed and something waits; gives the turn back otherwise. */
  const pump = (): void => {
    if (busy || !granted) return;
    if (queue.length === 0 || yieldAsked || closing) {
      granted = false;
      yieldAsked = false;
      send({ type: 'idle' });
      return;
    }
    busy = true;
    // Submissions that arrived during the last transaction are delivered before this runs.
    const run = (): void => void runNext();
    if (data.maxWaitMs > 0) setTimeout(run, data.maxWaitMs);
    else setImmediate(run);
  };

  const call = async (txId: number, callId: number, method: string, args: unknown[]): Promise<void> => {
    try {
      if (hooked === null || hooked.tx !== txId) throw new TypeError('the ingest transaction is no longer open');
      const fn = (hooked.handle as unknown as Record<string, unknown>)[method];
      if (typeof fn !== 'function') throw new TypeError(`the ingest transaction has no method ${method}`);
      const value: unknown = await (fn as (...a: unknown[]) => unknown).apply(hooked.handle, args);
      send({ type: 'call-result', call: callId, value });
    } catch (error) {
      send({ type: 'call-result', call: callId, error: toErrorData(error) });
    }
  };

  port.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'submit':
        queue.push({ id: message.id, events: decodeGroup(message.group) });
        pump();
        break;
      case 'grant':
        granted = true;
        pump();
        break;
      case 'yield':
        if (granted) {
          yieldAsked = true;
          pump();
        }
        break;
      case 'hook':
        hookEnabled = message.enabled;
        break;
      case 'call':
        void call(message.tx, message.call, message.method, message.args);
        break;
      case 'hook-done':
        if (hooked !== null && hooked.tx === message.tx) hooked.done(message.error === undefined ? undefined : fromErrorData(message.error));
        break;
      case 'close':
        closing = true;
        void store.close().finally(() => {
          send({ type: 'closed' });
          port.close();
        });
        break;
    }
  });
  send({ type: 'ready' });
}
