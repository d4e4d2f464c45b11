import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import jsforce from 'jsforce';
import { startSalesforceSandbox } from '../../connectors/salesforce/sandbox/index.ts';
import type { RunningSandbox } from '../../src/connector-kit/connector-module.ts';

let sandbox: RunningSandbox;

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
    instanceUrl: sandbox.credentials.instanceUrl,
    accessToken: sandbox.credentials.accessToken,
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
      loginUrl: sandbox.credentials.loginUrl,
      version: '62.0',
      oauth2: { clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, loginUrl: sandbox.credentials.loginUrl },
    });
    const userInfo = await conn.authorize({ grant_type: 'client_credentials' });
    expect(conn.instanceUrl).toBe(sandbox.baseUrl);
    expect(userInfo.organizationId).toBe(sandbox.credentials.orgId);
    expect(userInfo.id).toMatch(/^005/);
    expect((await conn.query('SELECT COUNT() FROM Contact')).totalSize).toBe(0);
  });

  it('refuses a wrong client secret with invalid_client', async () => {
    const conn = new jsforce.Connection({
      version: '62.0',
      oauth2: { clientId: sandbox.credentials.clientId, clientSecret: 'nope', loginUrl: sandbox.credentials.loginUrl },
    });
    await expect(conn.authorize({ grant_type: 'client_credentials' })).rejects.toMatchObject({ name: 'invalid_client' });
  });

  it('refreshes an expired token on 401 INVALID_SESSION_ID and replays the call', async () => {
    await control('config', { tokenTtlSeconds: 1 });
    const oauth = new jsforce.OAuth2({ clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, loginUrl: sandbox.credentials.loginUrl });
    const first: any = await oauth.refreshToken(sandbox.credentials.refreshToken!);
    const conn = new jsforce.Connection({
      version: '62.0',
      oauth2: { clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, loginUrl: sandbox.credentials.loginUrl },
      instanceUrl: first.instance_url,
      accessToken: first.access_token,
      refreshToken: sandbox.credentials.refreshToken,
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
    const oauth = new jsforce.OAuth2({ clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, loginUrl: sandbox.credentials.loginUrl });
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
