/**
 * SqliteStore's hooks for a second writer on the same file (the ingest worker): `withWriteTurn`
 * keeps the store's own transactions out while it runs, and `nestingGuard: false` stores still
 * serialise their transactions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-write-turn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SqliteStore write turn', () => {
  it('holds transactions back while a write turn runs, and a second connection writes in it', async () => {
    const file = path.join(dir, 'turn.db');
    const store = (await openStore(`sqlite:${file}`)) as SqliteStore;
    expect(store.file).toBe(path.resolve(file));
    const other = new SqliteStore({ file, nestingGuard: false });
    try {
      const order: string[] = [];
      let finishTurn!: () => void;
      const turn = store.withWriteTurn(async () => {
        order.push('turn start');
        // The other connection can take SQLite's write lock: this store holds no transaction.
        await other.transaction(async (tx) => void (await tx.createProfile('person', '2026-01-01T00:00:00.000Z')));
        await new Promise<void>((resolve) => (finishTurn = resolve));
        order.push('turn end');
      });
      const tx = store.transaction(() => Promise.resolve(void order.push('transaction')));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(order).toEqual(['turn start']);
      finishTurn();
      await Promise.all([turn, tx]);
      expect(order).toEqual(['turn start', 'turn end', 'transaction']);
    } finally {
      await other.close();
      await store.close();
    }
  });

  it('refuses a write turn inside a transaction (it would wait for itself)', async () => {
    const store = (await openStore(`sqlite:${path.join(dir, 'nested.db')}`)) as SqliteStore;
    try {
      await expect(store.transaction(() => store.withWriteTurn(() => Promise.resolve(1)))).rejects.toThrow(/nested/);
    } finally {
      await store.close();
    }
  });

  it('without the nesting guard, still runs one transaction at a time', async () => {
    const file = path.join(dir, 'unguarded.db');
    await (await openStore(`sqlite:${file}`)).close();
    const store = new SqliteStore({ file, nestingGuard: false });
    try {
      let active = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 5 }, () =>
          store.transaction(async (tx) => {
            active += 1;
            most = Math.max(most, active);
            await tx.createProfile('person', '2026-01-01T00:00:00.000Z');
            await new Promise((resolve) => setTimeout(resolve, 5));
            active -= 1;
          }),
        ),
      );
      expect(most).toBe(1);
    } finally {
      await store.close();
    }
  });
});
