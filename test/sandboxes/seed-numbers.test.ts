/**
 * `POST /_sandbox/seed {object, count, seed}` (every sandbox): with a seed number the records are
 * the same in any sandbox of that CRM, whatever it already holds; without one they continue from
 * the record count. Records are read back through each connector, as crmhub sees them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandboxes } from '../../src/cli/commands/sandbox.ts';
import { connectorModules } from '../../src/cli/connector-modules.ts';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';

/** The people object of each CRM and the seeded fields that make a person (names, email, phone, …). */
const PEOPLE: Record<string, { object: string; fields: string[] }> = {
  hubspot: { object: 'contacts', fields: ['firstname', 'lastname', 'email', 'phone', 'company', 'jobtitle', 'lifecyclestage'] },
  salesforce: { object: 'Contact', fields: ['FirstName', 'LastName', 'Email', 'Phone', 'Title', 'LeadSource', 'Plan__c', 'Engagement_Score__c'] },
  pipedrive: { object: 'persons', fields: ['first_name', 'last_name', 'email', 'phone'] },
};

let busy: RunningSandbox[] = [];
let empty: RunningSandbox[] = [];

beforeAll(async () => {
  busy = await startSandboxes({});
  empty = await startSandboxes({});
});

afterAll(async () => {
  await Promise.allSettled([...busy, ...empty].map((s) => s.close()));
});

async function seed(sandbox: RunningSandbox, body: Record<string, unknown>): Promise<{ status: number; ids: string[] }> {
  const res = await fetch(`${sandbox.baseUrl}/_sandbox/seed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { ids?: string[] };
  return { status: res.status, ids: json.ids ?? [] };
}

/** The seeded fields of `ids`, in order, read through the CRM's connector. */
async function people(sandbox: RunningSandbox, ids: string[]): Promise<Record<string, unknown>[]> {
  const module = connectorModules.find((m) => m.slug === sandbox.slug)!;
  const connector = module.fromEnv(sandbox.env)!;
  const { object, fields } = PEOPLE[sandbox.slug]!;
  const records = await connector.readByIds(object, ids);
  const byId = new Map(records.map((r) => [r.id, r]));
  return ids.map((id) => Object.fromEntries(fields.map((f) => [f, byId.get(id)?.fields[f] ?? null])));
}

describe.each(['hubspot', 'salesforce', 'pipedrive'])('%s seed numbers', (slug) => {
  const sandbox = (list: RunningSandbox[]) => list.find((s) => s.slug === slug)!;

  it('the same seed number gives the same people whatever the sandbox holds', async () => {
    const object = PEOPLE[slug]!.object;
    const earlier = await seed(sandbox(busy), { object, count: 3 });
    const a = await seed(sandbox(busy), { object, count: 2, seed: 500 });
    const b = await seed(sandbox(empty), { object, count: 2, seed: 500 });
    expect([earlier.ids.length, a.ids.length, b.ids.length]).toEqual([3, 2, 2]);
    const fromBusy = await people(sandbox(busy), a.ids);
    const fromEmpty = await people(sandbox(empty), b.ids);
    expect(fromBusy).toEqual(fromEmpty);
    // Real people (names and an email; Pipedrive gives only some a phone), not the ones seeded
    // without a number.
    for (const person of fromBusy) for (const [field, value] of Object.entries(person)) if (/name|email/i.test(field)) expect(value, field).not.toBeNull();
    const emailField = PEOPLE[slug]!.fields.find((f) => f.toLowerCase() === 'email')!;
    const first = await people(sandbox(busy), earlier.ids);
    const emails = [...first, ...fromBusy].map((p) => JSON.stringify(p[emailField]));
    expect(new Set(emails).size).toBe(5);
  });

  it('without a seed number, records continue from the record count', async () => {
    const object = PEOPLE[slug]!.object;
    // `empty` holds 2 people now (numbers 500, 501); the next unnumbered call adds numbers 2 and 3.
    const next = await seed(sandbox(empty), { object, count: 2 });
    const numbered = await seed(sandbox(empty), { object, count: 2, seed: 2 });
    if (slug === 'hubspot') expect(numbered.ids).toEqual([]); // HubSpot refuses the duplicate emails
    else expect(await people(sandbox(empty), numbered.ids)).toEqual(await people(sandbox(empty), next.ids));
  });

  it('refuses a seed number that is not a whole number ≥ 0', async () => {
    const object = PEOPLE[slug]!.object;
    expect((await seed(sandbox(empty), { object, count: 1, seed: -1 })).status).toBe(400);
    expect((await seed(sandbox(empty), { object, count: 1, seed: 1.5 })).status).toBe(400);
  });
});
