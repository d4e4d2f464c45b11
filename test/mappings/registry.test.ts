import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mappingHash } from '../../src/mapping/compile-mapping.ts';
import { MappingRegistry } from '../../src/mapping/mapping-registry.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

describe('MappingRegistry hot reload', () => {
  let dir: string;
  let registry: MappingRegistry | undefined;
  const file = (): string => path.join(dir, 'hubspot', 'contacts.yaml');

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crmhub-mappings-registry-'));
    cpSync(path.join(root, 'mappings'), dir, { recursive: true });
  });
  afterEach(() => {
    registry?.close();
    registry = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads every file and records each version it loads', async () => {
    const onLoaded = vi.fn();
    registry = await MappingRegistry.open({
      dir,
      watch: false,
      onLoaded,
      now: () => new Date('2026-11-29T12:00:00Z'),
    });
    expect(registry.all()).toHaveLength(10);
    expect(registry.status().ok).toBe(true);
    const hash = mappingHash(readFileSync(file()));
    expect(registry.get('hubspot', 'contacts')?.hash).toBe(hash);
    expect(onLoaded).toHaveBeenCalledWith('hubspot', 'contacts', hash, '2026-11-29T12:00:00.000Z');
    expect(onLoaded).toHaveBeenCalledTimes(10);
    await registry.reload();
    expect(onLoaded).toHaveBeenCalledTimes(10); // unchanged files are not new versions
  });

  it('keeps the last good mapping after a broken edit, reports the issues, then applies a fixed edit', async () => {
    const onLoaded = vi.fn();
    const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    registry = await MappingRegistry.open({ dir, watch: false, onLoaded, logger });
    const good = registry.get('hubspot', 'contacts')!;
    const original = readFileSync(file(), 'utf8');

    writeFileSync(file(), original.replace('remote: lifecyclestage', 'remote: lifecyclestag'));
    const broken = await registry.reload();
    expect(broken.ok).toBe(false);
    expect(broken.issues).toEqual([
      expect.objectContaining({ code: 'E_UNKNOWN_FIELD', suggestion: 'lifecyclestage' }),
    ]);
    const fileStatus = broken.files[file()]!;
    expect(fileStatus).toMatchObject({
      ok: false,
      liveHash: good.hash,
      connector: 'hubspot',
      object: 'contacts',
    });
    expect(fileStatus.hash).not.toBe(good.hash);
    expect(registry.get('hubspot', 'contacts')).toBe(good);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ file: file(), keptHash: good.hash }),
      expect.stringContaining('last good version'),
    );

    const fixed = original.replace('remote: jobtitle', 'remote: jobtitle\n    direction: to_profile');
    writeFileSync(file(), fixed);
    const status = await registry.reload();
    expect(status.ok).toBe(true);
    const live = registry.get('hubspot', 'contacts')!;
    expect(live.hash).toBe(mappingHash(fixed));
    expect(live.fields.find((f) => f.remote === 'jobtitle')?.direction).toBe('to_profile');
    expect(onLoaded).toHaveBeenLastCalledWith('hubspot', 'contacts', mappingHash(fixed), expect.any(String));
  });

  it('drops the mapping of a deleted file', async () => {
    registry = await MappingRegistry.open({ dir, watch: false });
    unlinkSync(path.join(dir, 'pipedrive', 'deals.yaml'));
    await registry.reload();
    expect(registry.get('pipedrive', 'deals')).toBeUndefined();
    expect(registry.all()).toHaveLength(9);
  });

  it('a recording failure does not stop the mapping going live', async () => {
    const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    registry = await MappingRegistry.open({
      dir,
      watch: false,
      logger,
      onLoaded: () => Promise.reject(new TypeError('store down')),
    });
    expect(registry.all()).toHaveLength(10);
    expect(logger.error).toHaveBeenCalled();
  });

  it('picks up an edit on its own when watching the folder', async () => {
    registry = await MappingRegistry.open({ dir, debounceMs: 20 });
    const edited = readFileSync(file(), 'utf8').replace(
      'remote: jobtitle',
      'remote: jobtitle\n    direction: none',
    );
    writeFileSync(file(), edited);
    await vi.waitFor(() => expect(registry!.get('hubspot', 'contacts')?.hash).toBe(mappingHash(edited)), {
      timeout: 10_000,
      interval: 25,
    });
  });
});
