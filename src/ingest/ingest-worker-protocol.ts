/**
 * The messages between the main thread (`IngestWorker` in `ingest-worker-client.ts`) and the ingest
 * worker thread (`ingest-worker.ts`), and how errors cross between them: a thread boundary clones
 * an `Error` into a plain one, so a `CrmhubError`'s kind, code and context are carried as data and
 * rebuilt on the other side (callers such as the sync engine's hook branch on them).
 */
import { CrmhubError, ERROR_KINDS, type ErrorContext, type ErrorKind } from '../connector-kit/errors.ts';
import type { Identifier, JsonObject, ProfileId } from '../core/types.ts';
import type { EventType } from './event-schemas.ts';
import { EVENT_SOURCE } from './extract-identifiers.ts';
import type { EventOutcome, EventStatus, PreparedEvent } from './ingest-group.ts';

/** Given to the worker at start (`workerData`). */
export interface IngestWorkerData {
  /** Absolute path of the SQLite database file (already migrated by the main thread). */
  file: string;
  /** URL of the worker module (`ingest-worker.ts`). */
  entry: string;
  /** URL of tsx's ESM API when the modules are TypeScript (the worker registers it first), else null. */
  loader: string | null;
  /** Group commit: most events per transaction, and how long the first waiting submission waits (ms; 0 = next turn). */
  maxItems: number;
  maxWaitMs: number;
  /** Whether the main thread has an `onProfilesChanged` hook to run in each transaction (updated by `hook` messages). */
  hook: boolean;
}

/** An error as data. */
export interface ErrorData {
  message: string;
  name: string;
  stack?: string;
  /** Present when it was a CrmhubError. */
  crmhub?: { kind: ErrorKind; code: string; context: ErrorContext; retryAfterMs?: number };
}

/** Main thread → worker. */
export type ToWorker =
  /** One request's events, to store in a coming group transaction; answered by a `result` with the same id. */
  | { type: 'submit'; id: number; group: WireGroup }
  /**
   * The main store's write turn is held for the worker: it may run transactions until it answers
   * `idle` (nothing left to do, or asked to `yield`).
   */
  | { type: 'grant' }
  /** Finish the running transaction, then answer `idle` (others wait for the write turn). */
  | { type: 'yield' }
  /** Whether to run the main thread's hook in each transaction from now on. */
  | { type: 'hook'; enabled: boolean }
  /** A method call on transaction `tx` (whose hook the main thread runs). */
  | { type: 'call'; tx: number; call: number; method: string; args: unknown[] }
  /** The hook of transaction `tx` finished (with `error`: it failed, roll back). */
  | { type: 'hook-done'; tx: number; error?: ErrorData }
  /** Close the connection and stop. */
  | { type: 'close' };

/** Worker → main thread. */
export type FromWorker =
  | { type: 'ready' }
  /** The worker could not start (e.g. the database would not open). */
  | { type: 'fatal'; error: ErrorData }
  /** Submission `id` is through: one outcome per event, each stored or failed. */
  | { type: 'result'; id: number; outcomes: WireOutcomes }
  /** The write turn is released (see `grant`). */
  | { type: 'idle' }
  /** One transaction attempt, for metrics. */
  | { type: 'flush'; events: number; durationMs: number; committed: boolean }
  /** Transaction `tx` reached its hook: run it with a transaction offering `methods`, then answer `hook-done`. */
  | { type: 'hook-run'; tx: number; profileIds: ProfileId[]; methods: string[] }
  | { type: 'call-result'; call: number; value: unknown }
  | { type: 'call-result'; call: number; error: ErrorData }
  | { type: 'closed' };

export function toErrorData(error: unknown): ErrorData {
  if (error instanceof CrmhubError) {
    const { kind, code, context, retryAfterMs } = error;
    return {
      message: error.message,
      name: error.name,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
      crmhub: { kind, code, context, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    };
  }
  if (error instanceof Error) return { message: error.message, name: error.name, ...(error.stack === undefined ? {} : { stack: error.stack }) };
  return { message: String(error), name: 'Error' };
}

export function fromErrorData(data: ErrorData): Error {
  const c = data.crmhub;
  const error =
    c !== undefined && (ERROR_KINDS as readonly string[]).includes(c.kind)
      ? new CrmhubError(c.kind, data.message, { code: c.code, context: c.context, ...(c.retryAfterMs === undefined ? {} : { retryAfterMs: c.retryAfterMs }) })
      : data.name === 'TypeError'
        ? new TypeError(data.message)
        : new CrmhubError('internal', data.message, { code: 'INGEST_WORKER_ERROR', context: { error: data.name } });
  // The stack of where it was thrown (in the other thread) is the useful one.
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}

/**
 * Prepared events as columns of strings: a thread boundary copies an array of strings for almost
 * nothing, but rebuilds every object (an event with its nested properties costs microseconds on
 * each side — as much as storing it). Properties travel as the JSON they are stored as.
 */
export interface WireGroup {
  type: string[];
  messageId: string[];
  generated: boolean[];
  name: (string | null)[];
  properties: string[];
  /** Traits as JSON, null when none. */
  traits: (string | null)[];
  at: string[];
  receivedAt: string[];
  /** Resolution keys; they are JSON of [kind, type, value, …], so the identifiers are read back from them. */
  personKey: string[];
  accountKey: string[];
  previousId: (string | null)[];
}

export function encodeGroup(events: readonly PreparedEvent[]): WireGroup {
  const w: WireGroup = { type: [], messageId: [], generated: [], name: [], properties: [], traits: [], at: [], receivedAt: [], personKey: [], accountKey: [], previousId: [] };
  for (const e of events) {
    w.type.push(e.type);
    w.messageId.push(e.messageId);
    w.generated.push(e.messageIdGenerated);
    w.name.push(e.name);
    w.properties.push(e.propertiesJson);
    w.traits.push(e.traits === null ? null : JSON.stringify(e.traits));
    w.at.push(e.at);
    w.receivedAt.push(e.receivedAt);
    w.personKey.push(e.personKey);
    w.accountKey.push(e.accountKey);
    w.previousId.push(e.previousId);
  }
  return w;
}

export function decodeGroup(w: WireGroup): PreparedEvent[] {
  /** Identifier lists by key: a visitor's events share one. */
  const lists = new Map<string, Identifier[]>();
  const identifiers = (key: string): Identifier[] => {
    if (key === '') return [];
    let list = lists.get(key);
    if (list === undefined) {
      const flat = JSON.parse(key) as string[];
      list = [];
      for (let i = 1; i + 1 < flat.length; i += 2) list.push({ type: flat[i] as string, value: flat[i + 1] as string, source: EVENT_SOURCE });
      lists.set(key, list);
    }
    return list;
  };
  const out: PreparedEvent[] = [];
  for (let i = 0; i < w.type.length; i++) {
    const personKey = w.personKey[i] as string;
    const accountKey = w.accountKey[i] as string;
    const traits = w.traits[i] ?? null;
    out.push({
      type: w.type[i] as EventType,
      messageId: w.messageId[i] as string,
      messageIdGenerated: w.generated[i] === true,
      name: w.name[i] ?? null,
      propertiesJson: w.properties[i] as string,
      traits: traits === null ? null : (JSON.parse(traits) as JsonObject),
      at: w.at[i] as string,
      receivedAt: w.receivedAt[i] as string,
      person: identifiers(personKey),
      personKey,
      account: identifiers(accountKey),
      accountKey,
      previousId: w.previousId[i] ?? null,
    });
  }
  return out;
}

/** Outcomes as columns: one status letter per event (s/d/u, f = failed), profile ids, the few events with issues, and the errors of failed ones. */
export interface WireOutcomes {
  status: string;
  profileId: (string | null)[];
  issues: [number, string[]][];
  errors: [number, ErrorData][];
}

const STATUS_LETTER: Record<EventStatus, string> = { stored: 's', duplicate: 'd', unresolved: 'u' };
const LETTER_STATUS: Record<string, EventStatus> = { s: 'stored', d: 'duplicate', u: 'unresolved' };

/** One event's result: its outcome, or the error that kept it from being stored. */
export type WorkerOutcome = { ok: true; value: EventOutcome } | { ok: false; error: unknown };

export function encodeOutcomes(outcomes: readonly WorkerOutcome[]): WireOutcomes {
  let status = '';
  const profileId: (string | null)[] = [];
  const issues: [number, string[]][] = [];
  const errors: [number, ErrorData][] = [];
  outcomes.forEach((o, i) => {
    if (!o.ok) {
      status += 'f';
      profileId.push(null);
      errors.push([i, toErrorData(o.error)]);
      return;
    }
    status += STATUS_LETTER[o.value.status];
    profileId.push(o.value.profileId);
    if (o.value.issues.length > 0) issues.push([i, o.value.issues]);
  });
  return { status, profileId, issues, errors };
}

export function decodeOutcomes(w: WireOutcomes): WorkerOutcome[] {
  const out: WorkerOutcome[] = [];
  for (let i = 0; i < w.status.length; i++) {
    const letter = w.status[i] as string;
    out.push(letter === 'f' ? { ok: false, error: null } : { ok: true, value: { status: LETTER_STATUS[letter] as EventStatus, profileId: (w.profileId[i] ?? null) as ProfileId | null, issues: [] } });
  }
  for (const [i, issues] of w.issues) {
    const o = out[i];
    if (o?.ok === true) o.value.issues = issues;
  }
  for (const [i, error] of w.errors) out[i] = { ok: false, error: fromErrorData(error) };
  return out;
}
