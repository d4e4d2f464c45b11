import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../../src/core/types.ts';
import type { PlanInput } from '../../src/sync/planner.ts';
import { planRecord } from '../../src/sync/planner.ts';
import { MIXED, mappingFrom, T0, T1, T2, T3 } from './planner-helpers.ts';

type Traits = Record<string, JsonValue>;
const traits = (values: Traits, changedAt = T1): PlanInput['traits'] =>
  Object.fromEntries(Object.entries(values).map(([k, value]) => [k, { value, changedAt }]));

function plan(p: {
  profile?: Traits;
  remote?: Traits | null;
  shadow?: Traits | null;
  profileAt?: string;
  remoteAt?: string;
  fieldAt?: Record<string, string>;
}) {
  return planRecord({
    mapping: MIXED,
    traits: traits(p.profile ?? {}, p.profileAt ?? T1),
    ...(p.remote === null
      ? {}
      : {
          remote: {
            fields: p.remote ?? {},
            modifiedAt: p.remoteAt ?? T1,
            ...(p.fieldAt ? { fieldChangedAt: p.fieldAt } : {}),
          },
        }),
    shadow: p.shadow ?? null,
  });
}
const outcome = (r: ReturnType<typeof plan>, field: string) => r.fields.find((f) => f.field === field)!;

describe('planner: three-way merge per field', () => {
  it('does nothing when neither side moved from the shadow', () => {
    const r = plan({
      profile: { email: 'ada@x.io', phone: '1' },
      remote: { email: 'ada@x.io', phone: '1' },
      shadow: { email: 'ada@x.io', phone: '1' },
    });
    expect(r.noop).toBe(true);
    expect(outcome(r, 'email').outcome).toBe('unchanged');
  });

  it("suppresses echoes: our write coming back in the CRM's own shape changes nothing", () => {
    // We sent 42 and "ada@x.io"; HubSpot returns strings and the rep's UI shows a re-cased email.
    const r = plan({
      profile: { score: 42, email: 'Ada@X.io', amount: 1200 },
      remote: { score: '42', email: 'ADA@x.io', amount: '1200.0' },
      shadow: { score: 42, email: 'ada@x.io', amount: 1200 },
    });
    expect(r.remoteDiff).toEqual({});
    expect(r.traitWrites).toEqual([]);
    expect(r.fields.every((f) => f.outcome === 'unchanged')).toBe(true);
  });

  it('sends only the fields the profile changed', () => {
    const r = plan({
      profile: { email: 'new@x.io', phone: '1', name: 'Ada', score: 7 },
      remote: { email: 'ada@x.io', phone: '1', name: 'Ada', score: '7' },
      shadow: { email: 'ada@x.io', phone: '1', name: 'Ada', score: '7' },
    });
    expect(r.remoteDiff).toEqual({ email: 'new@x.io' });
    expect(outcome(r, 'email')).toMatchObject({
      outcome: 'to_remote',
      profileValue: 'new@x.io',
      remoteValue: 'ada@x.io',
      shadowValue: 'ada@x.io',
    });
    expect(r.shadow.email).toBe('new@x.io');
    expect(r.traitWrites).toEqual([]);
  });

  it('takes a CRM change into the profile with the CRM change time', () => {
    const r = plan({
      profile: { stage: 'lead' },
      remote: { stage: 'customer' },
      shadow: { stage: 'lead' },
      remoteAt: T2,
      fieldAt: { stage: T3 },
    });
    expect(r.traitWrites).toEqual([{ key: 'stage', value: 'customer', changedAt: T3, source: 'hubspot' }]);
    expect(outcome(r, 'stage').outcome).toBe('to_profile');
    expect(r.shadow.stage).toBe('customer');
    expect(r.remoteDiff).toEqual({});
  });

  it('both sides changed to the same value: nothing to write, shadow catches up', () => {
    const r = plan({ profile: { city: 'Oslo' }, remote: { city: 'Oslo' }, shadow: { city: 'Bergen' } });
    expect(r.noop).toBe(true);
    expect(r.conflicts).toEqual([]);
    expect(r.shadow.city).toBe('Oslo');
  });

  describe('both changed and disagree: the field rule decides and a conflict row is logged', () => {
    it('latest_wins uses the per-field change time over the record time', () => {
      const r = plan({
        profile: { email: 'p@x.io' },
        remote: { email: 'r@x.io' },
        shadow: { email: 'o@x.io' },
        profileAt: T2,
        remoteAt: T3,
        fieldAt: { email: T1 },
      });
      expect(outcome(r, 'email').outcome).toBe('conflict_profile_won');
      expect(r.remoteDiff).toEqual({ email: 'p@x.io' });
      expect(r.conflicts).toEqual([
        expect.objectContaining({
          field: 'email',
          winner: 'profile',
          rule: 'latest_wins',
          profileChangedAt: T2,
          remoteChangedAt: T1,
        }),
      ]);
    });

    it('latest_wins falls back to the record modified time', () => {
      const r = plan({
        profile: { email: 'p@x.io' },
        remote: { email: 'r@x.io' },
        shadow: { email: 'o@x.io' },
        profileAt: T2,
        remoteAt: T3,
      });
      expect(outcome(r, 'email').outcome).toBe('conflict_remote_won');
      expect(r.traitWrites).toEqual([{ key: 'email', value: 'r@x.io', changedAt: T3, source: 'hubspot' }]);
    });

    it('latest_wins ties go to tie_breaker', () => {
      const r = plan({
        profile: { email: 'p@x.io' },
        remote: { email: 'r@x.io' },
        shadow: { email: 'o@x.io' },
        profileAt: T2,
        remoteAt: T2,
      });
      expect(outcome(r, 'email')).toMatchObject({
        outcome: 'conflict_profile_won',
        reason: expect.stringContaining('tie_breaker profile'),
      });
      const remoteTie = mappingFrom(`
connector: hubspot
object: contacts
profile_kind: person
identity: { match: [{ remote: email, identifier: email }] }
defaults: { tie_breaker: remote }
fields: [{ profile: email, remote: email }]
`);
      const r2 = planRecord({
        mapping: remoteTie,
        traits: traits({ email: 'p@x.io' }, T2),
        remote: { fields: { email: 'r@x.io' }, modifiedAt: T2 },
        shadow: { email: 'o@x.io' },
      });
      expect(r2.fields[0]!.outcome).toBe('conflict_remote_won');
    });

    it('prefer_remote and prefer_profile_unless_empty', () => {
      const r = plan({
        profile: { city: 'A', name: 'P' },
        remote: { city: 'B', name: 'R' },
        shadow: { city: 'C', name: 'O' },
      });
      expect(outcome(r, 'city').outcome).toBe('conflict_remote_won');
      expect(outcome(r, 'name').outcome).toBe('conflict_profile_won');
      expect(r.remoteDiff).toEqual({ name: 'P' });
      expect(r.traitWrites.map((t) => [t.key, t.value])).toEqual([['city', 'B']]);
    });

    it('prefer_remote_unless_empty yields to the profile when the CRM value was cleared', () => {
      const r = plan({ profile: { phone: '+1 555' }, remote: { phone: '' }, shadow: { phone: '+1 000' } });
      expect(outcome(r, 'phone').outcome).toBe('conflict_profile_won');
      expect(r.remoteDiff).toEqual({ phone: '+1 555' });
      const r2 = plan({
        profile: { phone: '+1 555' },
        remote: { phone: '+1 777' },
        shadow: { phone: '+1 000' },
      });
      expect(outcome(r2, 'phone').outcome).toBe('conflict_remote_won');
    });

    it('fill_if_empty writes only where the target is empty', () => {
      const both = plan({ profile: { title: 'CTO' }, remote: { title: 'CEO' }, shadow: { title: 'Dev' } });
      expect(outcome(both, 'title').outcome).toBe('skipped_not_empty');
      expect(both.conflicts[0]).toMatchObject({ winner: 'none' });
      const oneSide = plan({ profile: { title: 'CTO' }, remote: { title: 'Dev' }, shadow: { title: 'Dev' } });
      expect(outcome(oneSide, 'title').outcome).toBe('skipped_not_empty');
      const empty = plan({ profile: { title: 'CTO' }, remote: { title: null }, shadow: { title: null } });
      expect(empty.remoteDiff).toEqual({ title: 'CTO' });
    });

    it('review parks the field, applies nothing and keeps the old base', () => {
      const r = plan({ profile: { notes: 'p' }, remote: { notes: 'r' }, shadow: { notes: 'o' } });
      expect(outcome(r, 'notes').outcome).toBe('review');
      expect(r.needsReview).toBe(true);
      expect(r.remoteDiff).toEqual({});
      expect(r.traitWrites).toEqual([]);
      expect(r.shadow.notes).toBe('o');
      expect(r.conflicts).toEqual([
        expect.objectContaining({
          field: 'notes',
          rule: 'review',
          winner: 'none',
          profileValue: 'p',
          remoteValue: 'r',
          shadowValue: 'o',
        }),
      ]);
    });
  });

  describe('on_empty', () => {
    it('ignore: a cleared profile value never blanks the CRM, and a cleared CRM value never blanks the profile', () => {
      const r = plan({
        profile: { email: null, stage: 'lead' },
        remote: { email: 'ada@x.io', stage: '' },
        shadow: { email: 'ada@x.io', stage: 'lead' },
      });
      expect(outcome(r, 'email').outcome).toBe('skipped_empty');
      expect(outcome(r, 'stage').outcome).toBe('skipped_empty');
      expect(r.noop).toBe(true);
    });

    it('clear: empties propagate', () => {
      const r = plan({
        profile: { name: '' },
        remote: { name: 'Ada', city: '' },
        shadow: { name: 'Ada', city: 'Oslo' },
        fieldAt: {},
      });
      expect(r.remoteDiff).toEqual({ name: null });
      const withCity = plan({ profile: { city: 'Oslo' }, remote: { city: '' }, shadow: { city: 'Oslo' } });
      expect(withCity.traitWrites).toEqual([expect.objectContaining({ key: 'city', value: null })]);
    });
  });

  describe('direction', () => {
    it('to_profile fields never go out and to_remote fields never come in', () => {
      const r = plan({
        profile: { stage: 'mine', score: 3 },
        remote: { stage: 'theirs', score: '9' },
        shadow: { stage: 'theirs', score: '3' },
      });
      expect(outcome(r, 'stage').outcome).toBe('skipped_direction');
      expect(outcome(r, 'score').outcome).toBe('skipped_direction');
      expect(r.noop).toBe(true);
      expect(r.shadow.score).toBe('3'); // the held-back CRM edit keeps the old base, so the next plan agrees
    });

    it('a to_remote field sends its transformed value; an unknown enum value is dropped, not sent', () => {
      const r = plan({ profile: { plan: 'pro' }, remote: {}, shadow: {} });
      expect(r.remoteDiff).toEqual({ plan: 'PRO' });
      const gold = plan({ profile: { plan: 'gold' }, remote: { plan: 'PRO' }, shadow: { plan: 'PRO' } });
      expect(gold.remoteDiff).toEqual({});
    });
  });

  describe('records never linked', () => {
    it('creates: every to_remote value, the identity key, and reports missing required fields', () => {
      const sf = mappingFrom(`
connector: salesforce
object: Contact
profile_kind: person
identity: { match: [{ remote: Crmhub_Id__c, identifier: profile_id }] }
fields:
  - { profile: email, remote: Email, transforms: { to_remote: [email] } }
  - { profile: last_name, remote: LastName, required: true }
  - { profile: stage, remote: Status__c, direction: to_profile }
`);
      const r = planRecord({
        mapping: sf,
        traits: traits({ email: 'Ada@X.io', stage: 'x' }),
        identifiers: { profile_id: 'prf_1', email: 'ada@x.io' },
      });
      expect(r.remoteDiff).toEqual({ Email: 'ada@x.io', Crmhub_Id__c: 'prf_1' });
      expect(r.missingRequired).toEqual(['LastName']);
      const withName = planRecord({
        mapping: sf,
        traits: traits({ last_name: 'Lovelace' }),
        identifiers: { profile_id: 'prf_1' },
      });
      expect(withName.missingRequired).toEqual([]);
    });

    it('first link fills the empty side and lets the rule decide real disagreements', () => {
      const r = plan({
        profile: { email: 'ada@x.io', city: 'Oslo' },
        remote: { email: '', city: 'Bergen', stage: 'lead' },
        shadow: null,
      });
      expect(outcome(r, 'email').outcome).toBe('to_remote');
      expect(outcome(r, 'stage').outcome).toBe('to_profile');
      expect(outcome(r, 'city').outcome).toBe('conflict_remote_won');
      expect(r.conflicts.map((c) => c.field)).toEqual(['city']);
    });
  });

  it('a field the CRM did not return (partial webhook payload) counts as unchanged there', () => {
    const r = plan({
      profile: { email: 'new@x.io', stage: 'lead' },
      remote: { phone: '1' },
      shadow: { email: 'ada@x.io', stage: 'lead', phone: '1' },
    });
    expect(r.remoteDiff).toEqual({ email: 'new@x.io' });
    expect(r.traitWrites).toEqual([]);
    expect(r.shadow).toMatchObject({ stage: 'lead', phone: '1' });
  });

  it('multi-value fields compare as sets: the CRM re-ordering our values is not a change', () => {
    const m = mappingFrom(`
connector: hubspot
object: contacts
profile_kind: person
identity: { match: [{ remote: email, identifier: email }] }
fields:
  - { profile: audiences, remote: crmhub_audiences, direction: to_remote, transforms: { to_remote: [{ join: { separator: ";" } }] } }
`);
    const base = {
      mapping: m,
      traits: traits({ audiences: ['power_users', 'at_risk'] }),
      shadow: { crmhub_audiences: 'power_users;at_risk' },
    };
    const reordered = planRecord({
      ...base,
      remote: { fields: { crmhub_audiences: 'at_risk;power_users' }, modifiedAt: T2 },
    });
    expect(reordered.noop).toBe(true);
    const changed = planRecord({
      ...base,
      traits: traits({ audiences: ['at_risk'] }),
      remote: { fields: { crmhub_audiences: 'at_risk;power_users' }, modifiedAt: T2 },
    });
    expect(changed.remoteDiff).toEqual({ crmhub_audiences: 'at_risk' });
  });

  it('invalid values are reported and not written', () => {
    const r = plan({
      profile: { email: 'not an email' },
      remote: { email: 'ada@x.io' },
      shadow: { email: 'ada@x.io' },
    });
    expect(outcome(r, 'email')).toMatchObject({
      outcome: 'invalid',
      reason: expect.stringContaining('not an email address'),
    });
    expect(r.remoteDiff).toEqual({});
  });

  it('uses resolved vendor keys (Pipedrive hash keys) for reads, diffs and the shadow', () => {
    const pd = mappingFrom(`
connector: pipedrive
object: persons
profile_kind: person
identity: { match: [{ remote: crmhub id, identifier: profile_id }] }
fields: [{ profile: plan, remote: Plan, direction: to_remote }]
`);
    const key = (name: string) =>
      name === 'Plan' ? 'f'.repeat(40) : name === 'crmhub id' ? 'e'.repeat(40) : name;
    const r = planRecord({
      mapping: pd,
      traits: traits({ plan: 'pro' }),
      remote: { fields: { ['f'.repeat(40)]: 'free' }, modifiedAt: T0 },
      shadow: { ['f'.repeat(40)]: 'free' },
      resolveKey: key,
      identifiers: { profile_id: 'prf_9' },
    });
    expect(r.remoteDiff).toEqual({ ['f'.repeat(40)]: 'pro', ['e'.repeat(40)]: 'prf_9' });
    expect(r.fields[0]).toMatchObject({ field: 'Plan', key: 'f'.repeat(40) });
  });
});
