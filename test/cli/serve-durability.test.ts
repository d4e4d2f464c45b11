/**
 * `crmhub serve` as a real process: a 200 means stored — SIGKILL right after the 200s loses
 * nothing; a restart reads every event back. Also: SIGTERM stops cleanly with exit 0, and
 * `crmhub profiles get` reads the same database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/crmhub.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-serve-'));
const db = path.join(dir, 'crmhub.db');
const WRITE_KEY = 'wk_durability_test';
const ADMIN = 'admin_durability_token';
const env = {
  ...process.env,
  CRMHUB_DATABASE_URL: `sqlite:${db}`,
  CRMHUB_WRITE_KEYS: WRITE_KEY,
  CRMHUB_ADMIN_TOKEN: ADMIN,
  CRMHUB_LOG_LEVEL: 'warn',
  CRMHUB_CONFIG: '',
};
const auth = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

async function startServe(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', String(port)], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i += 1) {
    if (child.exitCode !== null) throw new TypeError(`serve exited early: ${stderr}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return { child, url, exited };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new TypeError(`serve did not start: ${stderr}`);
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('crmhub serve (process)', () => {
  it('loses nothing answered 200 when killed with SIGKILL right after', async () => {
    const first = await startServe();
    const sends = Array.from({ length: 30 }, (_, i) =>
      fetch(`${first.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          batch: Array.from({ length: 10 }, (_, j) => ({
            type: j === 0 ? 'identify' : 'track',
            userId: `kill-user-${i}`,
            event: 'Durable',
            traits: { email: `kill${i}@example.com`, n: i },
            messageId: `kill-${i}-${j}`,
          })),
        }),
      }),
    );
    const responses = await Promise.all(sends);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(responses.map((r) => r.status)).toEqual(Array(30).fill(200));

    // Read back directly from the store…
    const store = await openStore(`sqlite:${db}`);
    try {
      for (let i = 0; i < 30; i += 1) for (let j = 0; j < 10; j += 1) expect(await store.read().hasEvent(`kill-${i}-${j}`)).toBe(true);
    } finally {
      await store.close();
    }
    // …and through a restarted server's profile route.
    const second = await startServe();
    try {
      const res = await fetch(`${second.url}/v1/profiles?identifier=email:kill29@example.com`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.status).toBe(200);
      const profile = (await res.json()) as { traits: Record<string, { value: unknown; source: string }> };
      expect(profile.traits.n).toMatchObject({ value: 29, source: 'event' });
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 120_000);

  it('crmhub profiles get prints a table, JSON with --json, exits 1 when not found and 2 on a malformed argument', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'profiles', 'get', ...args], { cwd: dir, env, encoding: 'utf8' });
    const json = run('email:KILL3@example.com', '--json');
    expect(json.status, json.stderr).toBe(0);
    const profile = JSON.parse(json.stdout) as { id: string; kind: string; identifiers: unknown[]; traits: Record<string, unknown> };
    expect(profile.kind).toBe('person');
    expect(profile.identifiers).toContainEqual({ type: 'user_id', value: 'kill-user-3', source: 'event' });
    expect(Object.keys(profile.traits).sort()).toEqual(['email', 'n']);

    const table = run(profile.id);
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toContain(`Profile ${profile.id} (person)`);
    expect(table.stdout).toMatch(/IDENTIFIERS\nTYPE\s+VALUE\s+SOURCE/);
    expect(table.stdout).toMatch(/user_id\s+kill-user-3\s+event/);
    expect(table.stdout).toMatch(/n\s+3\s+event\s+\d{4}-/);

    const missing = run('email:nobody@example.com');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no profile matches/);
    const bad = run('email:');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/expected TYPE:VALUE/);
  }, 120_000);

  it('exits 2 on invalid settings, naming the variable', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...env, CRMHUB_PORT: 'http' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/CRMHUB_PORT/);
  }, 60_000);
});
