import { describe, expect, it } from 'vitest';
import { applyTransforms, misfitTransformIndex, parseInstant } from '../../src/mapping/transforms.ts';
import type { TransformSpec } from '../../src/mapping/mapping-schema.ts';

const run = (chain: TransformSpec[], value: Parameters<typeof applyTransforms>[1]) =>
  applyTransforms(chain, value);

describe('transforms', () => {
  it('normalises emails and rejects non-emails', () => {
    expect(run(['email'], '  Ada@Example.COM ')).toEqual({ kind: 'ok', value: 'ada@example.com' });
    expect(run(['email'], 'not-an-email').kind).toBe('error');
  });

  it('formats phone numbers as E.164', () => {
    expect(run(['phone_e164'], '+44 20 7946 0958')).toEqual({ kind: 'ok', value: '+442079460958' });
    expect(run(['phone_e164'], 'call me').kind).toBe('error');
  });

  it('trims and changes case', () => {
    expect(run(['trim', 'uppercase'], '  pro ')).toEqual({ kind: 'ok', value: 'PRO' });
    expect(run(['lowercase'], 'MiXeD')).toEqual({ kind: 'ok', value: 'mixed' });
  });

  it('parses numbers, integers and booleans from CRM strings', () => {
    expect(run(['number'], '12.5')).toEqual({ kind: 'ok', value: 12.5 });
    expect(run(['integer'], '12.5')).toEqual({ kind: 'ok', value: 13 });
    expect(run(['number'], 'twelve').kind).toBe('error');
    expect(run(['boolean'], 'Yes')).toEqual({ kind: 'ok', value: true });
    expect(run(['boolean'], '0')).toEqual({ kind: 'ok', value: false });
    expect(run(['boolean'], 'maybe').kind).toBe('error');
  });

  it('converts HubSpot epoch-ms dates and ISO dates', () => {
    const ms = Date.UTC(2026, 10, 29);
    expect(run([{ date: 'iso_date' }], String(ms))).toEqual({ kind: 'ok', value: '2026-11-29' });
    expect(run([{ date: 'epoch_ms_date' }], '2026-11-29T15:30:00Z')).toEqual({ kind: 'ok', value: ms });
    expect(run([{ datetime: 'iso' }], ms + 1000)).toEqual({ kind: 'ok', value: '2026-11-29T00:00:01.000Z' });
    expect(run([{ datetime: 'epoch_s' }], '2026-11-29T00:00:01Z')).toEqual({
      kind: 'ok',
      value: ms / 1000 + 1,
    });
    expect(run([{ date: 'iso_date' }], 'yesterday').kind).toBe('error');
    expect(parseInstant(1_700_000_000)).toBe(1_700_000_000_000);
  });

  it('maps enum values case-insensitively with an explicit rule for unknown values', () => {
    const map = { Pro: 'pro', Free: 'free' };
    expect(run([{ enum: { map, unknown: 'error' } }], 'PRO')).toEqual({ kind: 'ok', value: 'pro' });
    expect(run([{ enum: { map, unknown: 'pass' } }], 'gold')).toEqual({ kind: 'ok', value: 'gold' });
    expect(run([{ enum: { map, unknown: 'drop' } }], 'gold')).toEqual({ kind: 'drop' });
    expect(run([{ enum: { map, unknown: 'default', default: 'free' } }], 'gold')).toEqual({
      kind: 'ok',
      value: 'free',
    });
    expect(run([{ enum: { map, unknown: 'error' } }], 'gold').kind).toBe('error');
    expect(
      run([{ enum: { map, unknown: 'drop' } }, { join: { separator: ';' } }], ['pro', 'gold', 'free']),
    ).toEqual({ kind: 'ok', value: 'pro;free' });
  });

  it('joins and splits multi-value fields', () => {
    expect(run([{ join: { separator: ';' } }], ['a', 'b'])).toEqual({ kind: 'ok', value: 'a;b' });
    expect(run([{ split: { separator: ';' } }], 'a; b;;')).toEqual({ kind: 'ok', value: ['a', 'b'] });
  });

  it('passes empty values through and replaces anything with a static value', () => {
    expect(run(['email', 'number'], null)).toEqual({ kind: 'ok', value: null });
    expect(run(['trim'], '')).toEqual({ kind: 'ok', value: null });
    expect(run([{ static: 'Web' }], null)).toEqual({ kind: 'ok', value: 'Web' });
  });

  it('knows which transforms fit which field types', () => {
    expect(misfitTransformIndex(['trim', 'boolean'], 'to_remote', 'number')).toBe(1);
    expect(misfitTransformIndex(['number'], 'to_remote', 'number')).toBe(-1);
    expect(misfitTransformIndex(['email'], 'to_profile', 'datetime')).toBe(0);
    expect(misfitTransformIndex([{ join: { separator: ';' } }], 'to_remote', 'set')).toBe(-1);
    expect(misfitTransformIndex([], 'to_remote', 'boolean')).toBe(-1);
  });
});
