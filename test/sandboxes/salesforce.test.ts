/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- jsforce types records and save results loosely; the tests read vendor-shaped payloads field by field. */
// Typing note: webhook bodies, parsed SOAP/XML and some SDK results are read here as `any`
// because they are vendor payloads asserted field by field; the shapes under test are the point,
// and the zod schemas they must satisfy live in the connectors (this file checks the sandbox).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import jsforce from 'jsforce';
import { QueryJobV2 } from 'jsforce/lib/api/bulk2.js';
import { startSalesforceSandbox } from '../../connectors/salesforce/sandbox/index.ts';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';

let sandbox: RunningSandbox;

const cred = (key: string): string => {
  const value = sandbox.credentials[key];
  if (value === undefined) throw new TypeError(`sandbox credential ${key} missing`);
  return value;
};

const control = async (path: string, body: unknown = {}): Promise<any> => {
  const res = await fetch(`${sandbox.baseUrl}/_sandbox/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.json();
};

const connect = (extra: Record<string, unknown> = {}) =>
  new jsforce.Connection({
    instanceUrl: cred('instanceUrl'),
    accessToken: cred('accessToken'),
    version: '62.0',
    ...extra,
  });

beforeAll(async () => {
  sandbox = await startSalesforceSandbox({ port: 0 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control('reset');
});

describe('salesforce sandbox: OAuth', () => {
  it('issues tokens by client credentials with its own instance_url and id', async () => {
    const conn = new jsforce.Connection({
      loginUrl: cred('loginUrl'),
      version: '62.0',
      oauth2: { clientId: cred('clientId'), clientSecret: cred('clientSecret'), loginUrl: cred('loginUrl') },
    });
    const userInfo = await conn.authorize({ grant_type: 'client_credentials' });
    expect(conn.instanceUrl).toBe(sandbox.baseUrl);
    expect(userInfo.organizationId).toBe(cred('orgId'));
    expect(userInfo.id).toMatch(/^005/);
    expect((await conn.query('SELECT COUNT() FROM Contact')).totalSize).toBe(0);
  });

  it('refuses a wrong client secret with invalid_client', async () => {
    const conn = new jsforce.Connection({
      version: '62.0',
      oauth2: { clientId: cred('clientId'), clientSecret: 'nope', loginUrl: cred('loginUrl') },
    });
    await expect(conn.authorize({ grant_type: 'client_credentials' })).rejects.toMatchObject({ name: 'invalid_client' });
  });

  it('refreshes an expired token on 401 INVALID_SESSION_ID and replays the call', async () => {
    await control('config', { tokenTtlSeconds: 1 });
    const oauth = new jsforce.OAuth2({ clientId: cred('clientId'), clientSecret: cred('clientSecret'), loginUrl: cred('loginUrl') });
    const first: any = await oauth.refreshToken(cred('refreshToken'));
    const conn = new jsforce.Connection({
      version: '62.0',
      oauth2: { clientId: cred('clientId'), clientSecret: cred('clientSecret'), loginUrl: cred('loginUrl') },
      instanceUrl: first.instance_url,
      accessToken: first.access_token,
      refreshToken: cred('refreshToken'),
    });
    let refreshed = 0;
    conn.on('refresh', () => refreshed++);
    await control('config', { expireTokens: true });
    const res = await conn.query('SELECT Id FROM Contact');
    expect(res.totalSize).toBe(0);
    expect(refreshed).toBe(1);
    expect(conn.accessToken).not.toBe(first.access_token);
  });

  it('answers invalid_grant for an unknown refresh token', async () => {
    const oauth = new jsforce.OAuth2({ clientId: cred('clientId'), clientSecret: cred('clientSecret'), loginUrl: cred('loginUrl') });
    await expect(oauth.refreshToken('bogus')).rejects.toMatchObject({ name: 'invalid_grant' });
  });

  it('answers 401 INVALID_SESSION_ID for a bad token', async () => {
    const conn = connect({ accessToken: 'bad' });
    await expect(conn.query('SELECT Id FROM Contact')).rejects.toMatchObject({ errorCode: 'INVALID_SESSION_ID' });
  });
});

describe('salesforce sandbox: describe', () => {
  it('describes standard and crmhub custom fields', async () => {
    const conn = connect();
    const global = await conn.describeGlobal();
    expect(global.sobjects.map((s) => s.name).sort()).toEqual(['Account', 'Contact', 'Lead', 'Opportunity']);
    expect(global.sobjects.find((s) => s.name === 'Lead')?.keyPrefix).toBe('00Q');
    const contact = await conn.sobject('Contact').describe();
    const byName = new Map(contact.fields.map((f) => [f.name, f]));
    expect(byName.get('Crmhub_Id__c')).toMatchObject({ externalId: true, unique: true, custom: true, length: 64, type: 'string' });
    expect(byName.get('Plan__c')?.picklistValues?.map((p) => p.value)).toEqual(['free', 'starter', 'pro', 'enterprise']);
    expect(byName.get('Plan__c')?.restrictedPicklist).toBe(true);
    expect(byName.get('Audiences__c')?.type).toBe('multipicklist');
    expect(byName.get('LastName')).toMatchObject({ nillable: false, createable: true, length: 80 });
    expect(byName.get('SystemModstamp')).toMatchObject({ type: 'datetime', createable: false, updateable: false });
    expect(byName.get('AccountId')).toMatchObject({ type: 'reference', referenceTo: ['Account'], relationshipName: 'Account' });
  });
});

describe('salesforce sandbox: records and SOQL', () => {
  it('creates, reads, updates and deletes; SystemModstamp moves on every write', async () => {
    const conn = connect();
    const created: any = await conn.sobject('Contact').create({ LastName: 'Lovelace', FirstName: 'Ada', Email: 'ada@example.com' });
    expect(created.success).toBe(true);
    expect(created.id).toMatch(/^003[a-zA-Z0-9]{15}$/);
    const row: any = await conn.sobject('Contact').retrieve(created.id);
    expect(row.attributes).toEqual({ type: 'Contact', url: `/services/data/v62.0/sobjects/Contact/${created.id}` });
    expect(row.Name).toBe('Ada Lovelace');
    await new Promise((r) => setTimeout(r, 5));
    await conn.sobject('Contact').update({ Id: created.id, Title: 'Countess' });
    const after: any = await conn.sobject('Contact').retrieve(created.id);
    expect(Date.parse(after.SystemModstamp.replace('+0000', 'Z'))).toBeGreaterThan(Date.parse(row.SystemModstamp.replace('+0000', 'Z')));
    expect(after.LastModifiedDate).toBe(after.SystemModstamp);
    await conn.sobject('Contact').destroy(created.id);
    await expect(conn.sobject('Contact').retrieve(created.id)).rejects.toMatchObject({ errorCode: 'NOT_FOUND' });
  });

  it('upserts by external id: 201 created, then 200 created:false, 300 on several matches, 404 on an unknown field', async () => {
    const conn = connect();
    const first: any = await conn.sobject('Contact').upsert({ Crmhub_Id__c: 'p-1', LastName: 'Hopper' }, 'Crmhub_Id__c');
    expect(first).toMatchObject({ success: true, created: true });
    const second: any = await conn.sobject('Contact').upsert({ Crmhub_Id__c: 'p-1', LastName: 'Hopper', Title: 'Admiral' }, 'Crmhub_Id__c');
    expect(second).toMatchObject({ id: first.id, success: true, created: false });
    await conn.sobject('Contact').create([{ LastName: 'A', Email: 'same@example.com' }, { LastName: 'B', Email: 'same@example.com' }]);
    await expect(conn.sobject('Contact').upsert({ Email: 'same@example.com', LastName: 'C' }, 'Email')).rejects.toMatchObject({ errorCode: 'MULTIPLE_CHOICES' });
    await expect(conn.sobject('Contact').upsert({ Nope__c: 'x', LastName: 'C' }, 'Nope__c')).rejects.toMatchObject({ errorCode: 'NOT_FOUND' });
  });

  it('rejects invalid values with Salesforce error codes', async () => {
    const conn = connect();
    const results: any[] = await conn.sobject('Contact').create([
      { FirstName: 'No last name' },
      { LastName: 'X', Email: 'not-an-email' },
      { LastName: 'X', Plan__c: 'gold' },
      { LastName: 'x'.repeat(81) },
      { LastName: 'X', Foo__c: 1 },
    ]);
    expect(results.map((r) => r.errors[0].statusCode)).toEqual([
      'REQUIRED_FIELD_MISSING',
      'INVALID_EMAIL_ADDRESS',
      'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
      'STRING_TOO_LONG',
      'INVALID_FIELD',
    ]);
    expect(results[0].errors[0]).toEqual({ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] });
    await expect(conn.sobject('Contact').create({ LastName: 'X', Email: 'bad' })).rejects.toMatchObject({ errorCode: 'INVALID_EMAIL_ADDRESS' });
  });

  it('detects duplicates on Email when the duplicate rule is on', async () => {
    const conn = connect();
    await control('config', { duplicateRule: true });
    await conn.sobject('Lead').create({ LastName: 'A', Company: 'Acme', Email: 'dup@example.com' });
    const res: any[] = await conn.sobject('Lead').create([{ LastName: 'B', Company: 'Acme', Email: 'DUP@example.com' }]);
    expect(res[0].errors[0].statusCode).toBe('DUPLICATES_DETECTED');
  });

  it('round-trips quotes and backslashes through SOQL string literals', async () => {
    const conn = connect();
    await conn.sobject('Contact').create([
      { LastName: 'O\'Brien', Email: "o'brien@example.com" },
      { LastName: 'Back\\slash', Email: 'b@example.com' },
      { LastName: 'Under_score', Email: 'u@example.com' },
      { LastName: 'Underxscore', Email: 'x@example.com' },
    ]);
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const a = await conn.query(`SELECT Id, LastName FROM Contact WHERE Email = '${esc("o'brien@example.com")}'`);
    expect(a.records.map((r: any) => r.LastName)).toEqual(["O'Brien"]);
    const b = await conn.query(`SELECT LastName FROM Contact WHERE LastName = '${esc('Back\\slash')}'`);
    expect(b.records.map((r: any) => r.LastName)).toEqual(['Back\\slash']);
    const c = await conn.query("SELECT LastName FROM Contact WHERE LastName LIKE 'under\\_%'");
    expect(c.records.map((r: any) => r.LastName)).toEqual(['Under_score']);
    await expect(conn.query("SELECT Id FROM Contact WHERE LastName = 'a\\qb'")).rejects.toMatchObject({ errorCode: 'MALFORMED_QUERY' });
  });

  it('answers INVALID_FIELD with the caret excerpt and INVALID_TYPE for an unknown object', async () => {
    const conn = connect();
    const err: any = await conn.query('SELECT Id, Foo__c FROM Contact').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err.errorCode).toBe('INVALID_FIELD');
    expect(err.message).toContain("No such column 'Foo__c' on entity 'Contact'");
    expect(err.message).toContain('ERROR at Row:1:Column:12');
    await expect(conn.query('SELECT Id FROM Nope__c')).rejects.toMatchObject({ errorCode: 'INVALID_TYPE' });
    await expect(conn.query("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'")).rejects.toMatchObject({ errorCode: 'INVALID_FIELD' });
  });

  it('filters, sorts and limits like SOQL', async () => {
    const conn = connect();
    const acct: any = await conn.sobject('Account').create({ Name: 'Acme' });
    await conn.sobject('Contact').create([
      { LastName: 'A', Engagement_Score__c: 10, AccountId: acct.id, Audiences__c: 'trial_users;newsletter' },
      { LastName: 'B', Engagement_Score__c: 20 },
      { LastName: 'C', Engagement_Score__c: 30, Email: 'c@example.com' },
      { LastName: 'D' },
    ]);
    const q = async (soql: string) => (await conn.query(soql)).records.map((r: any) => r.LastName);
    expect(await q('SELECT LastName FROM Contact WHERE Engagement_Score__c >= 20 ORDER BY LastName DESC')).toEqual(['C', 'B']);
    expect(await q('SELECT LastName FROM Contact WHERE (Engagement_Score__c < 15 OR Email != null) AND NOT LastName IN (\'Z\') ORDER BY LastName')).toEqual(['A', 'C']);
    expect(await q('SELECT LastName FROM Contact ORDER BY Engagement_Score__c DESC NULLS LAST, LastName LIMIT 2 OFFSET 1')).toEqual(['B', 'A']);
    expect(await q('SELECT LastName FROM Contact ORDER BY Engagement_Score__c ASC NULLS FIRST LIMIT 1')).toEqual(['D']);
    expect(await q('SELECT LastName FROM Contact WHERE Email = null AND LastName NOT IN (\'A\', \'B\')')).toEqual(['D']);
    expect(await q("SELECT LastName FROM Contact WHERE Audiences__c INCLUDES ('newsletter')")).toEqual(['A']);
    expect(await q(`SELECT LastName FROM Contact WHERE SystemModstamp > 2020-01-01T00:00:00Z AND CreatedDate = TODAY ORDER BY SystemModstamp, Id`)).toHaveLength(4);
    const rel = await conn.query('SELECT LastName, Account.Name FROM Contact WHERE Account.Name = \'Acme\'');
    expect((rel.records[0] as any).Account).toMatchObject({ attributes: { type: 'Account' }, Name: 'Acme' });
    expect((await conn.query('SELECT COUNT() FROM Contact WHERE LastName LIKE \'%\'')).totalSize).toBe(4);
    await expect(conn.query("SELECT Id FROM Contact WHERE LastName = 'A' AND Email = null OR LastName = 'B'")).rejects.toMatchObject({ errorCode: 'MALFORMED_QUERY' });
    await expect(conn.query('SELECT Id FROM Contact LIMIT 10 OFFSET 2001')).rejects.toMatchObject({ errorCode: 'NUMBER_OUTSIDE_VALID_RANGE' });
  });

  it('compares date fields with date literals and derives opportunity flags', async () => {
    const conn = connect();
    const today = new Date().toISOString().slice(0, 10);
    await conn.sobject('Opportunity').create([
      { Name: 'Won', StageName: 'Closed Won', CloseDate: '2026-01-15', Amount: 1200.5 },
      { Name: 'Open', StageName: 'Prospecting', CloseDate: today },
    ]);
    const q = async (soql: string) => (await conn.query(soql)).records.map((r: any) => r.Name);
    expect(await q('SELECT Name FROM Opportunity WHERE CloseDate >= 2026-01-01 AND CloseDate < 2026-02-01')).toEqual(['Won']);
    expect(await q('SELECT Name FROM Opportunity WHERE CloseDate = TODAY')).toEqual(['Open']);
    expect(await q('SELECT Name FROM Opportunity WHERE IsWon = true AND Amount > 1000')).toEqual(['Won']);
    await expect(conn.sobject('Opportunity').create({ Name: 'Bad', StageName: 'Prospecting', CloseDate: 'soon' })).rejects.toMatchObject({ errorCode: 'INVALID_TYPE_ON_FIELD_IN_RECORD' });
  });

  it('pages with nextRecordsUrl and autoFetch, honouring Sforce-Query-Options batchSize', async () => {
    await control('seed', { object: 'Contact', count: 2503 });
    const conn = connect();
    const first = await conn.query('SELECT Id FROM Contact ORDER BY Id');
    expect(first.records).toHaveLength(2000);
    expect(first.done).toBe(false);
    expect(first.nextRecordsUrl).toMatch(/\/services\/data\/v62\.0\/query\/01g[a-zA-Z0-9]{15}-2000$/);
    const second = await conn.queryMore(first.nextRecordsUrl!);
    expect(second.records).toHaveLength(503);
    expect(second.done).toBe(true);
    const all: any[] = [];
    await new Promise<void>((resolve, reject) => {
      conn
        .query('SELECT Id FROM Contact')
        .on('record', (r: any) => all.push(r))
        .on('end', () => resolve())
        .on('error', reject)
        .run({ autoFetch: true, maxFetch: 5000, headers: { 'Sforce-Query-Options': 'batchSize=500' } });
    });
    expect(all).toHaveLength(2503);
    expect(new Set(all.map((r) => r.Id)).size).toBe(2503);
  });

  it('queryAll sees deleted rows with IsDeleted', async () => {
    const conn = connect();
    const c: any = await conn.sobject('Contact').create({ LastName: 'Gone' });
    await conn.sobject('Contact').destroy(c.id);
    expect((await conn.query('SELECT Id FROM Contact')).totalSize).toBe(0);
    const all = await conn.query('SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true').scanAll(true);
    expect(all.records).toEqual([expect.objectContaining({ Id: c.id, IsDeleted: true })]);
  });
});

describe('salesforce sandbox: sObject Collections', () => {
  const people = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ Crmhub_Id__c: `hub-${from + i}`, LastName: `Person ${from + i}` }));

  it('upserts 200 records and refuses 201 with EXCEEDED_ID_LIMIT', async () => {
    const conn = connect();
    const ok: any[] = await conn.sobject('Contact').upsert(people(200), 'Crmhub_Id__c');
    expect(ok).toHaveLength(200);
    expect(ok.every((r) => r.success && r.created === true)).toBe(true);
    const again: any[] = await conn.sobject('Contact').upsert(people(3), 'Crmhub_Id__c');
    expect(again.map((r) => r.created)).toEqual([false, false, false]);
    await expect(conn.sobject('Contact').upsert(people(201, 1000), 'Crmhub_Id__c')).rejects.toMatchObject({ errorCode: 'EXCEEDED_ID_LIMIT' });
    expect((await conn.query('SELECT COUNT() FROM Contact')).totalSize).toBe(200);
  });

  it('reports per-record results with statusCode/message/fields and rolls back with allOrNone', async () => {
    const conn = connect();
    const mixed: any[] = await conn.sobject('Contact').upsert([{ Crmhub_Id__c: 'a', LastName: 'Fine' }, { Crmhub_Id__c: 'b', Email: 'x@example.com' }], 'Crmhub_Id__c');
    expect(mixed[0]).toMatchObject({ success: true, created: true });
    expect(mixed[1]).toEqual({ success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] }] });
    const rolled: any[] = await conn.sobject('Contact').create([{ LastName: 'One' }, { LastName: 'Two', Email: 'bad' }], { allOrNone: true });
    expect(rolled[0].errors[0].statusCode).toBe('ALL_OR_NONE_OPERATION_ROLLED_BACK');
    expect(rolled[1].errors[0].statusCode).toBe('INVALID_EMAIL_ADDRESS');
    expect((await conn.query("SELECT COUNT() FROM Contact WHERE LastName = 'One'")).totalSize).toBe(0);
  });

  it('updates, retrieves and deletes collections', async () => {
    const conn = connect();
    const created: any[] = await conn.sobject('Account').create([{ Name: 'A' }, { Name: 'B' }]);
    const ids = created.map((r) => r.id);
    const updated: any[] = await conn.sobject('Account').update([{ Id: ids[0], Industry: 'Finance' }, { Id: ids[1], Seats__c: 12 }]);
    expect(updated.every((r) => r.success)).toBe(true);
    const rows: any[] = await conn.sobject('Account').retrieve(ids, { fields: ['Name', 'Industry', 'Seats__c'] });
    expect(rows.map((r) => [r.Name, r.Industry, r.Seats__c])).toEqual([['A', 'Finance', null], ['B', null, 12]]);
    const deleted: any[] = await conn.sobject('Account').destroy(ids);
    expect(deleted.every((r) => r.success)).toBe(true);
    const again: any[] = await conn.sobject('Account').destroy(ids);
    expect(again[0].errors[0].statusCode).toBe('ENTITY_IS_DELETED');
  });
});

describe('salesforce sandbox: Bulk API 2.0', () => {
  it('loads with loadAndWaitForResults, reporting successful and failed rows', async () => {
    const conn = connect();
    await conn.sobject('Contact').create({ Crmhub_Id__c: 'hs-512', LastName: 'Old', Email: 'old@example.com', Title: 'Kept' });
    const res = await conn.bulk2.loadAndWaitForResults({
      object: 'Contact',
      operation: 'upsert',
      externalIdFieldName: 'Crmhub_Id__c',
      input: [
        { Crmhub_Id__c: 'hs-512', LastName: 'Lovelace', Email: null },
        { Crmhub_Id__c: 'hs-513', LastName: null },
        { Crmhub_Id__c: 'hs-514', LastName: 'Hopper', Email: 'grace@example.com' },
      ],
      pollInterval: 20,
      pollTimeout: 10_000,
    });
    expect(res.successfulResults.map((r: any) => [r.Crmhub_Id__c, r.sf__Created])).toEqual([
      ['hs-512', 'false'],
      ['hs-514', 'true'],
    ]);
    expect(res.failedResults).toHaveLength(1);
    expect(res.failedResults[0]).toMatchObject({ Crmhub_Id__c: 'hs-513', sf__Error: 'REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --' });
    expect(res.unprocessedRecords).toHaveLength(0);
    const rows = await conn.query("SELECT LastName, Email FROM Contact WHERE Crmhub_Id__c = 'hs-512'");
    expect(rows.records[0]).toMatchObject({ LastName: 'Lovelace', Email: null });
    const kept = await conn.query("SELECT Title FROM Contact WHERE Crmhub_Id__c = 'hs-512'");
    expect(kept.records[0]).toMatchObject({ Title: 'Kept' });
  });

  it('runs a query job through conn.bulk2.query (one page, Sforce-Locator "null")', async () => {
    await control('seed', { object: 'Account', count: 25 });
    const conn = connect();
    conn.bulk2.pollInterval = 20;
    const stream = await conn.bulk2.query('SELECT Id, Name FROM Account ORDER BY Name');
    const records: any[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('record', (r: any) => records.push(r));
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    expect(records).toHaveLength(25);
    expect(records[0].Id).toMatch(/^001/);
  });

  it('pages query job results with Sforce-Locator and Sforce-NumberOfRecords', async () => {
    // jsforce 3.10.16's QueryJobV2.result() pipes every page into one stream with end:true, so a
    // second page fails with "write after end"; the pages are read by hand after jsforce opened
    // and polled the job.
    await control('seed', { object: 'Account', count: 25 });
    await control('config', { bulkQueryPageSize: 10 });
    const conn = connect();
    const job = new QueryJobV2(conn, { bodyParams: { query: 'SELECT Id, Name FROM Account', operation: 'query' }, pollingOptions: conn.bulk2 } as any);
    await job.open();
    await job.poll(20, 10_000);
    const pages: { locator: string | null; count: string | null; lines: number }[] = [];
    let locator = '';
    do {
      const res = await fetch(`${sandbox.baseUrl}/services/data/v62.0/jobs/query/${job.id}/results${locator ? `?locator=${locator}` : ''}`, {
        headers: { Authorization: `Bearer ${cred('accessToken')}`, Accept: 'text/csv' },
      });
      const text = await res.text();
      locator = res.headers.get('sforce-locator') ?? 'null';
      pages.push({ locator, count: res.headers.get('sforce-numberofrecords'), lines: text.trim().split('\n').length });
    } while (locator !== 'null' && pages.length < 10);
    expect(pages.map((p) => p.count)).toEqual(['10', '10', '5']);
    expect(pages.map((p) => p.lines)).toEqual([11, 11, 6]);
    expect(pages[2]?.locator).toBe('null');
  });
});

describe('salesforce sandbox: replication and limits', () => {
  it('answers getUpdated and getDeleted', async () => {
    const conn = connect();
    const a: any = await conn.sobject('Lead').create({ LastName: 'Up', Company: 'Acme' });
    const b: any = await conn.sobject('Lead').create({ LastName: 'Down', Company: 'Acme' });
    await conn.sobject('Lead').destroy(b.id);
    const start = new Date(Date.now() - 3_600_000);
    const end = new Date(Date.now() + 120_000);
    const updated: any = await conn.sobject('Lead').updated(start, end);
    expect(updated.ids).toEqual([a.id]);
    expect(updated.latestDateCovered).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000\+0000$/);
    const deleted: any = await conn.sobject('Lead').deleted(start, end);
    expect(deleted.deletedRecords.map((d: any) => d.id)).toEqual([b.id]);
    await expect(conn.sobject('Lead').updated(new Date(Date.now() - 31 * 86_400_000), end)).rejects.toMatchObject({ errorCode: 'INVALID_REPLICATION_DATE' });
  });

  it('parses Sforce-Limit-Info into conn.limitInfo and serves /limits', async () => {
    await control('config', { dailyQuota: 500 });
    const conn = connect();
    await conn.query('SELECT Id FROM Contact');
    expect(conn.limitInfo.apiUsage).toEqual({ used: 1, limit: 500 });
    const limits: any = await conn.limits();
    expect(limits.DailyApiRequests).toEqual({ Max: 500, Remaining: 498 });
  });

  it('answers 403 REQUEST_LIMIT_EXCEEDED once the daily quota is used', async () => {
    await control('config', { dailyQuota: 2 });
    const conn = connect();
    await conn.query('SELECT Id FROM Contact');
    await conn.query('SELECT Id FROM Contact');
    await expect(conn.query('SELECT Id FROM Contact')).rejects.toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'TotalRequests Limit exceeded.' });
    const stats: any = await (await fetch(`${sandbox.baseUrl}/_sandbox/stats`)).json();
    expect(stats.rateLimited).toBe(1);
  });
});

describe('salesforce sandbox: outbound messages and change events', () => {
  let receiver: Server;
  let receiverUrl = '';
  const received: { contentType: string; body: string; url: string }[] = [];
  let answers: ((body: string) => { status: number; body: string })[] = [];
  const ack = readFileSync(new URL('../../../shared/crm-reference/fixtures/salesforce/outbound-message.ack-response.xml', import.meta.url), 'utf8');

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ contentType: String(req.headers['content-type']), body, url: req.url ?? '' });
        const answer = answers.shift()?.(body) ?? { status: 200, body: ack };
        res.writeHead(answer.status, { 'content-type': 'text/xml' }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address() as AddressInfo;
    receiverUrl = `http://127.0.0.1:${address.port}/webhooks/salesforce?token=t0ken`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
    answers = [];
  });

  const parser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: false, attributeNamePrefix: '@' });

  it('posts SOAP notifications for API writes and retries until a proper Ack', async () => {
    await control('config', { webhookUrl: receiverUrl });
    answers = [() => ({ status: 500, body: 'boom' }), () => ({ status: 200, body: '<ok/>' })];
    const conn = connect();
    const created: any[] = await conn.sobject('Contact').create([{ LastName: 'Black', FirstName: 'Jeraldine' }, { LastName: 'Bunting', Email: 'doug@example.com' }]);
    await control('drain');
    expect(received).toHaveLength(3);
    expect(received.every((r) => r.body === received[0]!.body)).toBe(true);
    expect(received[0]!.contentType).toContain('text/xml');
    expect(received[0]!.url).toBe('/webhooks/salesforce?token=t0ken');
    const doc = parser.parse(received[0]!.body);
    const n = doc.Envelope.Body.notifications;
    expect(received[0]!.body).toContain('<notifications xmlns="http://soap.sforce.com/2005/09/outbound">');
    expect(n.OrganizationId).toBe(cred('orgId'));
    expect(n.ActionId).toMatch(/^04k/);
    expect(n.EnterpriseUrl).toContain('/services/Soap/c/62.0/');
    expect(n.PartnerUrl).toContain('/services/Soap/u/62.0/');
    const notes = Array.isArray(n.Notification) ? n.Notification : [n.Notification];
    expect(notes.map((x: any) => x.sObject.Id)).toEqual(created.map((c) => c.id));
    expect(notes[0].Id).toMatch(/^04l/);
    expect(notes[0].sObject['@type']).toBe('sf:Contact');
    expect(notes[1].sObject.Email).toBe('doug@example.com');
    const deliveries: any = await (await fetch(`${sandbox.baseUrl}/_sandbox/deliveries`)).json();
    expect(deliveries.log.map((l: any) => l.acked)).toEqual([false, false, true]);
  });

  it('notifies for rep edits through the control API and for lead conversion', async () => {
    const conn = connect();
    const lead: any = await conn.sobject('Lead').create({ LastName: 'Turing', Company: 'Bletchley', Email: 'alan@example.com' });
    await control('config', { webhookUrl: receiverUrl });
    const converted = await control('convert-lead', { id: lead.id });
    expect(converted.contactId).toMatch(/^003/);
    expect(converted.accountId).toMatch(/^001/);
    const row: any = await conn.sobject('Lead').retrieve(lead.id);
    expect(row).toMatchObject({ IsConverted: true, ConvertedContactId: converted.contactId, ConvertedAccountId: converted.accountId });
    await expect(conn.sobject('Lead').update({ Id: lead.id, Title: 'x' })).rejects.toMatchObject({ errorCode: 'CANNOT_UPDATE_CONVERTED_LEAD' });
    const contact: any = await conn.sobject('Contact').retrieve(converted.contactId);
    expect(contact).toMatchObject({ LastName: 'Turing', Email: 'alan@example.com', AccountId: converted.accountId });
    await control('drain');
    const types = received.map((r) => parser.parse(r.body).Envelope.Body.notifications.Notification.sObject['@type']).sort();
    expect(types).toEqual(['sf:Account', 'sf:Contact', 'sf:Lead']);
  });

  it('posts CDC-shaped JSON change events with changeOrigin naming the API client', async () => {
    await control('config', { webhookUrl: receiverUrl, changeEvents: true });
    answers = [() => ({ status: 200, body: ack }), () => ({ status: 200, body: ack })];
    const conn = connect({ callOptions: { client: 'crmhub' } });
    const c: any = await conn.sobject('Contact').create({ LastName: 'Knuth' });
    await control('drain');
    await conn.sobject('Contact').update({ Id: c.id, Email: 'don@example.com' });
    await control('edit', { object: 'Contact', id: c.id, fields: { Title: 'Professor' } });
    await control('delete', { object: 'Contact', id: c.id });
    await control('drain');
    const events = received.filter((r) => r.contentType.startsWith('application/json')).flatMap((r) => JSON.parse(r.body));
    const headers = events.map((e: any) => e.data.payload.ChangeEventHeader);
    expect(headers.map((h: any) => h.changeType)).toEqual(['CREATE', 'UPDATE', 'UPDATE', 'DELETE']);
    expect(headers[2].commitUser).not.toBe(headers[1].commitUser);
    expect(headers[0]).toMatchObject({ entityName: 'Contact', recordIds: [c.id], changeOrigin: 'com/salesforce/api/rest/62.0;client=crmhub' });
    expect(headers[1].changedFields).toEqual(['Email', 'LastModifiedDate']);
    expect(headers[2].changeOrigin).toBe('');
    expect(typeof headers[2].commitTimestamp).toBe('number');
    expect(events[0].channel).toBe('/data/ContactChangeEvent');
  });
});

describe('salesforce sandbox: control API', () => {
  it('seeds realistic records, counts them in stats and edits as a rep', async () => {
    const seeded = await control('seed', { object: 'Account', count: 3 });
    expect(seeded.ids).toHaveLength(3);
    await control('seed', { object: 'Contact', count: 5 });
    const stats: any = await (await fetch(`${sandbox.baseUrl}/_sandbox/stats`)).json();
    expect(stats.records).toMatchObject({ Account: 3, Contact: 5, Lead: 0, Opportunity: 0 });
    const conn = connect();
    const before: any = await conn.sobject('Account').retrieve(seeded.ids[0]);
    expect(before.Name).toMatch(/\w+ \w+/);
    const edited = await control('edit', { object: 'Account', id: seeded.ids[0], fields: { Industry: 'Banking' } });
    expect(edited.record.Industry).toBe('Banking');
    const after: any = await conn.sobject('Account').retrieve(seeded.ids[0]);
    expect(after.Industry).toBe('Banking');
    // API writes are attributed to the integration user, UI edits to a rep (how echoes are told apart).
    const mine: any = await conn.sobject('Account').create({ Name: 'Mine' });
    await control('edit', { object: 'Account', id: mine.id, fields: { Website: 'https://mine.example.com' } });
    const mineAfter: any = await conn.sobject('Account').retrieve(mine.id);
    expect(mineAfter.CreatedById).toMatch(/^005/);
    expect(mineAfter.LastModifiedById).toMatch(/^005/);
    expect(mineAfter.LastModifiedById).not.toBe(mineAfter.CreatedById);
    await control('delete', { object: 'Account', id: seeded.ids[1] });
    expect((await conn.query('SELECT COUNT() FROM Account')).totalSize).toBe(3);
    const stats2: any = await (await fetch(`${sandbox.baseUrl}/_sandbox/stats`)).json();
    expect(stats2.calls['GET /services/data/:version/sobjects/:type/:id']).toBe(3);
  });

  it('injects 503 SERVER_UNAVAILABLE faults in Salesforce error shape', async () => {
    await control('config', { faults: { errorRate: 1 } });
    const conn = connect();
    await expect(conn.sobject('Contact').create({ LastName: 'X' })).rejects.toMatchObject({ errorCode: 'SERVER_UNAVAILABLE' });
  });

  it('applies a request window with the concurrent flavour of REQUEST_LIMIT_EXCEEDED', async () => {
    await control('config', { rateLimit: { requests: 1, windowMs: 60_000 } });
    const conn = connect();
    await conn.sobject('Contact').create({ LastName: 'X' });
    await expect(conn.sobject('Contact').create({ LastName: 'Y' })).rejects.toMatchObject({ errorCode: 'REQUEST_LIMIT_EXCEEDED' });
  });
});

describe('salesforce sandbox: persistence', () => {
  it('keeps records across restarts when given a state file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sf-sandbox-'));
    const stateFile = path.join(dir, 'salesforce.json');
    try {
      const first = await startSalesforceSandbox({ port: 0, stateFile });
      const conn1 = new jsforce.Connection({ instanceUrl: first.baseUrl, accessToken: first.credentials.accessToken ?? '', version: '62.0' });
      const created: any = await conn1.sobject('Contact').create({ LastName: 'Kept', Crmhub_Id__c: 'keep-1' });
      await first.close();
      const second = await startSalesforceSandbox({ port: 0, stateFile });
      const conn2 = new jsforce.Connection({ instanceUrl: second.baseUrl, accessToken: second.credentials.accessToken ?? '', version: '62.0' });
      const rows = await conn2.query("SELECT Id, LastName FROM Contact WHERE Crmhub_Id__c = 'keep-1'");
      expect(rows.records.map((r: any) => r.Id)).toEqual([created.id]);
      const next: any = await conn2.sobject('Contact').create({ LastName: 'New' });
      expect(next.id).not.toBe(created.id);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
