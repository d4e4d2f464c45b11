import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '../../src/config/config-variables.ts';
import { loadConfig } from '../../src/config/load-config.ts';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toMatchObject({ kind: 'config', code: 'CONFIG_INVALID' });
    return (error as Error).message;
  }
  throw new TypeError('expected a config error');
}

function yamlFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'crmhub-config-'));
  const file = path.join(dir, 'crmhub.config.yaml');
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('applies the defaults of design.md §6', () => {
    const c = loadConfig({}, null);
    expect(c).toMatchObject({
      databaseUrl: 'sqlite:./.crmhub/crmhub.db',
      redisUrl: null,
      mappingsDir: './mappings',
      port: 8080,
      host: '127.0.0.1',
      writeKeys: [],
      adminToken: null,
      hubspot: null,
      salesforce: null,
      pipedrive: null,
    });
  });

  it('knows every environment variable of design.md §6', () => {
    const names = CONFIG_VARIABLES.map((v) => v.name);
    for (const name of [
      'CRMHUB_DATABASE_URL', 'CRMHUB_REDIS_URL', 'CRMHUB_MAPPINGS_DIR', 'CRMHUB_PORT', 'CRMHUB_HOST', 'CRMHUB_WRITE_KEYS', 'CRMHUB_ADMIN_TOKEN',
      'HUBSPOT_ACCESS_TOKEN', 'HUBSPOT_CLIENT_SECRET', 'HUBSPOT_BASE_URL', 'SALESFORCE_INSTANCE_URL', 'SALESFORCE_ACCESS_TOKEN', 'SALESFORCE_CLIENT_ID',
      'SALESFORCE_CLIENT_SECRET', 'SALESFORCE_LOGIN_URL', 'SALESFORCE_API_VERSION', 'SALESFORCE_WEBHOOK_TOKEN', 'SALESFORCE_ORG_ID',
      'PIPEDRIVE_API_TOKEN', 'PIPEDRIVE_BASE_URL', 'PIPEDRIVE_WEBHOOK_USER', 'PIPEDRIVE_WEBHOOK_PASSWORD',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('parses write keys, turns connectors on when their credentials are set, and lists secrets', () => {
    const c = loadConfig(
      {
        CRMHUB_WRITE_KEYS: ' wk_one , wk_two,, ',
        CRMHUB_ADMIN_TOKEN: 'admin-secret-token',
        HUBSPOT_ACCESS_TOKEN: 'pat-na1-secret',
        PIPEDRIVE_API_TOKEN: 'pd-token-secret',
        CRMHUB_DATABASE_URL: 'postgres://crm:pg-pass-word@127.0.0.1:5432/db',
      },
      null,
    );
    expect(c.writeKeys).toEqual(['wk_one', 'wk_two']);
    expect(c.hubspot).toEqual({ accessToken: 'pat-na1-secret', clientSecret: null, baseUrl: 'https://api.hubapi.com' });
    expect(c.pipedrive?.baseUrl).toBe('https://api.pipedrive.com');
    expect(c.salesforce).toBeNull();
    expect(c.secrets).toEqual(expect.arrayContaining(['wk_one', 'wk_two', 'admin-secret-token', 'pat-na1-secret', 'pd-token-secret', 'pg-pass-word']));
  });

  it('names each variable to fix, and never echoes a secret value', () => {
    const message = configError(() =>
      loadConfig({ CRMHUB_PORT: 'eighty', CRMHUB_DATABASE_URL: 'mysql://x', HUBSPOT_BASE_URL: 'not a url', CRMHUB_LOG_LEVEL: 'loud' }, null),
    );
    expect(message).toMatch(/CRMHUB_PORT: must be a whole number 0\.\.65535 \(got "eighty"\)/);
    expect(message).toMatch(/CRMHUB_DATABASE_URL: must be `sqlite:PATH` or `postgres:\/\/…`/);
    expect(message).toMatch(/HUBSPOT_BASE_URL: must be an http\(s\) URL/);
    expect(message).toMatch(/CRMHUB_LOG_LEVEL/);
    const secret = configError(() => loadConfig({ SALESFORCE_CLIENT_SECRET: 'sf-very-secret', CRMHUB_ADMIN_TOKEN: '  ' }, null));
    expect(secret).toMatch(/SALESFORCE_CLIENT_ID: SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET go together/);
    expect(secret).not.toContain('sf-very-secret');
  });

  it('reads crmhub.config.yaml in both spellings; the environment wins', () => {
    const file = yamlFile(['CRMHUB_PORT: 9090', 'host: 0.0.0.0', 'writeKeys: [wk_a, wk_b]', 'hubspot:', '  accessToken: from-file-token', ''].join('\n'));
    const c = loadConfig({ CRMHUB_HOST: '127.0.0.2' }, file);
    expect(c.port).toBe(9090);
    expect(c.host).toBe('127.0.0.2');
    expect(c.writeKeys).toEqual(['wk_a', 'wk_b']);
    expect(c.hubspot?.accessToken).toBe('from-file-token');
    expect(c.sources).toMatchObject({ CRMHUB_PORT: 'file', CRMHUB_HOST: 'env', CRMHUB_MAPPINGS_DIR: 'default' });
  });

  it('refuses unknown keys in the file (a typo must not fall back to a default)', () => {
    const file = yamlFile('prot: 9090\nhubspot:\n  acessToken: x\n');
    const message = configError(() => loadConfig({}, file));
    expect(message).toMatch(/unknown setting `prot`/);
    expect(message).toMatch(/unknown setting `hubspot.acessToken`/);
  });

  it('CRMHUB_OUTBOX_LEASE_MS: default 60 000, from the environment or the file, validated', () => {
    expect(loadConfig({}, null).outbox).toEqual({ leaseMs: 60_000 });
    expect(loadConfig({ CRMHUB_OUTBOX_LEASE_MS: '300000' }, null).outbox.leaseMs).toBe(300_000);
    const file = yamlFile('outbox:\n  leaseMs: 120000\n');
    expect(loadConfig({}, file).outbox.leaseMs).toBe(120_000);
    expect(loadConfig({ CRMHUB_OUTBOX_LEASE_MS: '90000' }, file).outbox.leaseMs).toBe(90_000);
    expect(configError(() => loadConfig({ CRMHUB_OUTBOX_LEASE_MS: 'a minute' }, null))).toMatch(/CRMHUB_OUTBOX_LEASE_MS: must be a whole number 1000\.\.3600000 \(got "a minute"\)/);
    expect(configError(() => loadConfig({ CRMHUB_OUTBOX_LEASE_MS: '500' }, null))).toMatch(/CRMHUB_OUTBOX_LEASE_MS: must be a whole number 1000\.\.3600000/);
  });

  it('reports a missing explicit file', () => {
    expect(configError(() => loadConfig({}, '/nonexistent/crmhub.config.yaml'))).toMatch(/does not exist/);
  });
});
