import { afterEach, describe, expect, it } from 'vitest';
import { runScheduledJob, SyncScheduler } from '../../src/sync/sync-scheduler.ts';
import { engineFixture, type EngineFixture } from './sync-fixtures.ts';

let fx: EngineFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

describe('sync scheduler', () => {
  it('runs a job only for the lease holder', async () => {
    fx = await engineFixture(['alpha']);
    fx.crms.get('alpha')!.repEdit('contacts', undefined, { email: 's@x.io' });
    const entry = { connector: 'alpha', cron: '* * * * *', direction: 'pull' as const };
    // Another process holds the job's lease: this one skips.
    const now = new Date().toISOString();
    expect(await fx.store.acquireLease('sync:alpha:*:incremental', 'other-process', new Date(Date.now() + 60_000).toISOString(), now)).toBe(true);
    expect(await runScheduledJob(fx.engine, entry)).toBe(false);
    expect(await fx.store.listSyncRuns(5)).toEqual([]);
    await fx.store.releaseLease('sync:alpha:*:incremental', 'other-process');
    expect(await runScheduledJob(fx.engine, entry)).toBe(true);
    const [run] = await fx.store.listSyncRuns(5);
    expect(run).toMatchObject({ connector: 'alpha', trigger: 'cron', status: 'succeeded' });
    // The lease was released after the run.
    expect(await fx.store.acquireLease('sync:alpha:*:incremental', 'third', new Date(Date.now() + 1000).toISOString(), new Date().toISOString())).toBe(true);
  });

  it('fires croner jobs and stops cleanly', async () => {
    fx = await engineFixture(['alpha']);
    const scheduler = new SyncScheduler(fx.engine, [{ connector: 'alpha', cron: '* * * * * *', direction: 'pull' }]);
    scheduler.start();
    expect(scheduler.nextRuns()[0]?.next).toMatch(/^\d{4}-/);
    for (let i = 0; i < 40 && (await fx.store.listSyncRuns(1)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await scheduler.stop();
    expect((await fx.store.listSyncRuns(5)).length).toBeGreaterThan(0);
  });
});
