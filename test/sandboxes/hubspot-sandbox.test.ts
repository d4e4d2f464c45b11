/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- SDK errors and webhook bodies are untyped JSON here */
/**
 * Drives the HubSpot sandbox with the official client (`@hubspot/api-client`), as issue 3 asks:
 * CRUD, batch caps and 207s, upsert by unique property, search with its 10,000 cap, properties,
 * associations v4, archived records, merge, rate limits with HubSpot's headers and 429 bodies,
 * webhooks v3 checked with the SDK's own `Signature.isValid`, and the control API.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client, Signature } from '@hubspot/api-client';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';
import { startHubSpotSandbox } from '../../connectors/hubspot/sandbox/hubspot-sandbox.ts';

const op = (o: string) => o as never;

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

let sb: RunningSandbox;
let client: Client;
let receiver: Server;
let receiverUrl: string;
const deliveries: Delivery[] = [];
let failNext = 0;

async function control(route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sb.baseUrl}/_sandbox/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.json();
}

/** The per-input errors of a 207 batch answer, which the SDK's result types leave out. */
interface BatchErrors {
  errors?: { context: Record<string, string[]>; errors: { code: string }[] }[];
}

// `body: any`: the tests read several HubSpot error shapes (429 policy bodies, validation errors)
// field by field; the SDK types ApiException.body as `any` itself.
async function apiError(p: Promise<unknown>): Promise<{ code: number; body: any; headers: Record<string, string> }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: number; body: unknown; headers: Record<string, string> };
    return { code: err.code, body: err.body, headers: err.headers };
  }
  throw new Error('expected the call to fail');
}

function events(): any[] {
  return deliveries.flatMap((d) => JSON.parse(d.body));
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.statusCode = 500;
        res.end();
        return;
      }
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = 200;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/webhooks/hubspot`;
  sb = await startHubSpotSandbox({ port: 0, webhookRetryDelayMs: () => 20 });
  client = new Client({ accessToken: sb.credentials.accessToken!, basePath: sb.baseUrl, numberOfApiCallRetries: 0 });
});

afterAll(async () => {
  await sb.close();
  await new Promise((resolve) => receiver.close(resolve));
});

beforeEach(async () => {
  await control('reset', {});
  deliveries.length = 0;
  failNext = 0;
});

afterEach(async () => {
  await control('config', { webhookUrl: null });
});

describe('HubSpot sandbox: start-up and credentials', () => {
  it('exposes credentials and env in the shape of design.md §6', () => {
    expect(Object.keys(sb.credentials).sort()).toEqual(['accessToken', 'baseUrl', 'clientSecret']);
    expect(sb.env.HUBSPOT_BASE_URL).toBe(sb.baseUrl);
    expect(sb.env.HUBSPOT_ACCESS_TOKEN).toBe(sb.credentials.accessToken);
    expect(sb.env.HUBSPOT_CLIENT_SECRET).toBe(sb.credentials.clientSecret);
  });

  it('answers 401 INVALID_AUTHENTICATION to a wrong token', async () => {
    const bad = new Client({ accessToken: 'nope', basePath: sb.baseUrl, numberOfApiCallRetries: 0 });
    const e = await apiError(bad.crm.contacts.basicApi.getPage(10));
    expect(e.code).toBe(401);
    expect(e.body.category).toBe('INVALID_AUTHENTICATION');
    expect(e.body.correlationId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('HubSpot sandbox: objects', () => {
  it('creates, reads, updates and archives contacts, companies and deals', async () => {
    const contact = await client.crm.contacts.basicApi.create({ properties: { email: 'Ada@Example.com', firstname: 'Ada' }, associations: [] });
    expect(contact.properties.email).toBe('ada@example.com');
    const company = await client.crm.companies.basicApi.create({ properties: { name: 'Analytical Engines', domain: 'engines.example' }, associations: [] });
    const deal = await client.crm.deals.basicApi.create({ properties: { dealname: 'Engine', dealstage: 'qualifiedtobuy', amount: '1200.50' }, associations: [] });
    expect(deal.properties.amount).toBe('1200.5');

    const updated = await client.crm.contacts.basicApi.update(contact.id, { properties: { lastname: 'Lovelace' } });
    expect(updated.properties.lastname).toBe('Lovelace');
    const byEmail = await client.crm.contacts.basicApi.getById('ada@example.com', ['firstname', 'lastname', 'phone'], undefined, undefined, false, 'email');
    expect(byEmail.id).toBe(contact.id);
    expect(byEmail.properties).toMatchObject({ firstname: 'Ada', lastname: 'Lovelace', phone: null });

    // Generic object-type ids work as well as names.
    const viaTypeId = await client.crm.objects.basicApi.getById('0-2', company.id, ['name']);
    expect(viaTypeId.properties.name).toBe('Analytical Engines');

    await client.crm.deals.basicApi.archive(deal.id);
    const e = await apiError(client.crm.deals.basicApi.getById(deal.id));
    expect(e.code).toBe(404);
    expect(e.body.category).toBe('OBJECT_NOT_FOUND');
  });

  it('lists archived records only with archived=true', async () => {
    const a = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com' }, associations: [] });
    await client.crm.contacts.basicApi.create({ properties: { email: 'b@example.com' }, associations: [] });
    await client.crm.contacts.basicApi.archive(a.id);
    const live = await client.crm.contacts.basicApi.getPage(100, undefined, ['email']);
    expect(live.results.map((r) => r.properties.email)).toEqual(['b@example.com']);
    const archived = await client.crm.contacts.basicApi.getPage(100, undefined, ['email'], undefined, undefined, true);
    expect(archived.results.map((r) => r.id)).toEqual([a.id]);
    expect(archived.results[0]?.archived).toBe(true);
    expect(archived.results[0]?.archivedAt).toBeInstanceOf(Date);
  });

  it('pages lists with after', async () => {
    await control('seed', { object: 'companies', count: 25 });
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await client.crm.companies.basicApi.getPage(10, after);
      seen.push(...page.results.map((r) => r.id));
      after = page.paging?.next?.after;
    } while (after);
    expect(new Set(seen).size).toBe(25);
  });

  it('answers HubSpot validation errors for unknown properties, bad emails and bad options', async () => {
    const unknown = await apiError(client.crm.contacts.basicApi.create({ properties: { email: 'x@example.com', favourite_colour: 'red' }, associations: [] }));
    expect(unknown.code).toBe(400);
    expect(unknown.body.category).toBe('VALIDATION_ERROR');
    expect(unknown.body.message).toContain('Property values were not valid');
    expect(unknown.body.message).toContain('PROPERTY_DOESNT_EXIST');
    const email = await apiError(client.crm.contacts.basicApi.create({ properties: { email: 'not-an-email' }, associations: [] }));
    expect(email.body.message).toContain('INVALID_EMAIL');
    const option = await apiError(client.crm.contacts.basicApi.create({ properties: { email: 'y@example.com', crmhub_churn_risk: 'extreme' }, associations: [] }));
    expect(option.body.message).toContain('INVALID_OPTION');
    const readOnly = await apiError(client.crm.contacts.basicApi.create({ properties: { lastmodifieddate: '2024-01-01' }, associations: [] }));
    expect(readOnly.body.message).toContain('READ_ONLY_VALUE');
  });

  it('answers 409 CONFLICT for a duplicate unique value', async () => {
    const first = await client.crm.contacts.basicApi.create({ properties: { email: 'dup@example.com' }, associations: [] });
    const e = await apiError(client.crm.contacts.basicApi.create({ properties: { email: 'DUP@example.com' }, associations: [] }));
    expect(e.code).toBe(409);
    expect(e.body.category).toBe('CONFLICT');
    expect(e.body.message).toBe(`Contact already exists. Existing ID: ${first.id}`);
  });
});

describe('HubSpot sandbox: batch', () => {
  it('refuses a 101-input batch as HubSpot does', async () => {
    const inputs = Array.from({ length: 101 }, (_, i) => ({ properties: { email: `p${i}@example.com` }, associations: [] }));
    const e = await apiError(client.crm.contacts.batchApi.create({ inputs }));
    expect(e.code).toBe(400);
    expect(e.body.category).toBe('VALIDATION_ERROR');
    expect(e.body.message).toContain('101');
    const stats = await control('stats');
    expect(stats.records.contacts).toBe(0);
    // 100 is fine.
    const ok = await client.crm.contacts.batchApi.create({ inputs: inputs.slice(0, 100) });
    expect(ok.results).toHaveLength(100);
  });

  it('answers 207 with per-input errors when one input is bad, echoing objectWriteTraceId', async () => {
    const res = await client.crm.contacts.batchApi.create({
      inputs: [
        { properties: { email: 'good@example.com' }, associations: [], objectWriteTraceId: 'ref-1' },
        { properties: { email: 'bad-email' }, associations: [], objectWriteTraceId: 'ref-2' },
      ],
    });
    expect(res.results).toHaveLength(1);
    expect(res.results[0]?.objectWriteTraceId).toBe('ref-1');
    const withErrors = res as unknown as { numErrors: number; errors: any[] };
    expect(withErrors.numErrors).toBe(1);
    expect(withErrors.errors[0].category).toBe('VALIDATION_ERROR');
    expect(withErrors.errors[0].context.objectWriteTraceId).toEqual(['ref-2']);
    expect(withErrors.errors[0].errors[0].code).toBe('INVALID_EMAIL');
  });

  it('upserts by email and by crmhub_id, reporting new, and refuses a non-unique idProperty', async () => {
    await client.crm.contacts.basicApi.create({ properties: { email: 'ada@example.com', firstname: 'Ada' }, associations: [] });
    const res = await client.crm.contacts.batchApi.upsert({
      inputs: [
        { id: 'ada@example.com', idProperty: 'email', properties: { lastname: 'Lovelace' } },
        { id: 'grace@example.com', idProperty: 'email', properties: { firstname: 'Grace' } },
      ],
    });
    const byEmail = new Map(res.results.map((r) => [r.properties.email, r]));
    expect(byEmail.get('ada@example.com')?._new).toBe(false);
    expect(byEmail.get('grace@example.com')?._new).toBe(true);

    const viaId = await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'crm-42', idProperty: 'crmhub_id', properties: { email: 'c42@example.com' } }] });
    expect(viaId.results[0]?._new).toBe(true);
    const again = await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'crm-42', idProperty: 'crmhub_id', properties: { firstname: 'Forty' } }] });
    expect(again.results[0]?._new).toBe(false);
    expect(again.results[0]?.id).toBe(viaId.results[0]?.id);

    const e = await apiError(client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'Ada', idProperty: 'firstname', properties: {} }] }));
    expect(e.code).toBe(400);
    expect(e.body.message).toContain('unique');
    const dup = await apiError(
      client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'x@example.com', idProperty: 'email', properties: {} }, { id: 'X@example.com', idProperty: 'email', properties: {} }] }),
    );
    expect(dup.body.message).toContain('Duplicate IDs');
  });

  it('upsert answers 207 for a bad enum option in one input', async () => {
    const res = await client.crm.contacts.batchApi.upsert({
      inputs: [
        { id: 'ok@example.com', idProperty: 'email', properties: { crmhub_plan: 'pro', crmhub_audiences: 'trial_users;newsletter' } },
        { id: 'bad@example.com', idProperty: 'email', properties: { crmhub_plan: 'platinum' } },
      ],
    });
    expect(res.results.map((r) => r.properties.email)).toEqual(['ok@example.com']);
    expect(res.results[0]?.properties.crmhub_audiences).toBe('trial_users;newsletter');
    // The SDK's upsert result type has no `errors`, but a 207 body carries them (HubSpot's batch shape).
    const errors = (res as unknown as BatchErrors).errors ?? [];
    expect(errors[0]!.context.ids).toEqual(['bad@example.com']);
    expect(errors[0]!.errors[0]!.code).toBe('INVALID_OPTION');
  });

  it('batch reads with history, reports missing ids in a 207, updates and archives', async () => {
    const created = await client.crm.contacts.batchApi.create({ inputs: [0, 1, 2].map((i) => ({ properties: { email: `r${i}@example.com`, firstname: 'R' }, associations: [] })) });
    const ids = created.results.map((r) => r.id);
    const upd = await client.crm.contacts.batchApi.update({ inputs: ids.map((id) => ({ id, properties: { firstname: 'S' } })) });
    expect(upd.results.every((r) => r.properties.firstname === 'S')).toBe(true);
    const read = await client.crm.contacts.batchApi.read({ inputs: [...ids, '999999'].map((id) => ({ id })), properties: ['firstname'], propertiesWithHistory: ['firstname'] });
    expect(read.results).toHaveLength(3);
    expect(read.results[0]?.propertiesWithHistory?.firstname?.map((h) => h.value)).toEqual(['S', 'R']);
    expect((read as unknown as BatchErrors).errors?.[0]?.context.ids).toEqual(['999999']);
    const history = await apiError(client.crm.contacts.batchApi.read({ inputs: Array.from({ length: 51 }, (_, i) => ({ id: String(i) })), properties: [], propertiesWithHistory: ['email'] }));
    expect(history.body.message).toContain('property histories is 50');
    await client.crm.contacts.batchApi.archive({ inputs: ids.slice(0, 2).map((id) => ({ id })) });
    expect((await control('stats')).records.contacts).toBe(1);
  });
});

describe('HubSpot sandbox: search', () => {
  it('evaluates every operator, OR-ed groups, both sort forms and paging', async () => {
    await control('config', { rateLimit: { search: 1000 } });
    await client.crm.contacts.batchApi.create({
      inputs: [
        { properties: { email: 'ada@example.com', firstname: 'Ada', crmhub_product_usage_score: '10', crmhub_audiences: 'trial_users;newsletter' }, associations: [] },
        { properties: { email: 'grace@navy.example', firstname: 'Grace', crmhub_product_usage_score: '50' }, associations: [] },
        { properties: { email: 'alan@example.com', firstname: 'Alan', crmhub_product_usage_score: '90', jobtitle: 'Chief Codebreaker' }, associations: [] },
      ],
    });
    const names = async (filters: object[], sorts: unknown[] = ['firstname']): Promise<string[]> => {
      const res = await client.crm.contacts.searchApi.doSearch({ filterGroups: [{ filters: filters as never }], sorts: sorts as string[], properties: ['firstname'], limit: 200, after: '0' });
      return res.results.map((r) => r.properties.firstname ?? '');
    };
    expect(await names([{ propertyName: 'firstname', operator: op('EQ'), value: 'ada' }])).toEqual(['Ada']);
    expect(await names([{ propertyName: 'firstname', operator: op('NEQ'), value: 'Ada' }])).toEqual(['Alan', 'Grace']);
    expect(await names([{ propertyName: 'crmhub_product_usage_score', operator: op('LT'), value: '50' }])).toEqual(['Ada']);
    expect(await names([{ propertyName: 'crmhub_product_usage_score', operator: op('LTE'), value: '50' }])).toEqual(['Ada', 'Grace']);
    expect(await names([{ propertyName: 'crmhub_product_usage_score', operator: op('GT'), value: '50' }])).toEqual(['Alan']);
    expect(await names([{ propertyName: 'crmhub_product_usage_score', operator: op('GTE'), value: '50' }])).toEqual(['Alan', 'Grace']);
    expect(await names([{ propertyName: 'crmhub_product_usage_score', operator: op('BETWEEN'), value: '20', highValue: '95' }])).toEqual(['Alan', 'Grace']);
    expect(await names([{ propertyName: 'email', operator: op('IN'), values: ['ada@example.com', 'alan@example.com'] }])).toEqual(['Ada', 'Alan']);
    expect(await names([{ propertyName: 'email', operator: op('NOT_IN'), values: ['ada@example.com'] }])).toEqual(['Alan', 'Grace']);
    expect(await names([{ propertyName: 'jobtitle', operator: op('HAS_PROPERTY') }])).toEqual(['Alan']);
    expect(await names([{ propertyName: 'jobtitle', operator: op('NOT_HAS_PROPERTY') }])).toEqual(['Ada', 'Grace']);
    expect(await names([{ propertyName: 'jobtitle', operator: op('CONTAINS_TOKEN'), value: 'codebreaker' }])).toEqual(['Alan']);
    expect(await names([{ propertyName: 'email', operator: op('CONTAINS_TOKEN'), value: '*@example.com' }])).toEqual(['Ada', 'Alan']);
    expect(await names([{ propertyName: 'crmhub_audiences', operator: op('EQ'), value: 'newsletter' }])).toEqual(['Ada']);
    // Object-form and "-prop" string sorts, descending.
    expect(await names([], [{ propertyName: 'crmhub_product_usage_score', direction: 'DESCENDING' }])).toEqual(['Alan', 'Grace', 'Ada']);
    expect(await names([], ['-firstname'])).toEqual(['Grace', 'Alan', 'Ada']);
    // Groups are OR-ed.
    const or = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'firstname', operator: op('EQ'), value: 'Ada' }] }, { filters: [{ propertyName: 'firstname', operator: op('EQ'), value: 'Grace' }] }],
      sorts: ['firstname'],
      properties: ['firstname'],
      limit: 1,
      after: '0',
    });
    expect(or.total).toBe(2);
    expect(or.paging?.next?.after).toBe('1');
  });

  it('filters on modified dates given as epoch ms', async () => {
    const a = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com' }, associations: [] });
    const since = a.updatedAt.getTime();
    const res = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'lastmodifieddate', operator: op('GTE'), value: String(since) }] }],
      sorts: [{ propertyName: 'lastmodifieddate', direction: 'ASCENDING' }] as never,
      properties: ['lastmodifieddate'],
      limit: 200,
      after: '0',
    });
    expect(res.results.map((r) => r.id)).toEqual([a.id]);
  });

  it('caps pages at 200 and fails past 10,000 results with a 400, as HubSpot does', async () => {
    await control('seed', { object: 'contacts', count: 10_050 });
    await control('config', { rateLimit: { search: 1000 } });
    const big = await apiError(client.crm.contacts.searchApi.doSearch({ filterGroups: [], sorts: [], properties: [], limit: 201, after: '0' }));
    expect(big.code).toBe(400);
    const last = await client.crm.contacts.searchApi.doSearch({ filterGroups: [], sorts: [], properties: ['email'], limit: 200, after: '9800' });
    expect(last.total).toBe(10_050);
    expect(last.results).toHaveLength(200);
    // HubSpot still offers the next page; following it is what fails.
    expect(last.paging?.next?.after).toBe('10000');
    const past = await apiError(client.crm.contacts.searchApi.doSearch({ filterGroups: [], sorts: [], properties: [], limit: 200, after: last.paging!.next!.after }));
    expect(past.code).toBe(400);
    expect(past.body.category).toBe('VALIDATION_ERROR');
    expect(past.body.message).toContain('10000');
  });
});

describe('HubSpot sandbox: properties', () => {
  it('lists standard and crmhub custom properties, answers 404 for unknown ones and creates new ones', async () => {
    const all = await client.crm.properties.coreApi.getAll('contacts');
    const byName = new Map(all.results.map((p) => [p.name, p]));
    expect(byName.get('email')?.hasUniqueValue).toBe(true);
    expect(byName.get('crmhub_id')?.hasUniqueValue).toBe(true);
    expect(byName.get('crmhub_id')?.hubspotDefined).toBeUndefined();
    expect(byName.get('crmhub_audiences')?.fieldType).toBe('checkbox');
    expect(byName.get('lastmodifieddate')?.modificationMetadata?.readOnlyValue).toBe(true);
    const companies = await client.crm.properties.coreApi.getAll('companies');
    expect(companies.results.map((p) => p.name)).toEqual(expect.arrayContaining(['name', 'domain', 'crmhub_seats']));

    const missing = await apiError(client.crm.properties.coreApi.getByName('contacts', 'favourite_colour'));
    expect(missing.code).toBe(404);

    const created = await client.crm.properties.coreApi.create('contacts', {
      name: 'favourite_colour',
      label: 'Favourite colour',
      type: 'string' as never,
      fieldType: 'text' as never,
      groupName: 'contactinformation',
    });
    expect(created.name).toBe('favourite_colour');
    const c = await client.crm.contacts.basicApi.create({ properties: { email: 'c@example.com', favourite_colour: 'green' }, associations: [] });
    expect(c.properties.favourite_colour).toBe('green');
    const again = await apiError(client.crm.properties.coreApi.create('contacts', { name: 'favourite_colour', label: 'x', type: 'string' as never, fieldType: 'text' as never, groupName: 'contactinformation' }));
    expect(again.code).toBe(409);
  });
});

describe('HubSpot sandbox: associations v4', () => {
  it('creates default and labelled associations, reads them singly and in batch, and archives them', async () => {
    const contact = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com' }, associations: [] });
    const company = await client.crm.companies.basicApi.create({ properties: { name: 'Acme' }, associations: [] });
    const deal = await client.crm.deals.basicApi.create({ properties: { dealname: 'D' }, associations: [] });

    await client.crm.associations.v4.basicApi.createDefault('contacts', contact.id, 'companies', company.id);
    await client.crm.associations.v4.basicApi.create('contacts', contact.id, 'companies', company.id, [{ associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: 1 }]);
    const page = await client.crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies');
    expect(page.results[0]?.toObjectId).toBe(company.id);
    expect(page.results[0]?.associationTypes.map((t) => t.typeId).sort()).toEqual([1, 279]);
    // The inverse direction exists too.
    const back = await client.crm.associations.v4.basicApi.getPage('companies', company.id, 'contacts');
    expect(back.results[0]?.associationTypes.map((t) => t.typeId).sort()).toEqual([2, 280]);

    await client.crm.associations.v4.batchApi.create('deals', 'contacts', { inputs: [{ _from: { id: deal.id }, to: { id: contact.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: 3 }] }] });
    await client.crm.associations.v4.batchApi.createDefault('deals', 'companies', { inputs: [{ _from: { id: deal.id }, to: { id: company.id } }] });
    const batch = await client.crm.associations.v4.batchApi.getPage('deals', 'companies', { inputs: [{ id: deal.id }] });
    expect(batch.results[0]?.to[0]?.associationTypes[0]?.typeId).toBe(341);

    await client.crm.associations.v4.batchApi.archive('deals', 'contacts', { inputs: [{ _from: { id: deal.id }, to: [{ id: contact.id }] }] });
    const after = await client.crm.associations.v4.basicApi.getPage('deals', deal.id, 'contacts');
    expect(after.results).toHaveLength(0);
    await client.crm.associations.v4.basicApi.archive('contacts', contact.id, 'companies', company.id);
    expect((await client.crm.associations.v4.basicApi.getPage('contacts', contact.id, 'companies')).results).toHaveLength(0);
  });
});

describe('HubSpot sandbox: merge', () => {
  it('merges contacts into a new id that the old ids and emails resolve to', async () => {
    const a = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com', firstname: 'Ada' }, associations: [] });
    const b = await client.crm.contacts.basicApi.create({ properties: { email: 'b@example.com', lastname: 'Lovelace' }, associations: [] });
    const merged = await client.crm.contacts.basicApi.merge({ primaryObjectId: a.id, objectIdToMerge: b.id });
    expect(merged.id).not.toBe(a.id);
    expect(merged.id).not.toBe(b.id);
    const viaOld = await client.crm.contacts.basicApi.getById(b.id, ['firstname', 'lastname', 'hs_merged_object_ids']);
    expect(viaOld.id).toBe(merged.id);
    expect(viaOld.properties).toMatchObject({ firstname: 'Ada', lastname: 'Lovelace' });
    expect(viaOld.properties.hs_merged_object_ids?.split(';').sort()).toEqual([a.id, b.id].sort());
    // Upserting by the merged contact's email updates the survivor instead of creating a duplicate.
    const up = await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'b@example.com', idProperty: 'email', properties: { jobtitle: 'Analyst' } }] });
    expect(up.results[0]?.id).toBe(merged.id);
    expect(up.results[0]?._new).toBe(false);
    expect((await control('stats')).records.contacts).toBe(1);
  });
});

describe('HubSpot sandbox: rate limits', () => {
  it('sends the X-HubSpot-RateLimit-* headers on every response', async () => {
    const res = await client.apiRequest({ method: 'GET', path: '/crm/v3/objects/contacts' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-hubspot-ratelimit-max')).toBe('190');
    expect(res.headers.get('x-hubspot-ratelimit-interval-milliseconds')).toBe('10000');
    expect(Number(res.headers.get('x-hubspot-ratelimit-remaining'))).toBe(189);
    expect(res.headers.get('x-hubspot-ratelimit-daily')).toBe('625000');
    expect(Number(res.headers.get('x-hubspot-ratelimit-daily-remaining'))).toBe(624_999);
  });

  it('answers 429 TEN_SECONDLY_ROLLING with the real headers after the 10-second budget', async () => {
    await control('config', { rateLimit: { tenSecondly: 3 } });
    for (let i = 0; i < 3; i++) await client.crm.contacts.basicApi.getPage(1);
    const e = await apiError(client.crm.contacts.basicApi.getPage(1));
    expect(e.code).toBe(429);
    expect(e.body.policyName).toBe('TEN_SECONDLY_ROLLING');
    expect(e.body.errorType).toBe('RATE_LIMIT');
    expect(e.body.message).toBe('You have reached your ten_secondly_rolling limit.');
    expect(e.headers['x-hubspot-ratelimit-max']).toBe('3');
    expect(e.headers['x-hubspot-ratelimit-remaining']).toBe('0');
    expect(e.headers['x-hubspot-ratelimit-interval-milliseconds']).toBe('10000');
    // Search has its own budget and is exempt from the ten-secondly one.
    const s = await client.crm.contacts.searchApi.doSearch({ filterGroups: [], sorts: [], properties: [], limit: 1, after: '0' });
    expect(s.total).toBe(0);
    expect((await control('stats')).rateLimited).toBe(1);
  });

  it('answers the search limit with "You have reached your secondly limit."', async () => {
    await control('config', { rateLimit: { search: 2 } });
    const search = () => client.crm.contacts.searchApi.doSearch({ filterGroups: [], sorts: [], properties: [], limit: 1, after: '0' });
    await search();
    await search();
    const e = await apiError(search());
    expect(e.code).toBe(429);
    expect(e.body.message).toBe('You have reached your secondly limit.');
  });

  it('answers 429 DAILY once the daily quota is spent', async () => {
    await control('config', { dailyQuota: 2 });
    await client.crm.contacts.basicApi.getPage(1);
    await client.crm.contacts.basicApi.getPage(1);
    const e = await apiError(client.crm.contacts.basicApi.getPage(1));
    expect(e.code).toBe(429);
    expect(e.body.policyName).toBe('DAILY');
    expect(e.headers['x-hubspot-ratelimit-daily-remaining']).toBe('0');
  });
});

describe('HubSpot sandbox: webhooks v3', () => {
  it('delivers signed batches that pass Signature.isValid, and a tampered signature fails it', async () => {
    await control('config', { webhookUrl: receiverUrl });
    await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com', firstname: 'Ada' }, associations: [] });
    await control('drain', {});
    expect(deliveries.length).toBeGreaterThan(0);
    const d = deliveries[0]!;
    const timestamp = Number(d.headers['x-hubspot-request-timestamp']);
    const signature = String(d.headers['x-hubspot-signature-v3']);
    const args = { signatureVersion: 'v3', clientSecret: sb.credentials.clientSecret!, requestBody: d.body, url: receiverUrl, method: 'POST', timestamp };
    expect(Signature.isValid({ ...args, signature })).toBe(true);
    expect(Signature.isValid({ ...args, signature: signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) })).toBe(false);
    expect(Signature.isValid({ ...args, signature, requestBody: d.body.replace('Ada', 'Eve') })).toBe(false);
    expect(Signature.isValid({ signatureVersion: 'v1', clientSecret: sb.credentials.clientSecret!, requestBody: d.body, signature: String(d.headers['x-hubspot-signature']) })).toBe(true);
  });

  it('tells integration writes (INTEGRATION + app id) from rep edits (CRM_UI), one propertyChange per property', async () => {
    await control('config', { webhookUrl: receiverUrl });
    const c = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com', firstname: 'Ada' }, associations: [] });
    await control('edit', { object: 'contacts', id: c.id, fields: { firstname: 'Augusta', lastname: 'King' } });
    await control('drain', {});
    const all = events();
    const creation = all.find((e) => e.subscriptionType === 'contact.creation');
    expect(creation).toMatchObject({ objectId: Number(c.id), changeSource: 'INTEGRATION', sourceId: String(creation.appId), attemptNumber: 0 });
    const rep = all.filter((e) => e.subscriptionType === 'contact.propertyChange' && e.changeSource === 'CRM_UI');
    expect(rep.map((e) => [e.propertyName, e.propertyValue]).sort()).toEqual([['firstname', 'Augusta'], ['lastname', 'King']]);
    expect(new Set(all.map((e) => e.eventId)).size).toBe(all.length);
    for (const e of all) expect(Object.keys(e)).toEqual(expect.arrayContaining(['eventId', 'subscriptionId', 'portalId', 'appId', 'occurredAt', 'subscriptionType', 'attemptNumber', 'objectId', 'changeSource']));
  });

  it('sends deletion, merge and associationChange events', async () => {
    await control('config', { webhookUrl: receiverUrl });
    const a = await client.crm.contacts.basicApi.create({ properties: { email: 'a@example.com' }, associations: [] });
    const b = await client.crm.contacts.basicApi.create({ properties: { email: 'b@example.com' }, associations: [] });
    const co = await client.crm.companies.basicApi.create({ properties: { name: 'Acme' }, associations: [] });
    await client.crm.associations.v4.basicApi.createDefault('contacts', a.id, 'companies', co.id);
    const merged = await client.crm.contacts.basicApi.merge({ primaryObjectId: a.id, objectIdToMerge: b.id });
    await control('delete', { object: 'companies', id: co.id });
    await control('drain', {});
    const all = events();
    expect(all.find((e) => e.subscriptionType === 'contact.associationChange')).toMatchObject({ associationType: 'CONTACT_TO_COMPANY', fromObjectId: Number(a.id), toObjectId: Number(co.id), associationRemoved: false });
    expect(all.find((e) => e.subscriptionType === 'contact.merge')).toMatchObject({ primaryObjectId: Number(a.id), mergedObjectIds: [Number(b.id)], newObjectId: Number(merged.id) });
    expect(all.find((e) => e.subscriptionType === 'company.deletion')).toMatchObject({ objectId: Number(co.id), changeSource: 'CRM_UI' });
  });

  it('batches up to 100 events per request and retries a failed delivery', async () => {
    await control('config', { webhookUrl: receiverUrl });
    failNext = 1;
    await client.crm.contacts.batchApi.create({ inputs: Array.from({ length: 100 }, (_, i) => ({ properties: { email: `w${i}@example.com` }, associations: [] })) });
    await control('drain', {});
    const sizes = deliveries.map((d) => JSON.parse(d.body).length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(200); // creation + propertyChange(email) for each
    expect(events().some((e) => e.attemptNumber === 1)).toBe(true);
    const stats = await control('stats');
    expect(stats.webhooks.failedAttempts).toBe(1);
  });
});

describe('HubSpot sandbox: control API', () => {
  it('seeds realistic linked records, counts calls and writes, injects faults and resets', async () => {
    await control('seed', { object: 'companies', count: 3 });
    const seeded = await control('seed', { object: 'contacts', count: 5 });
    await control('seed', { object: 'deals', count: 2 });
    expect(seeded.ids).toHaveLength(5);
    const c = await client.crm.contacts.basicApi.getById(seeded.ids[0], ['email', 'firstname', 'lastname', 'company']);
    expect(c.properties.email).toMatch(/^[a-z.-]+\.\d+@[a-z0-9]+\.example\.com$/);
    expect(c.properties.firstname).toBeTruthy();
    const assoc = await client.crm.associations.v4.basicApi.getPage('contacts', seeded.ids[0], 'companies');
    expect(assoc.results).toHaveLength(1);

    await client.crm.contacts.batchApi.upsert({ inputs: [{ id: 'n@example.com', idProperty: 'email', properties: {} }] });
    const stats = await control('stats');
    expect(stats.records).toMatchObject({ companies: 3, contacts: 6, deals: 2 });
    expect(stats.calls['POST /crm/v3/objects/:objectType/batch/upsert']).toBe(1);
    expect(stats.recordsWritten.contacts).toBeGreaterThanOrEqual(6);

    await control('config', { faults: { errorRate: 1 } });
    const e = await apiError(client.crm.contacts.basicApi.getPage(1));
    expect(e.code).toBe(503);
    await control('config', { faults: {} });

    await control('reset', {});
    const after = await control('stats');
    expect(after.records).toEqual({ contacts: 0, companies: 0, deals: 0 });
    expect(after.totalCalls).toBe(0);
  });

  it('persists state to a file and restores it on the next start', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hs-sandbox-'));
    const stateFile = path.join(dir, 'state.json');
    try {
      const first = await startHubSpotSandbox({ port: 0, stateFile });
      const c1 = new Client({ accessToken: first.credentials.accessToken!, basePath: first.baseUrl, numberOfApiCallRetries: 0 });
      const created = await c1.crm.contacts.basicApi.create({ properties: { email: 'keep@example.com' }, associations: [] });
      await first.close();
      const second = await startHubSpotSandbox({ port: 0, stateFile });
      const c2 = new Client({ accessToken: second.credentials.accessToken!, basePath: second.baseUrl, numberOfApiCallRetries: 0 });
      const got = await c2.crm.contacts.basicApi.getById('keep@example.com', ['email'], undefined, undefined, false, 'email');
      expect(got.id).toBe(created.id);
      const next = await c2.crm.contacts.basicApi.create({ properties: { email: 'next@example.com' }, associations: [] });
      expect(Number(next.id)).toBeGreaterThan(Number(created.id));
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
