/**
 * Pull pages are retried by the taxonomy (design.md §7): a 5xx backs off and tries again, a
 * non-retryable failure ends the pull at once, and the cursor never moves past an unread page.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { engineFixture, type EngineFixture } from './sync-fixtures.ts';

let fx: EngineFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** Answers from a fixed list, then a value that never triggers a fault. */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0.99;
}

describe('pull retries', () => {
  it('retries a page that failed with a 5xx and applies every record', async () => {
    fx = await engineFixture(['alpha']);
    const alpha = fx.crms.get('alpha')!;
    for (let i = 0; i < 5; i++) alpha.repEdit('contacts', undefined, { email: `r${i}@x.io`, firstname: `R${i}` });
    alpha.faults = { transientRate: 0.5, random: sequence([0.1, 0.1]) };
    const counts = await fx.engine.pull('alpha', 'contacts');
    expect(counts.created).toBe(5);
    // Two failed attempts, then the page that succeeded (and however many pages follow).
    expect(counts.apiCalls).toBeGreaterThanOrEqual(3);
    const identifiers = await fx.store.read().findIdentifiers([0, 1, 2, 3, 4].map((i) => ({ type: 'email', value: `r${i}@x.io` })));
    expect(identifiers).toHaveLength(5);
  });

  it('gives up after the retry budget and keeps the cursor where it was', async () => {
    fx = await engineFixture(['alpha']);
    const alpha = fx.crms.get('alpha')!;
    alpha.repEdit('contacts', undefined, { email: 'stuck@x.io' });
    alpha.faults = { transientRate: 1 };
    const failure = await fx.engine.pull('alpha', 'contacts').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CrmhubError);
    expect((failure as CrmhubError).kind).toBe('transient');
    expect(await fx.store.read().getCursor('alpha', 'contacts')).toBeNull();
  });

  it('does not retry what cannot succeed by waiting (auth)', async () => {
    fx = await engineFixture(['alpha']);
    const alpha = fx.crms.get('alpha')!;
    alpha.faults = { authFailure: true };
    const before = alpha.calls.readChanges ?? 0;
    const failure = await fx.engine.pull('alpha', 'contacts').catch((e: unknown) => e);
    expect((failure as CrmhubError).kind).toBe('auth');
    expect((alpha.calls.readChanges ?? 0) - before).toBe(1);
  });
});
