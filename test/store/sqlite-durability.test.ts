import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-durable-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runChild(file: string): Promise<{ stdout: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const runTs = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
    const fixture = fileURLToPath(new URL('./fixtures/commit-then-die.ts', import.meta.url));
    const child = spawn(process.execPath, [runTs, fixture, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ stdout, signal }));
  });
}

describe('SQLite durability', () => {
  it('a committed transaction survives SIGKILL right after COMMIT; the open one is rolled back', async () => {
    const file = path.join(dir, 'crmhub.db');
    const { stdout, signal } = await runChild(file);
    expect(signal).toBe('SIGKILL');
    const id = stdout.trim();
    expect(id).toMatch(/^prf_/);
    const store = await openStore(`sqlite:${file}`);
    try {
      const found = await store.read().findIdentifiers([
        { type: 'email', value: 'durable@example.com' },
        { type: 'email', value: 'uncommitted@example.com' },
      ]);
      expect(found.map((f) => [f.value, f.profileId])).toEqual([['durable@example.com', id]]);
    } finally {
      await store.close();
    }
  });
});
