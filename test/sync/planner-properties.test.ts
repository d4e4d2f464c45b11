import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldValues, JsonValue } from '../../src/core/types.ts';
import { fieldToProfile, fieldToRemote } from '../../src/mapping/mapping-values.ts';
import type { PlanInput, RecordPlan } from '../../src/sync/planner.ts';
import { planRecord } from '../../src/sync/planner.ts';
import { asSet, sameValue } from '../../src/sync/planner-values.ts';
import { MIXED, T0, T1, T2, T3 } from './planner-helpers.ts';

// Value pools per field, chosen so normalisation matters (case, numeric strings, empties).
const PROFILE_POOLS: Record<string, JsonValue[]> = {
  email: [null, '', 'a@x.io', 'A@x.io', 'b@x.io'],
  score: [null, 1, '1', 2, '2.0'],
  plan: [null, 'pro', 'PRO', 'free', 'gold'],
  amount: [null, 10, '10', 12.5],
  tags: [null, [], ['a'], ['b', 'a'], ['a', 'b']],
};
const REMOTE_POOLS: Record<string, JsonValue[]> = {
  email: [null, '', 'a@x.io', 'A@X.IO', 'b@x.io'],
  score: [null, '1', '2'],
  plan: [null, 'PRO', 'FREE'],
  amount: [null, '10', '12.5', '10.0'],
  tags: [null, '', 'a', 'a;b', 'b;a'],
};
const TEXT: JsonValue[] = [null, '', 'a', 'b', 'c'];
const FIELDS = MIXED.fields.map((f) => f.remote);
const TIMES = [T0, T1, T2, T3];

const valuesFor = (pools: Record<string, JsonValue[]>) =>
  fc.record(
    Object.fromEntries(
      FIELDS.map((f) => [f, fc.option(fc.constantFrom(...(pools[f] ?? TEXT)), { nil: undefined })]),
    ),
  );

const stateArb = fc.record({
  profile: valuesFor(PROFILE_POOLS),
  profileAt: fc.record(Object.fromEntries(FIELDS.map((f) => [f, fc.constantFrom(...TIMES)]))),
  remote: fc.option(valuesFor(REMOTE_POOLS), { nil: undefined }),
  remoteAt: fc.constantFrom(...TIMES),
  fieldAt: fc.option(fc.record(Object.fromEntries(FIELDS.map((f) => [f, fc.constantFrom(...TIMES)]))), {
    nil: undefined,
  }),
  shadow: fc.option(valuesFor(REMOTE_POOLS), { nil: undefined }),
});
type State = typeof stateArb extends fc.Arbitrary<infer S> ? S : never;

const defined = (o: Record<string, JsonValue | undefined>): FieldValues =>
  Object.fromEntries(Object.entries(o).filter((e): e is [string, JsonValue] => e[1] !== undefined));

function toInput(s: State): PlanInput {
  const traits: Record<string, { value: JsonValue; changedAt: string }> = {};
  for (const [k, v] of Object.entries(s.profile))
    if (v !== undefined) traits[k] = { value: v, changedAt: s.profileAt[k] ?? T0 };
  return {
    mapping: MIXED,
    traits,
    ...(s.remote
      ? {
          remote: {
            fields: defined(s.remote),
            modifiedAt: s.remoteAt,
            ...(s.fieldAt ? { fieldChangedAt: s.fieldAt } : {}),
          },
        }
      : {}),
    // A shadow exists only for a linked record (deleted records are the engine's business).
    shadow: s.shadow && s.remote ? defined(s.shadow) : null,
    identifiers: { profile_id: 'prf_1' },
  };
}

/**
 * A CRM that stores what it is sent the way HubSpot does: every value back as a string, and
 * multi-select values in its own (here: sorted) order.
 */
function crmStore(key: string, v: JsonValue): JsonValue {
  if (key === 'tags' && typeof v === 'string') return v.split(';').sort().join(';');
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : v;
}

/**
 * What the CRM holds for a key. A key missing from a read means "not returned, unchanged", i.e. the
 * shadow value (the planner's contract for partial payloads).
 */
function effectiveRemote(input: PlanInput, key: string): JsonValue | undefined {
  const fields = input.remote?.fields;
  if (!fields) return undefined;
  return Object.hasOwn(fields, key) ? fields[key] : input.shadow?.[key];
}

function apply(input: PlanInput, plan: RecordPlan): PlanInput {
  const traits = { ...input.traits };
  for (const w of plan.traitWrites) traits[w.key] = { value: w.value, changedAt: w.changedAt };
  const fields: FieldValues = {};
  for (const key of FIELDS) {
    const v = effectiveRemote(input, key);
    if (v !== undefined) fields[key] = v;
  }
  for (const [k, v] of Object.entries(plan.remoteDiff)) fields[k] = crmStore(k, v);
  const touched = Object.keys(plan.remoteDiff).length > 0;
  return {
    ...input,
    traits,
    remote: {
      fields,
      modifiedAt: touched ? '2026-12-01T00:00:00.000Z' : (input.remote?.modifiedAt ?? T0),
      ...(input.remote?.fieldChangedAt ? { fieldChangedAt: input.remote.fieldChangedAt } : {}),
    },
    shadow: plan.shadow,
  };
}

const HELD_BACK = new Set(['review', 'skipped_empty', 'skipped_not_empty', 'skipped_direction', 'invalid']);

describe('planner properties', () => {
  it('idempotence: applying a plan and re-planning with the new shadow yields no changes', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const input = toInput(s);
        const first = planRecord(input);
        const second = planRecord(apply(input, first));
        expect(second.remoteDiff).toEqual({});
        expect(second.traitWrites).toEqual([]);
        // and the held-back situations stay held back the same way
        for (const f of first.fields) {
          if (HELD_BACK.has(f.outcome))
            expect(second.fields.find((g) => g.key === f.key)?.outcome).toBe(f.outcome);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('echo suppression: when the CRM equals the shadow nothing flows to the profile', () => {
    fc.assert(
      fc.property(stateArb, valuesFor(REMOTE_POOLS), (s, remote) => {
        const input = toInput({ ...s, remote, shadow: remote });
        const plan = planRecord(input);
        expect(plan.traitWrites).toEqual([]);
        expect(
          plan.fields.filter((f) => f.outcome === 'to_profile' || f.outcome === 'conflict_remote_won'),
        ).toEqual([]);
        expect(plan.conflicts).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });

  it('echo suppression: our own write read back (as strings) is not a change', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const input = toInput(s);
        const after = apply(input, planRecord(input));
        // the CRM webhook brings back exactly what it stored
        const again = planRecord({
          ...after,
          remote: { fields: { ...after.remote!.fields }, modifiedAt: '2026-12-02T00:00:00.000Z' },
        });
        expect(again.noop).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('convergence: after applying, both-way fields agree unless a rule held them back', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const input = toInput(s);
        const plan = planRecord(input);
        const after = apply(input, plan);
        for (const field of MIXED.fields) {
          if (field.direction !== 'both' || field.profile === undefined) continue;
          const row = plan.fields.find((f) => f.key === field.remote)!;
          if (HELD_BACK.has(row.outcome)) continue;
          const p = after.traits[field.profile]?.value;
          const r = after.remote!.fields[field.remote];
          const pn = fieldToRemote(field, p);
          const back = fieldToProfile(field, r);
          const rn = back?.kind === 'ok' ? fieldToRemote(field, back.value) : undefined;
          const norm = (x: typeof pn) => (x?.kind === 'ok' ? x.value : null);
          expect(sameValue(asSet(field, norm(pn)), asSet(field, norm(rn)))).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('outbound diffs contain only fields that differ from the CRM', () => {
    fc.assert(
      fc.property(stateArb, (s) => {
        const input = toInput(s);
        const plan = planRecord(input);
        for (const [key, value] of Object.entries(plan.remoteDiff)) {
          expect(sameValue(value, effectiveRemote(input, key))).toBe(false);
          const field = MIXED.fields.find((f) => f.remote === key);
          if (field) expect(['both', 'to_remote']).toContain(field.direction);
        }
        for (const w of plan.traitWrites) {
          expect(['both', 'to_profile']).toContain(MIXED.fields.find((f) => f.profile === w.key)?.direction);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
