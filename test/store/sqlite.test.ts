import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';
import type { ProfileStore } from '../../src/store/port.ts';
import { storeConformance } from './conformance.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const files = new Map<ProfileStore, string>();

storeConformance('sqlite (memory)', { open: () => openStore('sqlite::memory:') });

storeConformance('sqlite (file, WAL)', {
  async open() {
    n += 1;
    const file = path.join(dir, `s${n}`, 'crmhub.db');
    const store = await openStore(`sqlite:${file}`);
    files.set(store, file);
    return store;
  },
  isolatedReads: true,
  reopen: (store) => openStore(`sqlite:${files.get(store)!}`),
});

describe('openStore (sqlite)', () => {
  it('creates folders, reopens with data intact and migrations applied once', async () => {
    const file = path.join(dir, 'nested', 'deeper', 'x.db');
    const a = await openStore(`sqlite:${file}`);
    const id = await a.transaction(async (tx) => (await tx.createProfile('person', '2026-01-01T00:00:00Z')).id);
    await a.close();
    const b = await openStore(`sqlite://${file}`);
    expect(await b.migrate()).toEqual([]);
    expect((await b.read().getProfile(id))?.kind).toBe('person');
    await b.close();
  });

  it('rejects unknown URL schemes with a config error', async () => {
    await expect(openStore('mysql://x')).rejects.toMatchObject({ kind: 'config', code: 'DATABASE_URL_INVALID' });
    await expect(openStore('sqlite:')).rejects.toMatchObject({ kind: 'config' });
  });
});
