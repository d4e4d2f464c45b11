/**
 * Settings the composition root hands to the sync engine (src/cli/runtime.ts).
 */
import { describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/load-config.ts';

const silent = { CRMHUB_DATABASE_URL: 'sqlite::memory:', CRMHUB_LOG_LEVEL: 'silent' };

describe('openRuntime engine settings', () => {
  it('passes CRMHUB_OUTBOX_LEASE_MS to the engine; an explicit engine.leaseMs wins', async () => {
    const fromEnv = await openRuntime({
      config: loadConfig({ ...silent, CRMHUB_OUTBOX_LEASE_MS: '123000' }, null),
      connectors: new Map(),
    });
    try {
      expect(fromEnv.engine.ctx.leaseMs).toBe(123_000);
    } finally {
      await fromEnv.close();
    }
    const byDefault = await openRuntime({ config: loadConfig(silent, null), connectors: new Map() });
    try {
      expect(byDefault.engine.ctx.leaseMs).toBe(60_000);
    } finally {
      await byDefault.close();
    }
    const explicit = await openRuntime({
      config: loadConfig({ ...silent, CRMHUB_OUTBOX_LEASE_MS: '123000' }, null),
      connectors: new Map(),
      engine: { leaseMs: 5_000 },
    });
    try {
      expect(explicit.engine.ctx.leaseMs).toBe(5_000);
    } finally {
      await explicit.close();
    }
  });
});
