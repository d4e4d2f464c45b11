import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { MappingsRuntime } from '../../src/cli/commands/mappings.ts';
import { setMappingsRuntimeFactory } from '../../src/cli/commands/mappings.ts';
import type { Profile, ProfileId } from '../../src/core/types.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** A runtime whose parts resolve immediately; override what a test needs. */
function fakeRuntime(parts: Partial<MappingsRuntime> = {}): MappingsRuntime {
  return {
    describe: (_c, object) => Promise.resolve({ object, fields: [] }),
    loadProfile: () => Promise.resolve(null),
    readRemote: () => Promise.resolve(null),
    getShadow: () => Promise.resolve(null),
    close: () => Promise.resolve(),
    ...parts,
  };
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'crmhub', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('crmhub mappings', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crmhub-mappings-cli-'));
    cpSync(path.join(root, 'mappings'), dir, { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => setMappingsRuntimeFactory(undefined));

  it('validate: the shipped mappings pass with exit 0', async () => {
    const r = await run('mappings', 'validate', dir);
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toContain('10 mapping file(s), 0 error(s), 0 warning(s)');
  });

  it('validate: every issue as file:line:col code message, exit 2', async () => {
    const file = path.join(dir, 'hubspot', 'contacts.yaml');
    const original = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      original
        .replace('remote: lifecyclestage', 'remote: lifecyclestag')
        .replace('    remote: jobtitle', '    remote: jobtitle\n    direction: to_remot'),
    );
    try {
      const r = await run('mappings', 'validate', dir);
      expect(r.code).toBe(2);
      const lines = r.out.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(
        new RegExp(
          `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ E_BAD_ENUM "to_remot" is not one of .* \\(did you mean to_remote\\?\\)$`,
        ),
      );
      expect(lines[1]).toMatch(
        /:\d+:13 E_UNKNOWN_FIELD hubspot contacts has no field "lifecyclestag" \(did you mean lifecyclestage\?\)$/,
      );

      const json = await run('mappings', 'validate', dir, '--json');
      expect(json.code).toBe(2);
      const parsed = JSON.parse(json.out);
      expect(parsed.ok).toBe(false);
      expect(parsed.issues.map((i: { code: string }) => i.code).sort()).toEqual([
        'E_BAD_ENUM',
        'E_UNKNOWN_FIELD',
      ]);
      expect(parsed.files).toHaveLength(10);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('validate --remote checks against the live schema from the runtime', async () => {
    const describeCalls: string[] = [];
    setMappingsRuntimeFactory(() =>
      Promise.resolve(
        fakeRuntime({
          describe: (connector, object) => {
            describeCalls.push(`${connector}/${object}`);
            // A live HubSpot account where only `email` exists: every other mapped property is missing.
            return Promise.resolve(
              connector === 'hubspot' && object === 'contacts'
                ? {
                    object,
                    fields: [
                      {
                        name: 'email',
                        label: 'Email',
                        type: 'string',
                        readOnly: false,
                        unique: true,
                        required: false,
                        custom: false,
                      },
                    ],
                  }
                : { object, fields: [] },
            );
          },
        }),
      ),
    );
    const r = await run('mappings', 'validate', path.join(dir), '--remote', '--json');
    expect(r.code).toBe(2);
    expect(describeCalls).toHaveLength(10);
    const issues = JSON.parse(r.out).issues as { file: string; code: string; path: string }[];
    expect(issues.filter((i) => i.file.endsWith('contacts.yaml') && i.path === 'fields[10].remote')).toEqual([
      expect.objectContaining({ code: 'E_UNKNOWN_FIELD' }),
    ]);
  });

  it('schema prints the committed JSON Schema byte for byte', async () => {
    const r = await run('mappings', 'schema');
    expect(r.code).toBe(0);
    expect(r.out).toBe(readFileSync(path.join(root, 'mappings', 'mapping.schema.json'), 'utf8'));
  });

  it('preview prints the field-level plan without writing', async () => {
    const profile: Profile = {
      id: 'prf_ada' as ProfileId,
      kind: 'person',
      identifiers: [{ type: 'email', value: 'ada@example.com', source: 'event' }],
      traits: {
        email: { value: 'ada@example.com', source: 'event', changedAt: '2026-11-01T00:00:00Z' },
        plan: { value: 'pro', source: 'event', changedAt: '2026-11-02T00:00:00Z' },
        phone: { value: '+1 555 0100', source: 'event', changedAt: '2026-11-01T00:00:00Z' },
      },
      mergedFrom: [],
      createdAt: '2026-11-01T00:00:00Z',
      updatedAt: '2026-11-02T00:00:00Z',
    };
    let closed = 0;
    const runtime = fakeRuntime({
      loadProfile: (id) =>
        Promise.resolve(id.type === 'email' && id.value === 'ada@example.com' ? profile : null),
      readRemote: () =>
        Promise.resolve({
          object: 'contacts',
          id: '512',
          fields: { email: 'ada@example.com', crmhub_plan: 'free', phone: '+1 555 0199' },
          modifiedAt: '2026-11-03T00:00:00Z',
        }),
      getShadow: () =>
        Promise.resolve({ email: 'ada@example.com', crmhub_plan: 'free', phone: '+1 555 0100' }),
      close: () => {
        closed += 1;
        return Promise.resolve();
      },
    });
    setMappingsRuntimeFactory(() => Promise.resolve(runtime));
    const r = await run(
      'mappings',
      'preview',
      '--connector',
      'hubspot',
      '--object',
      'contacts',
      '--identifier',
      'email:ada@example.com',
      '--dir',
      dir,
      '--json',
    );
    expect(r.code).toBe(0);
    const { plan, remoteId } = JSON.parse(r.out);
    expect(remoteId).toBe('512');
    expect(plan.remoteDiff).toEqual({ crmhub_plan: 'pro', crmhub_id: 'prf_ada' });
    expect(plan.traitWrites).toEqual([
      { key: 'phone', value: '+1 555 0199', changedAt: '2026-11-03T00:00:00Z', source: 'hubspot' },
    ]);
    expect(plan.fields.find((f: { field: string }) => f.field === 'crmhub_plan')).toMatchObject({
      profileValue: 'pro',
      remoteValue: 'free',
      shadowValue: 'free',
      rule: 'prefer_profile',
      outcome: 'to_remote',
    });
    expect(closed).toBe(1);

    const text = await run(
      'mappings',
      'preview',
      '--connector',
      'hubspot',
      '--object',
      'contacts',
      '--identifier',
      'email:ada@example.com',
      '--dir',
      dir,
    );
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/crmhub_plan ← plan\s+"pro"\s+"free"\s+"free"\s+prefer_profile\s+to_remote/);
    expect(text.out).toContain('would send to hubspot: {"crmhub_plan":"pro","crmhub_id":"prf_ada"}');
  });

  it('preview: usage errors exit 2, an unknown profile exits 1', async () => {
    setMappingsRuntimeFactory(() => Promise.resolve(fakeRuntime()));
    expect(
      (
        await run(
          'mappings',
          'preview',
          '--connector',
          'hubspot',
          '--object',
          'contacts',
          '--identifier',
          'nocolon',
          '--dir',
          dir,
        )
      ).code,
    ).toBe(2);
    expect(
      (
        await run(
          'mappings',
          'preview',
          '--connector',
          'hubspot',
          '--object',
          'tickets',
          '--identifier',
          'email:a@b.c',
          '--dir',
          dir,
        )
      ).code,
    ).toBe(2);
    const missing = await run(
      'mappings',
      'preview',
      '--connector',
      'hubspot',
      '--object',
      'contacts',
      '--identifier',
      'email:nobody@x.io',
      '--dir',
      dir,
    );
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no profile for email:nobody@x.io');
  });
});
