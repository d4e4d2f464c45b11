/**
 * The terminal view of a {@link DemoReport}: one section per part of the story, aligned tables.
 */
import type { JsonValue } from '../core/types.ts';
import type { DemoReport } from './demo-report.ts';

function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].map((l) => `  ${l}`);
}

function show(value: JsonValue | undefined): string {
  return value === undefined || value === null ? '—' : typeof value === 'string' ? value : JSON.stringify(value);
}

const NAMES: Record<string, string> = { hubspot: 'HubSpot', salesforce: 'Salesforce', pipedrive: 'Pipedrive' };
const name = (slug: string): string => NAMES[slug] ?? slug;

/** The whole report as terminal text. */
export function renderDemo(report: DemoReport): string {
  const out: string[] = [];
  const section = (title: string): void => {
    out.push('', title, '─'.repeat(title.length));
  };
  out.push('crmhub demo — three CRM sandboxes, one hub on SQLite, a full round trip both ways');

  const u = report.unification;
  if (u) {
    section('1. Profiles unified across CRMs');
    const rows = Object.entries(u.perCrm).map(([slug, c]) => [name(slug), String(c.records), String(c.read)]);
    rows.push(['total', String(Object.values(u.perCrm).reduce((n, c) => n + c.records, 0)), String(u.recordsRead)]);
    out.push(...table(['CRM', 'person records', 'read by crmhub'], rows, new Set([1, 2])));
    out.push('', `  ${u.recordsRead} records → ${u.unifiedProfiles} unified profiles for ${u.people} people (${u.byCrmCount['1'] ?? 0} in one CRM, ${u.byCrmCount['2'] ?? 0} in two, ${u.byCrmCount['3'] ?? 0} in all three);`);
    out.push(`  ${u.fullyLinked} profiles hold the record id of every CRM that has the person, joined by email despite its casing.`);
  }

  const e = report.events;
  if (e) {
    section('2. Product events through the event API');
    out.push(`  ${e.sent} events over HTTP: ${e.identify} identify (plan, product usage and engagement scores, churn risk, audiences), ${e.track} track, ${e.page} page.`);
  }

  const s = report.sync;
  if (s) {
    section('3. Full bidirectional sync (push)');
    out.push(...table(['CRM', 'created', 'updated', 'dead letters'], Object.entries(s.perCrm).map(([slug, c]) => [name(slug), String(c.created), String(c.updated), String(c.deadLetters)]), new Set([1, 2, 3])));
    out.push('', `  outbox drained in ${(s.durationMs / 1000).toFixed(1)} s; ${s.pendingAfter} rows left.`);
  }

  const t = report.traits;
  if (t) {
    section('4. CDP traits pushed into each CRM (read back from the CRM)');
    out.push(...table(['CRM', 'records checked', 'plan + engagement score match', 'example'], Object.entries(t).map(([slug, c]) => [name(slug), String(c.checked), String(c.matching), c.sample ? JSON.stringify(c.sample) : '—']), new Set([1, 2])));
  }

  const p = report.propagation;
  if (p) {
    section("5. A rep's edit travels through webhooks");
    out.push(`  A rep sets ${name(p.source)} ${p.field} = ${JSON.stringify(p.value)}.`);
    out.push(...table(['reached', 'after (ms)', 'read back'], Object.entries(p.reachedMs).map(([slug, ms]) => [name(slug), ms === null ? 'never' : String(ms), show(p.readBack[slug])]), new Set([1])));
    out.push('', `  Our writes came back as webhooks and were recognised: ${p.echoWrites} write calls echoed back to ${name(p.source)}.`);
  }

  const c = report.conflict;
  if (c) {
    section('6. A conflict resolved by its rule');
    out.push(`  field ${c.field}: the CDP says ${show(c.profileValue)}, a HubSpot rep says ${show(c.remoteValue)} (both changed since the last sync)`);
    out.push(`  rule ${c.rule} → ${c.resolution} wins`);
    out.push(...table(['CRM', 'final value'], Object.entries(c.finalValues).map(([slug, v]) => [name(slug), show(v)])));
  }

  const r = report.rateLimit;
  if (r) {
    section('7. A 429 absorbed');
    out.push(`  ${name(r.connector)} limit lowered to ${r.limit}: ${r.rateLimited} requests answered 429; ${r.delivered}/${r.records} updates delivered, ${r.deadLetters} dead letters.`);
  }

  const a = report.apiCalls;
  if (a) {
    section('8. API calls spent (from each sandbox) vs the batch minimum');
    out.push(...table(['CRM', 'records written', 'API calls', 'of which writes', 'batch minimum', '429s (retried)'], Object.entries(a).map(([slug, v]) => [name(slug), String(v.recordsWritten), String(v.calls), String(v.writes), String(v.minimum), String(v.rateLimited)]), new Set([1, 2, 3, 4, 5])));
    out.push('', '  batch minimum = pages to read every record (100 per page) + writes at the CRM’s largest batch');
    out.push('  (HubSpot 100, Salesforce 200; Pipedrive has no batch writes: one call per record).');
    for (const [slug, v] of Object.entries(a)) {
      const searches = Object.entries(v.byRoute).filter(([route]) => /search/i.test(route)).reduce((n, [, c]) => n + c, 0);
      if (searches > 0) out.push(`  ${name(slug)}: ${searches} of its calls are searches (incremental reads, or finding a record never linked before creating it).`);
    }
  }

  section('Steps');
  out.push(...table(['', 'step', 'ms', 'detail'], report.steps.map((st) => [st.ok ? '✓' : '✗', st.name, String(st.durationMs), st.ok ? '' : st.detail]), new Set([2])));
  out.push('', `${report.ok ? 'Everything worked' : 'Some steps FAILED'} in ${(report.durationMs / 1000).toFixed(1)} s.`);
  return `${out.join('\n')}\n`;
}
