/**
 * `crmhub demo` in-process with a smaller pool: every story step passes and the report's facts hold
 * (unified counts, traits in each CRM, webhook propagation without echo, the conflict rule's winner
 * everywhere, 429s absorbed with nothing lost, API calls near the batch minimum).
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run-demo.ts';
import { renderDemo } from '../../src/demo/render-demo.ts';
import type { DemoReport } from '../../src/demo/demo-report.ts';

describe('crmhub demo', () => {
  let report: DemoReport;

  it('runs every story step successfully', async () => {
    report = await runDemo({ people: 90 });
    const failed = report.steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.detail}`);
    expect(failed).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.steps.length).toBeGreaterThanOrEqual(10);
  }, 110_000);

  it('unifies the overlapping CRM records into one profile per person', () => {
    const u = report.unification!;
    expect(u.people).toBe(90);
    for (const slug of ['hubspot', 'salesforce', 'pipedrive']) expect(u.perCrm[slug]).toEqual({ records: 60, read: 60 });
    expect(u.recordsRead).toBe(180);
    expect(u.unifiedProfiles).toBe(90);
    expect(u.fullyLinked).toBe(90);
    expect(u.byCrmCount['3']).toBeGreaterThan(0);
  });

  it('pushes the CDP traits into each CRM, read back from the sandboxes', () => {
    for (const slug of ['hubspot', 'salesforce', 'pipedrive']) {
      const t = report.traits![slug]!;
      expect(t.checked).toBeGreaterThan(0);
      expect(t.matching).toBe(t.checked);
    }
    expect(report.sync!.pendingAfter).toBe(0);
    for (const c of Object.values(report.sync!.perCrm)) expect(c.deadLetters).toBe(0);
  });

  it("carries a rep's edit to the other CRMs through webhooks without echo writes", () => {
    const p = report.propagation!;
    expect(p.reachedMs['salesforce']).toBeTypeOf('number');
    expect(p.reachedMs['pipedrive']).toBeTypeOf('number');
    expect(p.readBack['salesforce']).toBe(p.value);
    expect(p.readBack['pipedrive']).toBe(p.value);
    expect(p.echoWrites).toBe(0);
  });

  it('resolves the phone conflict by the mapping rule and converges every CRM', () => {
    const c = report.conflict!;
    expect(c.rule).toBe('prefer_remote_unless_empty');
    expect(c.resolution).toBe('remote');
    const digits = (v: unknown): string => String(v).replace(/\D/g, '');
    for (const v of Object.values(c.finalValues)) expect(digits(v)).toBe(digits(c.remoteValue));
  });

  it('absorbs 429s with nothing lost', () => {
    const r = report.rateLimit!;
    expect(r.rateLimited).toBeGreaterThan(0);
    expect(r.delivered).toBe(r.records);
    expect(r.deadLetters).toBe(0);
  });

  it('spends few API calls on the batching CRMs and renders every section', () => {
    const a = report.apiCalls!;
    // HubSpot and Salesforce write in batches: a handful of write calls for all records.
    expect(a['hubspot']!.writes).toBeLessThanOrEqual(Math.ceil(a['hubspot']!.recordsWritten / 100) + 2);
    expect(a['salesforce']!.writes).toBeLessThanOrEqual(Math.ceil(a['salesforce']!.recordsWritten / 200) + 2);
    const text = renderDemo(report);
    for (const title of ['Profiles unified', 'traits pushed', 'webhooks', 'conflict resolved', '429 absorbed', 'API calls spent']) expect(text).toContain(title);
  });
});
