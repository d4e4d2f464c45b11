/**
 * Loads crmhub's settings from the environment and an optional `crmhub.config.yaml`
 * (design.md §6: the environment wins). Every value is validated with zod; a bad value ends in one
 * `CrmhubError` of kind `config` that names each variable to fix and never echoes a secret.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CrmhubError } from '../connector-kit/errors.ts';
import { CONFIG_VARIABLES, type ConfigVariable } from './config-variables.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface HubspotSettings {
  accessToken: string;
  clientSecret: string | null;
  baseUrl: string;
}

export interface SalesforceSettings {
  instanceUrl: string | null;
  accessToken: string | null;
  clientId: string | null;
  clientSecret: string | null;
  loginUrl: string;
  apiVersion: string;
  webhookToken: string | null;
  orgId: string | null;
}

export interface PipedriveSettings {
  apiToken: string;
  baseUrl: string;
  webhookUser: string | null;
  webhookPassword: string | null;
}

/** Validated settings. A connector section is null when its credentials are not set (it is off). */
export interface CrmhubConfig {
  /** `sqlite:PATH` or `postgres://…`. Default `sqlite:./.crmhub/crmhub.db`. */
  databaseUrl: string;
  redisUrl: string | null;
  /** Default `./mappings`. */
  mappingsDir: string;
  /** Default 8080; 0 picks a free port. */
  port: number;
  /** Default `127.0.0.1`. */
  host: string;
  /** Write keys for the event API; empty = the event API refuses every request (401). */
  writeKeys: string[];
  /** Bearer token for admin routes and profile reads; null = those routes refuse every request. */
  adminToken: string | null;
  /** Default `info`. */
  logLevel: LogLevel;
  ingest: {
    /** Group commit wait, ms (0 = only requests that arrive in the same event-loop turn share). Default 0. */
    maxWaitMs: number;
    /** Most events per group-commit transaction. Default 2000. */
    maxEvents: number;
    /** SQLite file stores: run ingest transactions in a worker thread (`CRMHUB_INGEST_WORKER`, `on`/`off`). Default true. */
    worker: boolean;
  };
  sync: {
    /** The lost-update guard before updates (`pull`, `ids`, `off`; see engine-context.ts). Default `pull`. */
    readBeforeWrite: 'pull' | 'ids' | 'off';
    /** `pull` guard freshness, ms (0..3 600 000). Default 60 000. */
    readBeforeWriteFreshnessMs: number;
  };
  outbox: {
    /**
     * How long a worker holds claimed outbox rows (and webhook receipts) before another process may
     * take them over, ms (1 000..3 600 000). Default 60 000. Keep it above the slowest CRM write
     * (a Salesforce Bulk API job can take minutes), or a second worker sends the same rows again.
     */
    leaseMs: number;
  };
  hubspot: HubspotSettings | null;
  salesforce: SalesforceSettings | null;
  pipedrive: PipedriveSettings | null;
  /** Values of every secret setting that is set: the logger redacts them wherever they appear. */
  secrets: string[];
  /** Where each set variable came from. */
  sources: Record<string, 'env' | 'file' | 'default'>;
}

const optionalText = z.string().trim().min(1, 'must not be empty').optional();
const httpUrl = z
  .string()
  .trim()
  .refine((s) => /^https?:\/\/[^\s/]+/i.test(s) && URL.canParse(s), 'must be an http(s) URL');
const positiveInt = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number ${min}..${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number ${min}..${max}`);

/** zod schema of the flat variable → string record (after env/file/default are combined). */
const flatSchema = z.object({
  CRMHUB_DATABASE_URL: z
    .string()
    .trim()
    .refine((s) => /^sqlite:.+/.test(s) || /^postgres(ql)?:\/\/.+/.test(s), 'must be `sqlite:PATH` or `postgres://…`'),
  CRMHUB_REDIS_URL: z
    .string()
    .trim()
    .refine((s) => /^rediss?:\/\/.+/.test(s), 'must be a `redis://` or `rediss://` URL')
    .optional(),
  CRMHUB_MAPPINGS_DIR: z.string().trim().min(1, 'must not be empty'),
  CRMHUB_PORT: positiveInt(0, 65_535),
  CRMHUB_HOST: z.string().trim().min(1, 'must not be empty'),
  CRMHUB_WRITE_KEYS: z
    .string()
    .optional()
    .transform((s) => (s ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0)),
  CRMHUB_ADMIN_TOKEN: optionalText,
  HUBSPOT_ACCESS_TOKEN: optionalText,
  HUBSPOT_CLIENT_SECRET: optionalText,
  HUBSPOT_BASE_URL: httpUrl,
  SALESFORCE_INSTANCE_URL: httpUrl.optional(),
  SALESFORCE_ACCESS_TOKEN: optionalText,
  SALESFORCE_CLIENT_ID: optionalText,
  SALESFORCE_CLIENT_SECRET: optionalText,
  SALESFORCE_LOGIN_URL: httpUrl,
  SALESFORCE_API_VERSION: z.string().trim().regex(/^\d{2,3}\.0$/, 'must look like `62.0`'),
  SALESFORCE_WEBHOOK_TOKEN: optionalText,
  SALESFORCE_ORG_ID: z.string().trim().regex(/^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$/, 'must be a 15- or 18-character org id starting 00D').optional(),
  PIPEDRIVE_API_TOKEN: optionalText,
  PIPEDRIVE_BASE_URL: httpUrl,
  PIPEDRIVE_WEBHOOK_USER: optionalText,
  PIPEDRIVE_WEBHOOK_PASSWORD: optionalText,
  CRMHUB_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
  CRMHUB_INGEST_MAX_WAIT_MS: positiveInt(0, 1_000),
  CRMHUB_INGEST_MAX_EVENTS: positiveInt(1, 100_000),
  CRMHUB_INGEST_WORKER: z.enum(['on', 'off'], { error: 'must be on or off' }),
  CRMHUB_OUTBOX_LEASE_MS: positiveInt(1_000, 3_600_000),
  CRMHUB_READ_BEFORE_WRITE: z.enum(['pull', 'ids', 'off'], { error: 'must be one of pull, ids, off' }),
  CRMHUB_READ_BEFORE_WRITE_FRESHNESS_MS: positiveInt(0, 3_600_000),
});

type Flat = z.infer<typeof flatSchema>;

/** Reads settings from `env` and the YAML file; throws `CrmhubError('config', …)` listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env, file?: string | null): CrmhubConfig {
  const problems: string[] = [];
  const fromFile = readConfigFile(env, file, problems);
  const raw: Record<string, string> = {};
  const sources: CrmhubConfig['sources'] = {};
  for (const variable of CONFIG_VARIABLES) {
    const envValue = env[variable.name];
    if (envValue !== undefined && envValue !== '') {
      raw[variable.name] = envValue;
      sources[variable.name] = 'env';
    } else if (fromFile[variable.name] !== undefined) {
      raw[variable.name] = fromFile[variable.name] as string;
      sources[variable.name] = 'file';
    } else if (variable.default !== undefined) {
      raw[variable.name] = variable.default;
      sources[variable.name] = 'default';
    }
  }
  checkPairs(raw, problems);
  const parsed = flatSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '?');
      problems.push(`${name}: ${issue.message}${describeValue(name, raw[name])} (from ${sources[name] ?? 'nowhere'})`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw configError(problems);
  return structure(parsed.data, sources);
}

/** Settings that only make sense together; checked on presence, so they are reported with the rest. */
function checkPairs(raw: Record<string, string>, problems: string[]): void {
  const has = (name: string): boolean => (raw[name] ?? '').trim() !== '';
  if (has('SALESFORCE_ACCESS_TOKEN') && !has('SALESFORCE_INSTANCE_URL')) {
    problems.push('SALESFORCE_INSTANCE_URL: must be set when SALESFORCE_ACCESS_TOKEN is set');
  }
  for (const [a, b] of [
    ['SALESFORCE_CLIENT_ID', 'SALESFORCE_CLIENT_SECRET'],
    ['PIPEDRIVE_WEBHOOK_USER', 'PIPEDRIVE_WEBHOOK_PASSWORD'],
  ] as const) {
    if (has(a) !== has(b)) problems.push(`${has(a) ? b : a}: ${a} and ${b} go together`);
  }
}

function configError(problems: string[]): CrmhubError {
  return new CrmhubError('config', `invalid crmhub settings:\n  - ${problems.join('\n  - ')}`, {
    code: 'CONFIG_INVALID',
  });
}

/** Shows a bad value to help fixing it, unless the variable is a secret. */
function describeValue(name: string, value: string | undefined): string {
  if (value === undefined) return '';
  const variable = CONFIG_VARIABLES.find((v) => v.name === name);
  if (variable?.secret) return ' (value hidden: secret)';
  return ` (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`;
}

function readConfigFile(env: Record<string, string | undefined>, file: string | null | undefined, problems: string[]): Record<string, string> {
  if (file === null) return {};
  const fromEnv = env.CRMHUB_CONFIG;
  const explicit = file ?? (fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv);
  const filePath = explicit ?? path.resolve('crmhub.config.yaml');
  if (!existsSync(filePath)) {
    if (explicit !== undefined) problems.push(`CRMHUB_CONFIG: file ${filePath} does not exist`);
    return {};
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(filePath, 'utf8'));
  } catch (error) {
    problems.push(`${filePath}: not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push(`${filePath}: must be a mapping of settings`);
    return {};
  }
  return flattenFile(doc as Record<string, unknown>, filePath, problems);
}

/**
 * Accepts both spellings in the file: variable names at the top level (`CRMHUB_PORT: 8080`) and the
 * structured form (`port: 8080`, `hubspot: { accessToken: … }`). Unknown keys are errors: a typo
 * must not silently fall back to a default.
 */
function flattenFile(doc: Record<string, unknown>, filePath: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const known = new Set<string>();
  for (const variable of CONFIG_VARIABLES) {
    known.add(variable.name);
    known.add(variable.path[0]);
    const value = doc[variable.name] ?? lookup(doc, variable);
    if (value === undefined || value === null) continue;
    const text = toSettingText(value);
    if (text === null) problems.push(`${variable.name}: in ${filePath} must be a string, number or list of strings`);
    else out[variable.name] = text;
  }
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) problems.push(`${filePath}: unknown setting \`${key}\``);
  }
  for (const variable of CONFIG_VARIABLES) {
    const [section, key] = variable.path;
    const nested = doc[section];
    if (key === undefined || typeof nested !== 'object' || nested === null) continue;
    for (const nestedKey of Object.keys(nested)) {
      if (!CONFIG_VARIABLES.some((v) => v.path[0] === section && v.path[1] === nestedKey)) {
        problems.push(`${filePath}: unknown setting \`${section}.${nestedKey}\``);
      }
    }
  }
  return out;
}

function lookup(doc: Record<string, unknown>, variable: ConfigVariable): unknown {
  const [section, key] = variable.path;
  const first = doc[section];
  if (key === undefined) return first;
  if (typeof first !== 'object' || first === null || Array.isArray(first)) return undefined;
  return (first as Record<string, unknown>)[key];
}

function toSettingText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
  return null;
}

function structure(flat: Flat, sources: CrmhubConfig['sources']): CrmhubConfig {
  const hubspot: HubspotSettings | null =
    flat.HUBSPOT_ACCESS_TOKEN === undefined
      ? null
      : { accessToken: flat.HUBSPOT_ACCESS_TOKEN, clientSecret: flat.HUBSPOT_CLIENT_SECRET ?? null, baseUrl: flat.HUBSPOT_BASE_URL };

  const sfToken = flat.SALESFORCE_ACCESS_TOKEN !== undefined;
  const sfClient = flat.SALESFORCE_CLIENT_ID !== undefined || flat.SALESFORCE_CLIENT_SECRET !== undefined;
  const salesforce: SalesforceSettings | null =
    sfToken || sfClient
      ? {
          instanceUrl: flat.SALESFORCE_INSTANCE_URL ?? null,
          accessToken: flat.SALESFORCE_ACCESS_TOKEN ?? null,
          clientId: flat.SALESFORCE_CLIENT_ID ?? null,
          clientSecret: flat.SALESFORCE_CLIENT_SECRET ?? null,
          loginUrl: flat.SALESFORCE_LOGIN_URL,
          apiVersion: flat.SALESFORCE_API_VERSION,
          webhookToken: flat.SALESFORCE_WEBHOOK_TOKEN ?? null,
          orgId: flat.SALESFORCE_ORG_ID ?? null,
        }
      : null;

  const pipedrive: PipedriveSettings | null =
    flat.PIPEDRIVE_API_TOKEN === undefined
      ? null
      : {
          apiToken: flat.PIPEDRIVE_API_TOKEN,
          baseUrl: flat.PIPEDRIVE_BASE_URL,
          webhookUser: flat.PIPEDRIVE_WEBHOOK_USER ?? null,
          webhookPassword: flat.PIPEDRIVE_WEBHOOK_PASSWORD ?? null,
        };

  const secrets: string[] = [];
  for (const variable of CONFIG_VARIABLES) {
    if (!variable.secret) continue;
    const value = flat[variable.name as keyof Flat];
    if (typeof value === 'string') secrets.push(value);
    else if (Array.isArray(value)) secrets.push(...value);
  }

  // Passwords inside connection URLs are secrets too (postgres://user:PASSWORD@host/db).
  for (const url of [flat.CRMHUB_DATABASE_URL, flat.CRMHUB_REDIS_URL]) {
    const password = url === undefined || !URL.canParse(url) ? '' : new URL(url).password;
    if (password !== '') secrets.push(password, decodeURIComponent(password));
  }

  return {
    databaseUrl: flat.CRMHUB_DATABASE_URL,
    redisUrl: flat.CRMHUB_REDIS_URL ?? null,
    mappingsDir: flat.CRMHUB_MAPPINGS_DIR,
    port: flat.CRMHUB_PORT,
    host: flat.CRMHUB_HOST,
    writeKeys: flat.CRMHUB_WRITE_KEYS,
    adminToken: flat.CRMHUB_ADMIN_TOKEN ?? null,
    logLevel: flat.CRMHUB_LOG_LEVEL,
    ingest: { maxWaitMs: flat.CRMHUB_INGEST_MAX_WAIT_MS, maxEvents: flat.CRMHUB_INGEST_MAX_EVENTS, worker: flat.CRMHUB_INGEST_WORKER === 'on' },
    outbox: { leaseMs: flat.CRMHUB_OUTBOX_LEASE_MS },
    sync: { readBeforeWrite: flat.CRMHUB_READ_BEFORE_WRITE, readBeforeWriteFreshnessMs: flat.CRMHUB_READ_BEFORE_WRITE_FRESHNESS_MS },
    hubspot,
    salesforce,
    pipedrive,
    secrets: secrets.filter((s) => s.length > 0),
    sources,
  };
}
