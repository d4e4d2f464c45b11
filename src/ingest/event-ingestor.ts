/**
 * The ingest pipeline behind the Segment-compatible routes: for each validated event, inside one
 * group-commit transaction shared with concurrent requests —
 *
 * 1. dedupe on `messageId` (an event already stored is answered as stored, and changes nothing);
 * 2. correct the client clock skew (`receivedAt − (sentAt − timestamp)`);
 * 3. resolve identity: the person from `userId`/`anonymousId`/emails/`externalIds`, and for `group`
 *    the account from `groupId` (design.md §5); `alias` joins `previousId` to `userId`;
 * 4. write identify traits to the person and group traits to the account, with provenance
 *    (source `event`, changedAt = corrected timestamp; a stored value that changed later is kept,
 *    so late-arriving events never overwrite newer facts; a `null` trait deletes it);
 * 5. append the event (`events` table) to the person's profile;
 * 6. call `onProfilesChanged(tx, ids)` once per transaction with every profile created, merged into,
 *    or whose traits changed — in the same transaction, so the sync engine's outbox rows commit with
 *    the change that caused them.
 *
 * Every caller is answered after the transaction holding its events is on disk.
 *
 * Where it runs: with a SQLite file (`worker: true`), the groups are formed and run in a worker
 * thread (`ingest-worker.ts`) on its own connection, so this thread only parses, validates and
 * prepares (`prepareEvents`) while the worker writes — SQLite is synchronous, so on this thread
 * every statement and COMMIT would block HTTP handling. Otherwise (Postgres, `:memory:`, a custom
 * identity port, or if the worker stops) a {@link GroupCommitter} runs them here. Both run the same
 * code (`ingest-group.ts`) and store the same rows.
 */
import { toCrmhubError } from '../connector-kit/errors.ts';
import type { ProfileStore } from '../store/port.ts';
import { GroupCommitter, type Outcome } from './group-committer.ts';
import { type EventOutcome, type EventStatus, type IdentityPort, type IngestItem, prepareEvents, type ProfilesChangedHook, runGroup } from './ingest-group.ts';
import { IngestWorker, type WriteTurnStore } from './ingest-worker-client.ts';
import type { IngestEvent } from './validate-events.ts';

export type { EventOutcome, EventStatus, IdentityPort, ProfilesChangedHook } from './ingest-group.ts';

export interface EventIngestorOptions {
  store: ProfileStore;
  identity: IdentityPort;
  onProfilesChanged?: ProfilesChangedHook;
  /** Group commit wait, ms. Default 0 (requests of the same event-loop turn share a transaction). */
  maxWaitMs?: number;
  /** Most events per transaction. Default 2000. */
  maxEvents?: number;
  /** Metrics hooks. `onEvent` is called once per (type, status) of each `ingest` call, with how many events had it. */
  onEvent?: (type: string, status: EventStatus | 'failed', count: number) => void;
  onFlush?: (events: number, durationMs: number, committed: boolean) => void;
  /**
   * Run the group transactions in a worker thread (`ingest-worker.ts`) when the store is a SQLite
   * file: the main thread then parses the next requests while a group's statements and COMMIT run
   * there. The worker resolves identity with a default `IdentityResolver`, so set this only when
   * `identity` is one. Ignored for other stores (Postgres does its I/O off the thread already).
   * Costs a second V8 heap and its JIT warm-up; pays when a core is free for it. Default false.
   */
  worker?: boolean;
  /** Called once if the worker stops (it failed to start or died); ingestion goes on in-process. */
  onWorkerStopped?: (error: Error) => void;
}

/** What the worker mode needs of the store (`SqliteStore` has it). */
interface SharedFileStore extends WriteTurnStore {
  readonly file: string | null;
}

function sharedFile(store: ProfileStore): SharedFileStore | null {
  const s = store as Partial<SharedFileStore>;
  return typeof s.withWriteTurn === 'function' && typeof s.file === 'string' ? (s as SharedFileStore) : null;
}

export class EventIngestor {
  private readonly committer: GroupCommitter<IngestItem, EventOutcome>;
  private hook: ProfilesChangedHook | undefined;
  /** The ingest worker thread (null: everything is stored in-process). */
  private worker: IngestWorker | null = null;

  constructor(private readonly options: EventIngestorOptions) {
    this.hook = options.onProfilesChanged;
    const maxItems = options.maxEvents ?? 2000;
    const maxWaitMs = options.maxWaitMs ?? 0;
    const shared = options.worker === true ? sharedFile(options.store) : null;
    if (shared !== null && shared.file !== null) {
      this.worker = new IngestWorker({
        file: shared.file,
        store: shared,
        maxItems,
        maxWaitMs,
        hook: () => this.hook,
        ...(options.onFlush === undefined ? {} : { onFlush: options.onFlush }),
      });
    }
    // The in-process path (also what takes over if the worker stops).
    this.committer = new GroupCommitter<IngestItem, EventOutcome>((items) => this.commit(items), {
      maxWaitMs,
      maxItems,
      ...(options.onFlush === undefined ? {} : { onFlush: options.onFlush }),
    });
  }

  /** Sets (or replaces) the hook called inside each ingest transaction; the sync engine uses it for outbox rows. */
  setProfilesChangedHook(hook: ProfilesChangedHook | undefined): void {
    this.hook = hook;
    this.worker?.hookChanged();
  }

  /**
   * Stores `events` (received at `receivedAt`, ISO-8601) and resolves after the transaction holding
   * them committed: one outcome per event, in order. A failed outcome means that event is NOT stored.
   */
  async ingest(events: IngestEvent[], receivedAt: string): Promise<Outcome<EventOutcome>[]> {
    const items = events.map((event) => ({ event, receivedAt }));
    let outcomes: Outcome<EventOutcome>[] | null = null;
    const worker = this.worker;
    if (worker !== null) {
      try {
        await worker.ready;
        outcomes = await worker.submit(prepareEvents(items));
      } catch (error) {
        // The worker failed to start or died: whether these events were stored is unknown, so they
        // are stored again here (stored ones come back as duplicates), and so is everything after.
        this.dropWorker(worker, toCrmhubError(error));
      }
    }
    outcomes ??= await this.committer.submit(items);
    const onEvent = this.options.onEvent;
    if (onEvent !== undefined) {
      // Counted per (type, status), not per event: a metrics update costs a label hash each.
      const counts = new Map<string, number>();
      outcomes.forEach((o, i) => {
        const key = `${(events[i] as IngestEvent).type}\u0000${o.ok ? o.value.status : 'failed'}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
      for (const [key, count] of counts) {
        const [type = '', status = ''] = key.split('\u0000');
        onEvent(type, status as EventStatus | 'failed', count);
      }
    }
    return outcomes;
  }

  /** Waits for queued events to commit and refuses new ones. */
  async close(): Promise<void> {
    await this.committer.close();
    await this.worker?.close();
  }

  private dropWorker(worker: IngestWorker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.options.onWorkerStopped?.(error);
    void worker.close();
  }

  /** The in-process group transaction. */
  private commit(items: IngestItem[]): Promise<EventOutcome[]> {
    const events = prepareEvents(items);
    return this.options.store.transaction((tx) => runGroup(tx, this.options.identity, events, this.hook));
  }
}
