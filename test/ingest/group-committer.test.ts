import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../src/ingest/group-committer.ts';

/** A fake store: records the items of each "transaction"; a transaction holding a poison item rolls back. */
function fakeSink(poison = new Set<string>()) {
  const committed: string[][] = [];
  const sink = async (items: string[]): Promise<string[]> => {
    await Promise.resolve();
    if (items.some((i) => poison.has(i))) throw new TypeError('poison');
    committed.push([...items]);
    return items.map((i) => `ok:${i}`);
  };
  return { committed, sink };
}

describe('GroupCommitter', () => {
  it('puts concurrent submissions into one transaction and answers each after it', async () => {
    const { committed, sink } = fakeSink();
    const gc = new GroupCommitter(sink);
    const results = await Promise.all([gc.submit(['a', 'b']), gc.submit(['c']), gc.submit(['d', 'e'])]);
    expect(committed).toEqual([['a', 'b', 'c', 'd', 'e']]);
    expect(results).toEqual([
      [{ ok: true, value: 'ok:a' }, { ok: true, value: 'ok:b' }],
      [{ ok: true, value: 'ok:c' }],
      [{ ok: true, value: 'ok:d' }, { ok: true, value: 'ok:e' }],
    ]);
  });

  it('caps a transaction at maxItems without splitting a submission', async () => {
    const { committed, sink } = fakeSink();
    const gc = new GroupCommitter(sink, { maxItems: 3 });
    await Promise.all([gc.submit(['a', 'b']), gc.submit(['c', 'd']), gc.submit(['e'])]);
    expect(committed).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
  });

  it('collects submissions that arrive while a transaction runs into the next one', async () => {
    const committed: string[][] = [];
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommitter<string, string>(async (items) => {
      if (committed.length === 0) await gate;
      committed.push(items);
      return items;
    });
    const first = gc.submit(['a']);
    await new Promise((r) => setImmediate(r));
    const later = [gc.submit(['b']), gc.submit(['c'])];
    release?.();
    await Promise.all([first, ...later]);
    expect(committed).toEqual([['a'], ['b', 'c']]);
  });

  it('isolates a poison submission: the others commit, it alone fails', async () => {
    const { committed, sink } = fakeSink(new Set(['bad']));
    const gc = new GroupCommitter(sink);
    const [good, bad, other] = await Promise.all([gc.submit(['a']), gc.submit(['bad']), gc.submit(['c'])]);
    expect(good).toEqual([{ ok: true, value: 'ok:a' }]);
    expect(other).toEqual([{ ok: true, value: 'ok:c' }]);
    expect(bad?.[0]?.ok).toBe(false);
    expect(committed.flat().sort()).toEqual(['a', 'c']);
  });

  it('isolates a poison item inside one submission: its siblings are stored', async () => {
    const { committed, sink } = fakeSink(new Set(['bad']));
    const gc = new GroupCommitter(sink);
    const outcomes = await gc.submit(['a', 'bad', 'c']);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    expect(committed.flat()).toEqual(['a', 'c']);
  });

  it('waits maxWaitMs for company when asked to', async () => {
    const { committed, sink } = fakeSink();
    const gc = new GroupCommitter(sink, { maxWaitMs: 20 });
    const first = gc.submit(['a']);
    await new Promise((r) => setTimeout(r, 1));
    await Promise.all([first, gc.submit(['b'])]);
    expect(committed).toEqual([['a', 'b']]);
  });

  it('close() flushes what waits and refuses new work', async () => {
    const { committed, sink } = fakeSink();
    const gc = new GroupCommitter(sink, { maxWaitMs: 10_000 });
    const pending = gc.submit(['a']);
    await gc.close();
    expect(await pending).toEqual([{ ok: true, value: 'ok:a' }]);
    expect(committed).toEqual([['a']]);
    const refused = await gc.submit(['z']);
    expect(refused[0]?.ok).toBe(false);
  });

  it('reports each transaction to onFlush', async () => {
    const { sink } = fakeSink(new Set(['bad']));
    const flushes: [number, boolean][] = [];
    const gc = new GroupCommitter(sink, { onFlush: (n, _ms, ok) => flushes.push([n, ok]) });
    await Promise.all([gc.submit(['a']), gc.submit(['bad'])]);
    expect(flushes).toEqual([
      [2, false],
      [1, true],
      [1, false],
    ]);
  });
});
