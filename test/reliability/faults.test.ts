/**
 * Faults (issue 9): the sandboxes inject 10% 5xx, 5% dropped connections, latency spikes and 429
 * bursts during a bidirectional sync (CRM records pulled into profiles and pushed to the other CRMs,
 * profile events pushed to every CRM), run the way `crmhub serve` runs it: outbox workers always on,
 * incremental pulls back to back. Afterwards every person is in every CRM exactly once, every
 * profile is linked to exactly one record per CRM, and the dead-letter queue is empty (every record
 * was valid; only retryable faults were injected).
 *
 * Sizes: HubSpot + Salesforce carry the 10,000-record run (CRM_SEED per CRM + EVENTS profiles;
 * `CRMHUB_FAULTS_RECORDS` overrides the total). Pipedrive has no batch writes and a 20-per-2 s burst
 * limit (one record per call, ~10 records/s), so it joins a smaller three-CRM run with the same faults.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from './support/http-checks.ts';
import { converge } from './support/converge.ts';
import { duplicates, inventory, PEOPLE, storeLinks } from './support/inventory.ts';
import { startHub, WRITE_AUTH, type Hub } from './support/hub.ts';
import { configure, seed, stats } from './support/sandbox-control.ts';

const FAULTS = { errorRate: 0.1, dropRate: 0.05, latencyMs: 10, slowRate: 0.03 };
/** Sandbox limits below what the connectors pace to: while on, a share of calls answer 429. */
const TIGHT: Record<string, Record<string, unknown>> = {
  hubspot: { rateLimit: { tenSecondly: 40, search: 2 } },
  salesforce: { rateLimit: { requests: 8, windowMs: 1000 } },
  pipedrive: { rateLimit: { burst: 8, windowMs: 2000 } },
};
const NORMAL: Record<string, Record<string, unknown>> = {
  hubspot: { rateLimit: { tenSecondly: 100, search: 5 } },
  salesforce: { rateLimit: {} },
  pipedrive: { rateLimit: { burst: 80, windowMs: 2000 } },
};

let hub: Hub | null = null;
afterEach(async () => {
  await hub?.close();
  hub = null;
});

async function sendProfiles(h: Hub, count: number, tag: string): Promise<string[]> {
  const emails: string[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, k) => {
      const n = i + k;
      const email = `${tag}.person${n}@faults.example`;
      emails.push(email);
      return { type: 'identify', userId: `${tag}-u${n}`, messageId: `${tag}-m${n}`, traits: { email, first_name: `First${n}`, last_name: `Last${n}`, plan: 'pro' } };
    });
    const res = await h.app.inject({ method: 'POST', url: '/v1/batch', headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload: JSON.stringify({ batch }) });
    expect(res.statusCode, res.body).toBe(200);
  }
  return emails;
}

async function scenario(slugs: string[], perCrm: number, events: number, budgetMs: number): Promise<void> {
  const started = Date.now();
  const h = await startHub({ only: slugs, engine: { retry: { baseMs: 50, maxMs: 1_000, maxAttempts: 15 }, pageSize: 100 } });
  hub = h;
  const sandboxes = slugs.map((s) => h.sandboxes.get(s)!);
  // The people already in the CRMs, read before anything is synced.
  const expected = new Set<string>();
  const noEmail = new Map<string, number>();
  for (const slug of slugs) {
    await seed(h.sandboxes.get(slug)!, PEOPLE[slug]!.object, perCrm);
    const inv = await inventory(h.engine.ctx.connector(slug), PEOPLE[slug]!.object, PEOPLE[slug]!.email);
    for (const email of inv.byEmail.keys()) expected.add(email);
    noEmail.set(slug, inv.withoutEmail.length);
  }
  for (const email of await sendProfiles(h, events, `f${perCrm}`)) expected.add(email);

  for (const s of sandboxes) await configure(s, { faults: FAULTS });
  // 429 bursts: the sandboxes' limits drop below the connectors' pace for 1.5 s out of every 4 s.
  let tight = false;
  const toggler = setInterval(() => {
    tight = !tight;
    for (const s of sandboxes) void configure(s, (tight ? TIGHT : NORMAL)[s.slug] ?? {}).catch(() => undefined);
  }, tight ? 1_500 : 2_500);
  let result;
  try {
    result = await converge(h.engine, { maxRounds: 400, deadline: started + budgetMs, pending: () => h.store.pendingOutboxCount() });
  } finally {
    clearInterval(toggler);
    for (const s of sandboxes) {
      await configure(s, { faults: { errorRate: 0, dropRate: 0, latencyMs: 0, slowRate: 0 } });
      await configure(s, NORMAL[s.slug] ?? {});
    }
  }
  const injected = await Promise.all(sandboxes.map(async (s) => ({ slug: s.slug, ...(await stats(s)) })));
  process.stdout.write(
    `faults ${slugs.join('+')}: ${expected.size} people, ${perCrm}/CRM seeded + ${events} events; ${result.rounds} rounds, ${Date.now() - started} ms; ` +
      injected.map((s) => `${s.slug} calls ${s.totalCalls} faults ${s.faultsInjected} 429s ${s.rateLimited}`).join('; ') +
      `\n${result.log.join('\n')}\n`,
  );
  expect(result.converged, result.log.join('\n')).toBe(true);
  // The faults really happened.
  for (const s of injected) expect(s.faultsInjected, s.slug).toBeGreaterThan(0);

  const dead = await h.store.listDeadLetters({ limit: 20, includeReplayed: false });
  expect(dead.map((d) => `${d.connector}.${d.object} ${d.reason}`)).toEqual([]);

  for (const slug of slugs) {
    const people = PEOPLE[slug]!;
    const inv = await inventory(h.engine.ctx.connector(slug), people.object, people.email);
    expect(duplicates(inv).slice(0, 5), `${slug} duplicates`).toEqual([]);
    const missing = [...expected].filter((e) => !inv.byEmail.has(e));
    expect(missing.slice(0, 5), `${slug}: ${missing.length} missing`).toEqual([]);
    expect(inv.byEmail.size, `${slug} unexpected emails`).toBe(expected.size);
    expect(inv.withoutEmail.length, `${slug} records without email`).toBe(noEmail.get(slug));
  }
  // The store: one profile per person, linked to exactly one record in every CRM.
  const links = await storeLinks(h.store, slugs);
  expect(links.multiLinked.slice(0, 5)).toEqual([]);
  const [first, ...rest] = slugs.map((s) => links.profiles.get(s) ?? new Set<string>());
  expect(first?.size).toBe(expected.size);
  for (const other of rest) expect([...other].filter((id) => !first?.has(id)).length).toBe(0);
}

const TOTAL = Number(process.env['CRMHUB_FAULTS_RECORDS'] ?? 10_000);

describe('sync under injected faults', () => {
  it(`HubSpot + Salesforce: ${TOTAL} records arrive everywhere exactly once`, async () => {
    const perCrm = Math.round(TOTAL * 0.3);
    await scenario(['hubspot', 'salesforce'], perCrm, TOTAL - 2 * perCrm, 420_000);
  }, 480_000);

  it('HubSpot + Salesforce + Pipedrive: a smaller run with the same faults', async () => {
    await scenario(['hubspot', 'salesforce', 'pipedrive'], 25, 40, 100_000);
  }, 130_000);
});
