import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerDlq } from '../../src/cli/commands/dlq.ts';
import { registerSync } from '../../src/cli/commands/sync.ts';
import type { SyncRuntime } from '../../src/cli/commands/sync-runtime.ts';
import { engineFixture, type EngineFixture } from './sync-fixtures.ts';

let fx: EngineFixture | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await fx?.close();
  fx = null;
});

async function runCli(args: string[], runtime: SyncRuntime): Promise<{ out: string; code: number | undefined }> {
  const program = new Command('crmhub').exitOverride();
  const open = (): Promise<SyncRuntime> => Promise.resolve(runtime);
  registerSync(program, open);
  registerDlq(program, open);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  process.exitCode = undefined;
  await program.parseAsync(['node', 'crmhub', ...args]);
  const code = typeof process.exitCode === 'number' ? process.exitCode : undefined;
  process.exitCode = undefined;
  vi.restoreAllMocks();
  return { out, code };
}

describe('crmhub sync / dlq', () => {
  it('--dry-run --json prints the plan and writes nothing; a real run writes and summarises', async () => {
    fx = await engineFixture(['alpha']);
    const runtime: SyncRuntime = { store: fx.store, engine: fx.engine, close: () => Promise.resolve() };
    fx.crms.get('alpha')!.repEdit('contacts', undefined, { email: 'cli@x.io', firstname: 'Cli' });
    const dry = await runCli(['sync', '--dry-run', '--json'], runtime);
    const parsed = JSON.parse(dry.out);
    expect(parsed.dryRun).toBe(true);
    expect(parsed.plan[0]).toContain('created');
    expect(parsed.plan[0]).toContain('profile.first_name="Cli"');
    expect(await fx.store.listSyncRuns(5)).toEqual([]);
    const real = await runCli(['sync', '--connector', 'alpha', '--direction', 'pull'], runtime);
    expect(real.out).toMatch(/alpha\s+contacts\s+succeeded\s+1/);
    expect(real.code).toBeUndefined();
    expect(await fx.store.listSyncRuns(5)).toHaveLength(1);
  });

  it('dlq list and replay', async () => {
    fx = await engineFixture(['alpha']);
    const runtime: SyncRuntime = { store: fx.store, engine: fx.engine, close: () => Promise.resolve() };
    await fx.store.transaction(async (tx) => {
      const p = await tx.createProfile('person', new Date().toISOString());
      await tx.writeTraits(p.id, [{ key: 'email', value: 'invalid-email', source: 'event', changedAt: new Date().toISOString() }]);
      await fx!.engine.onProfilesChanged(tx, [p.id]);
    });
    await fx.engine.push('alpha');
    const list = JSON.parse((await runCli(['dlq', 'list', '--json'], runtime)).out);
    expect(list.deadLetters).toHaveLength(1);
    const text = await runCli(['dlq', 'list'], runtime);
    expect(text.out).toContain('payload:MEMORY_INVALID_VALUE');
    const replay = JSON.parse((await runCli(['dlq', 'replay', list.deadLetters[0].id, '--json'], runtime)).out);
    expect(replay).toEqual({ replayed: 1 });
    expect(await fx.store.pendingOutboxCount('alpha')).toBe(1);
  });
});
