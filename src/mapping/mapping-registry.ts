/**
 * The live set of mappings `crmhub serve` syncs with. Watches the mappings folder: a valid edit
 * takes effect for the next sync without a restart; an invalid edit is logged with its issues,
 * shown by `status()` (for /readyz and the admin API), and the last good version stays live.
 * Every version that goes live is reported through `onLoaded` (the store records it) so each sync
 * run can say which mapping it used.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { CompiledMapping } from './compile-mapping.ts';
import type { Issue } from './issue.ts';
import { formatIssue, hasErrors } from './issue.ts';
import { loadMappingDir } from './load-mappings.ts';

/** The subset of a pino logger the registry uses. */
export interface RegistryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MappingRegistryOptions {
  /** The mappings folder (`CRMHUB_MAPPINGS_DIR`, default `./mappings`). */
  dir: string;
  /** Watch the folder with fs.watch. Default true. Tests may set false and call `reload()`. */
  watch?: boolean;
  /** Quiet time after the last file event before reloading, in ms. Default 250. */
  debounceMs?: number;
  /** Called once per version that goes live (first load included); wire to the store's recordMappingVersion. */
  onLoaded?: (connector: string, object: string, hash: string, at: string) => void | Promise<void>;
  logger?: RegistryLogger;
  /** Clock, injectable for tests. */
  now?: () => Date;
}

export interface RegistryFileStatus {
  /** Hash of the file's current bytes. */
  hash: string;
  /** Whether the current bytes are valid and live. */
  ok: boolean;
  /** Hash of the version in use (the last good one), if any. */
  liveHash: string | null;
  connector: string | null;
  object: string | null;
  /** ISO time the live version was loaded. */
  loadedAt: string | null;
  issues: Issue[];
}

export interface RegistryStatus {
  /** False when any file has errors (its last good version, if any, is still live). */
  ok: boolean;
  /** ISO time of the last reload. */
  checkedAt: string | null;
  files: Record<string, RegistryFileStatus>;
  issues: Issue[];
}

interface LiveEntry {
  compiled: CompiledMapping;
  loadedAt: string;
}

export class MappingRegistry {
  private readonly live = new Map<string, LiveEntry>();
  private current: RegistryStatus = { ok: false, checkedAt: null, files: {}, issues: [] };
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: MappingRegistryOptions) {}

  /** Loads the folder once and, unless `watch: false`, starts watching it. */
  static async open(options: MappingRegistryOptions): Promise<MappingRegistry> {
    const registry = new MappingRegistry(options);
    await registry.reload();
    if (options.watch !== false) registry.startWatching();
    return registry;
  }

  /** The live mapping of a connector's object. */
  get(connector: string, object: string): CompiledMapping | undefined {
    for (const entry of this.live.values()) {
      if (entry.compiled.connector === connector && entry.compiled.object === object) return entry.compiled;
    }
    return undefined;
  }

  /** Every live mapping, sorted by connector then object. */
  all(): CompiledMapping[] {
    return [...this.live.values()]
      .map((e) => e.compiled)
      .sort((a, b) => a.connector.localeCompare(b.connector) || a.object.localeCompare(b.object));
  }

  status(): RegistryStatus {
    return this.current;
  }

  /** Re-reads the folder now. Calls are serialised; resolves with the new status. */
  reload(): Promise<RegistryStatus> {
    const run = this.chain.then(() => this.doReload());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Stops watching. Pending reloads finish; no new ones start. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private startWatching(): void {
    try {
      this.watcher = watch(this.options.dir, { recursive: true }, () => this.schedule());
      this.watcher.on('error', (error) =>
        this.options.logger?.error({ err: error, dir: this.options.dir }, 'mappings watcher failed'),
      );
    } catch (error) {
      this.options.logger?.error(
        { err: error, dir: this.options.dir },
        'cannot watch the mappings folder; edits need a restart',
      );
    }
  }

  // Editors save in several steps (truncate, write, rename); wait for quiet before reloading.
  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) void this.reload();
    }, this.options.debounceMs ?? 250);
  }

  private async doReload(): Promise<RegistryStatus> {
    const at = (this.options.now?.() ?? new Date()).toISOString();
    const result = await loadMappingDir(this.options.dir);
    const present = new Set(result.files.map((f) => f.file));
    // A deleted file is the admin's intent: its mapping stops. A broken file keeps its last good one.
    for (const file of [...this.live.keys()]) if (!present.has(file)) this.live.delete(file);

    const files: Record<string, RegistryFileStatus> = {};
    for (const f of result.files) {
      const before = this.live.get(f.file);
      if (f.compiled && before?.compiled.hash !== f.compiled.hash) {
        this.live.set(f.file, { compiled: f.compiled, loadedAt: at });
        this.options.logger?.info({ file: f.file, hash: f.compiled.hash }, 'mapping loaded');
        await this.notify(f.compiled, at);
      }
      if (hasErrors(f.issues)) {
        this.options.logger?.warn(
          {
            file: f.file,
            issues: f.issues.map(formatIssue),
            keptHash: this.live.get(f.file)?.compiled.hash ?? null,
          },
          'mapping file has errors; the last good version stays live',
        );
      }
      const entry = this.live.get(f.file);
      files[f.file] = {
        hash: f.hash,
        ok: !hasErrors(f.issues),
        liveHash: entry?.compiled.hash ?? null,
        connector: entry?.compiled.connector ?? null,
        object: entry?.compiled.object ?? null,
        loadedAt: entry?.loadedAt ?? null,
        issues: f.issues,
      };
    }
    this.current = { ok: !hasErrors(result.issues), checkedAt: at, files, issues: result.issues };
    return this.current;
  }

  private async notify(compiled: CompiledMapping, at: string): Promise<void> {
    try {
      await this.options.onLoaded?.(compiled.connector, compiled.object, compiled.hash, at);
    } catch (error) {
      this.options.logger?.error(
        { err: error, connector: compiled.connector, object: compiled.object },
        'recording the mapping version failed',
      );
    }
  }
}
