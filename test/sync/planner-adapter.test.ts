import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CompiledMapping } from '../../src/mapping/compile-mapping.ts';
import { loadMappingText } from '../../src/mapping/load-mappings.ts';
import { syncMappingsFrom, threeWayPlanner, toSyncObjectMapping } from '../../src/sync/planner-adapter.ts';
import type { SyncObjectMapping } from '../../src/sync/sync-types.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const load = (rel: string): CompiledMapping =>
  loadMappingText(rel, rel.replace('mappings/', ''), readFileSync(path.join(root, rel), 'utf8')).compiled!;
const trait = (value: string | number | null, changedAt = '2026-11-01T00:00:00Z') => ({
  value,
  changedAt,
  source: 'event',
});

describe('planner adapter for the sync engine', () => {
  const contacts = load('mappings/hubspot/contacts.yaml');

  it('exposes a compiled mapping in the engine shape, transforms bound', () => {
    const m = toSyncObjectMapping(contacts);
    expect(m).toMatchObject({
      connector: 'hubspot',
      object: 'contacts',
      profileKind: 'person',
      version: contacts.hash,
      onNoMatch: 'create',
    });
    const email = m.fields.find((f) => f.remoteField === 'email')!;
    expect(email.toRemoteValue?.(' Ada@X.io ')).toBe('ada@x.io');
    const plan = m.fields.find((f) => f.remoteField === 'crmhub_plan')!;
    expect(plan).toMatchObject({ toRemote: true, toProfile: false, rule: 'prefer_profile' });
  });

  it("plans with the real three-way merge: echoes in the CRM's own shape are no change", () => {
    const m = toSyncObjectMapping(contacts);
    const echo = threeWayPlanner({
      mapping: m,
      profile: { email: trait('Ada@X.io'), product_usage_score: trait(42) },
      shadow: { email: 'ada@x.io', crmhub_product_usage_score: 42 },
      remote: {
        fields: { email: 'ADA@x.io', crmhub_product_usage_score: '42' },
        modifiedAt: '2026-11-02T00:00:00Z',
      },
    });
    expect(echo).toEqual({ toProfile: [], toRemote: {}, conflicts: [] });

    const change = threeWayPlanner({
      mapping: m,
      profile: {
        email: trait('ada@x.io'),
        product_usage_score: trait(50),
        phone: trait('+1 1', '2026-11-05T00:00:00Z'),
      },
      shadow: { email: 'ada@x.io', crmhub_product_usage_score: 42, phone: '+1 0' },
      remote: {
        fields: { email: 'ada@x.io', crmhub_product_usage_score: '42', phone: '+1 2' },
        modifiedAt: '2026-11-02T00:00:00Z',
      },
    });
    expect(change.toRemote).toEqual({ crmhub_product_usage_score: 50 });
    expect(change.toProfile).toEqual([{ key: 'phone', value: '+1 2', changedAt: '2026-11-02T00:00:00Z' }]);
    expect(change.conflicts).toEqual([
      expect.objectContaining({
        field: 'phone',
        rule: 'prefer_remote_unless_empty',
        resolution: 'remote',
        baseValue: '+1 0',
      }),
    ]);
  });

  it("falls back to the engine's basic merge for hand-built mappings", () => {
    const hand: SyncObjectMapping = {
      connector: 'test',
      object: 'things',
      profileKind: 'person',
      version: 'v1',
      tieBreaker: 'profile',
      fields: [
        {
          profileKey: 'a',
          remoteField: 'A',
          toProfile: true,
          toRemote: true,
          rule: 'latest_wins',
          onEmpty: 'ignore',
        },
      ],
      match: [],
      onNoMatch: 'create',
    };
    const plan = threeWayPlanner({
      mapping: hand,
      profile: { a: trait('x') },
      shadow: { A: 'y' },
      remote: { fields: { A: 'y' }, modifiedAt: '2026-11-01T00:00:00Z' },
    });
    expect(plan.toRemote).toEqual({ A: 'x' });
  });

  it('a live source converts once per mapping version and follows hot reloads', () => {
    let current: CompiledMapping[] = [contacts];
    const pd = load('mappings/pipedrive/persons.yaml');
    const mappings = syncMappingsFrom({ all: () => current }, (connector) =>
      connector === 'pipedrive' ? (n) => (n === 'Plan' ? 'h'.repeat(40) : n) : (n) => n,
    );
    const first = mappings.get('hubspot', 'contacts');
    expect(mappings.get('hubspot', 'contacts')).toBe(first);
    current = [{ ...contacts, hash: 'f'.repeat(64) }, pd];
    expect(mappings.get('hubspot', 'contacts')).not.toBe(first);
    expect(mappings.get('hubspot', 'contacts')?.version).toBe('f'.repeat(64));
    expect(
      mappings.get('pipedrive', 'persons')?.fields.find((f) => f.profileKey === 'plan')?.remoteField,
    ).toBe('h'.repeat(40));
    expect(mappings.list()).toHaveLength(2);
  });
});
