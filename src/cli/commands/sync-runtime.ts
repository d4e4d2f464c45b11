/**
 * What `crmhub sync` and `crmhub dlq` need of the composition root. The lead's `src/cli/runtime.ts`
 * provides `openRuntime()`, which returns at least this shape; tests pass their own opener.
 */
import type { ProfileStore } from '../../store/port.ts';
import type { RunOnceOptions, RunSummary } from '../../sync/sync-engine.ts';
import { CliExit } from '../cli-exit.ts';

export interface SyncRuntime {
  store: ProfileStore;
  engine: { runOnce(options: RunOnceOptions): Promise<RunSummary> };
  close(): Promise<void>;
}

export type OpenSyncRuntime = () => Promise<SyncRuntime>;

function isRuntimeModule(value: unknown): value is { openRuntime: OpenSyncRuntime } {
  return typeof value === 'object' && value !== null && typeof (value as { openRuntime?: unknown }).openRuntime === 'function';
}

/** Loads `src/cli/runtime.ts` lazily so commands that do not need it start fast. */
export async function defaultOpenRuntime(): Promise<SyncRuntime> {
  // A computed specifier: the module is the composition root's (the lead's), loaded at run time.
  const specifier = ['..', 'runtime.ts'].join('/');
  const mod: unknown = await import(specifier).catch(() => null);
  if (!isRuntimeModule(mod)) throw new CliExit(2, 'crmhub: the runtime (src/cli/runtime.ts) is not available');
  return mod.openRuntime();
}
