/**
 * The state and behaviour of the Salesforce sandbox: the org's records, OAuth tokens, the daily
 * API allocation (`Sforce-Limit-Info`, 403 `REQUEST_LIMIT_EXCEEDED`), query cursors, Bulk API 2.0
 * jobs and the notifiers. Routes live in `rest-routes.ts`, `bulk2-routes.ts`, `oauth-routes.ts`;
 * this class is also the `SandboxBehaviour` behind the control API (design.md §6).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { SandboxBehaviour, SandboxConfig, SandboxCounters } from '../../../src/connector-kit/sandbox/sandbox-server.ts';
import { DailyBudget, RollingWindowLimiter } from '../../../src/connector-kit/sandbox/window-limiter.ts';
import { IdFactory } from './ids.ts';
import { SalesforceNotifier } from './notifier.ts';
import { SalesforceOrg, SfRequestError, type ChangeRecord, type SfRecord, type WriteContext } from './org.ts';
import { KEY_PREFIXES, SOBJECTS, findObject } from './schema.ts';
import { seedFields } from './seed.ts';
import type { IngestJob, QueryJob } from './bulk2-jobs.ts';

/** Salesforce-specific keys of `POST /_sandbox/config` (the frame handles `faults`). */
export const salesforceConfigSchema = z.object({
  /** A rolling request window answered with 403 REQUEST_LIMIT_EXCEEDED when full (sandbox extension). */
  rateLimit: z.object({ requests: z.number().int().min(1), windowMs: z.number().int().min(1) }).partial().nullable().optional(),
  /** Daily API allocation (`DailyApiRequests.Max`). */
  dailyQuota: z.number().int().min(0).optional(),
  webhookUrl: z.string().url().nullable().optional(),
  /** Turn the Email duplicate rule on: `true` for Contact and Lead, or a list of sObjects. */
  duplicateRule: z.union([z.boolean(), z.array(z.string())]).optional(),
  /** Also post CDC-shaped JSON change events to the webhook URL. */
  changeEvents: z.boolean().optional(),
  /** Lifetime of access tokens issued by /services/oauth2/token, seconds. */
  tokenTtlSeconds: z.number().int().min(1).optional(),
  /** Expire every issued access token now (the static sandbox token too when `includeStatic`). */
  expireTokens: z.union([z.boolean(), z.object({ includeStatic: z.boolean() })]).optional(),
  /** How long a Bulk API 2.0 job takes from UploadComplete to JobComplete, ms. */
  bulkProcessingMs: z.number().int().min(0).optional(),
  /** Rows per Bulk API 2.0 query results page when the client sends no maxRecords. */
  bulkQueryPageSize: z.number().int().min(1).optional(),
});

export interface SalesforceSandboxOptions {
  orgId: string;
  userId: string;
  repUserId: string;
  clientId: string;
  clientSecret: string;
  /** A long-lived token that is always valid unless expired through the control API. */
  staticAccessToken: string;
  /** A refresh token a user granted earlier (the web-server flow is not simulated). */
  refreshToken: string;
  apiVersion: string;
  counters: SandboxCounters;
  webhookUrl: string | null;
  /** Delays of webhook retries, ms (tests shorten them). */
  retryDelayMs?: (attempt: number) => number;
  now?: () => number;
}

interface Cursor {
  records: Record<string, unknown>[];
  totalSize: number;
  pageSize: number;
  createdAt: number;
}

const DEFAULT_DAILY_QUOTA = 100_000;
const CURSOR_TTL_MS = 15 * 60_000;
const MAX_CURSORS = 500;

function sameSecret(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export class SalesforceSandbox implements SandboxBehaviour {
  readonly org: SalesforceOrg;
  readonly notifier: SalesforceNotifier;
  baseUrl = '';
  readonly now: () => number;
  private readonly tokens = new Map<string, { expiresAt: number | null }>();
  tokenTtlSeconds = 7200;
  quota: DailyBudget;
  window: RollingWindowLimiter | null = null;
  readonly cursors = new Map<string, Cursor>();
  private readonly locatorIds = new IdFactory(KEY_PREFIXES.queryLocator);
  readonly jobIds = new IdFactory(KEY_PREFIXES.ingestJob);
  readonly ingestJobs = new Map<string, IngestJob>();
  readonly queryJobs = new Map<string, QueryJob>();
  bulkProcessingMs = 50;
  bulkQueryPageSize = 50_000;
  private muted = false;

  constructor(readonly options: SalesforceSandboxOptions) {
    this.now = options.now ?? Date.now;
    this.notifier = new SalesforceNotifier({
      orgId: options.orgId,
      baseUrl: () => this.baseUrl,
      apiVersion: options.apiVersion,
      ...(options.retryDelayMs ? { retryDelayMs: options.retryDelayMs } : {}),
    });
    this.notifier.webhookUrl = options.webhookUrl;
    this.org = new SalesforceOrg({
      orgId: options.orgId,
      userId: options.userId,
      repUserId: options.repUserId,
      now: this.now,
      onCommit: (changes: ChangeRecord[]) => {
        if (!this.muted) this.notifier.publish(changes);
      },
    });
    this.quota = new DailyBudget(DEFAULT_DAILY_QUOTA, this.now());
    this.tokens.set(options.staticAccessToken, { expiresAt: null });
  }

  // ----- tokens ---------------------------------------------------------------------------------

  checkClient(clientId: string | undefined, clientSecret: string | undefined, secretRequired: boolean): boolean {
    if (clientId === undefined || !sameSecret(clientId, this.options.clientId)) return false;
    if (clientSecret === undefined) return !secretRequired;
    return sameSecret(clientSecret, this.options.clientSecret);
  }

  checkRefreshToken(token: string): boolean {
    return sameSecret(token, this.options.refreshToken);
  }

  issueToken(): string {
    const token = `${this.options.orgId.slice(0, 15)}!AQ0AQ${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { expiresAt: this.now() + this.tokenTtlSeconds * 1000 });
    if (this.tokens.size > 10_000) {
      const now = this.now();
      for (const [t, v] of this.tokens) if (v.expiresAt !== null && v.expiresAt <= now) this.tokens.delete(t);
    }
    return token;
  }

  isValidToken(token: string): boolean {
    const entry = this.tokens.get(token);
    if (!entry) return false;
    return entry.expiresAt === null || entry.expiresAt > this.now();
  }

  private expireTokens(includeStatic: boolean): void {
    for (const [token, entry] of this.tokens) {
      if (entry.expiresAt !== null || includeStatic) this.tokens.set(token, { expiresAt: 0 });
    }
  }

  // ----- API allocation -------------------------------------------------------------------------

  /** Takes one API call from the allocation; a SfRequestError(403) when it is used up. */
  takeApiCall(): void {
    const now = this.now();
    if (this.window) {
      const d = this.window.take(now);
      if (!d.ok) {
        this.options.counters.rateLimited++;
        throw new SfRequestError(403, 'REQUEST_LIMIT_EXCEEDED', 'ConcurrentRequests (Concurrent API Requests) Limit exceeded.');
      }
    }
    const d = this.quota.take(now);
    if (!d.ok) {
      this.options.counters.rateLimited++;
      throw new SfRequestError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');
    }
  }

  limitInfoHeader(): string {
    return `api-usage=${this.quota.used}/${this.quota.limit}`;
  }

  // ----- query cursors --------------------------------------------------------------------------

  /** Keeps a result set and answers its first page with `nextRecordsUrl` when more remain. */
  firstPage(version: string, records: Record<string, unknown>[], totalSize: number, pageSize: number): Record<string, unknown> {
    if (records.length <= pageSize) return { totalSize, done: true, records };
    const locator = this.locatorIds.next();
    this.pruneCursors();
    this.cursors.set(locator, { records, totalSize, pageSize, createdAt: this.now() });
    return this.page(version, locator, 0);
  }

  page(version: string, locator: string, offset: number): Record<string, unknown> {
    const cursor = this.cursors.get(locator);
    if (!cursor || !Number.isInteger(offset) || offset < 0 || offset > cursor.records.length) {
      throw new SfRequestError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    }
    const end = offset + cursor.pageSize;
    const records = cursor.records.slice(offset, end);
    if (end >= cursor.records.length) return { totalSize: cursor.totalSize, done: true, records };
    return { totalSize: cursor.totalSize, done: false, nextRecordsUrl: `/services/data/${version}/query/${locator}-${end}`, records };
  }

  private pruneCursors(): void {
    const now = this.now();
    for (const [k, c] of this.cursors) if (now - c.createdAt > CURSOR_TTL_MS) this.cursors.delete(k);
    while (this.cursors.size >= MAX_CURSORS) {
      const oldest = this.cursors.keys().next().value;
      if (oldest === undefined) break;
      this.cursors.delete(oldest);
    }
  }

  // ----- SandboxBehaviour -----------------------------------------------------------------------

  private uiContext(): WriteContext {
    return { source: 'ui' };
  }

  edit(object: string, id: string, fields: Record<string, unknown>): unknown {
    const def = this.org.object(object);
    const result = this.org.update(def.name, id, fields, this.uiContext());
    if (!result.ok) throw new SfRequestError(400, result.errors[0]?.statusCode ?? 'UNKNOWN', result.errors.map((e) => `${e.statusCode}: ${e.message}`).join('; '));
    return this.org.get(def, result.id);
  }

  remove(object: string, id: string): unknown {
    const def = this.org.object(object);
    const result = this.org.remove(def.name, id, this.uiContext());
    if (!result.ok) throw new SfRequestError(404, result.errors[0]?.statusCode ?? 'NOT_FOUND', result.errors.map((e) => `${e.statusCode}: ${e.message}`).join('; '));
    return { id: result.id };
  }

  seed(object: string, count: number, seed?: number): string[] {
    const def = findObject(object);
    if (!def) throw new SfRequestError(400, 'NOT_FOUND', `unknown sObject ${object}; one of ${[...SOBJECTS.values()].map((o) => o.name).join(', ')}`);
    const accounts = def.name === 'Opportunity' || def.name === 'Contact' ? [...this.org.table(this.org.object('Account')).values()].filter((r) => r.IsDeleted !== true) : [];
    const ids: string[] = [];
    const start = seed ?? this.org.table(def).size;
    this.muted = true;
    try {
      this.org.transact((tx) => {
        for (let i = 0; i < count; i++) {
          const account: SfRecord | undefined = accounts.length > 0 ? accounts[(start + i) % accounts.length] : undefined;
          const result = this.org.create(def.name, seedFields(def.name, start + i, account ? String(account.Id) : undefined), this.uiContext(), tx);
          if (result.ok) ids.push(result.id);
        }
      });
    } finally {
      this.muted = false;
    }
    return ids;
  }

  convertLead(id: string): { leadId: string; contactId: string; accountId: string } {
    return this.org.convertLead(id);
  }

  /** Back to a fresh org: records, jobs, cursors, counters and every config key at its start value. */
  reset(): void {
    this.org.clear();
    this.quota = new DailyBudget(DEFAULT_DAILY_QUOTA, this.now());
    this.window = null;
    this.notifier.webhookUrl = this.options.webhookUrl;
    this.notifier.changeEvents = false;
    this.tokenTtlSeconds = 7200;
    this.tokens.set(this.options.staticAccessToken, { expiresAt: null });
    this.bulkProcessingMs = 50;
    this.bulkQueryPageSize = 50_000;
    this.cursors.clear();
    this.ingestJobs.clear();
    this.queryJobs.clear();
    this.notifier.clear();
    this.org.duplicateRule.clear();
  }

  recordCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, t] of this.org.tables) {
      let live = 0;
      for (const r of t.values()) if (r.IsDeleted !== true) live++;
      out[name] = live;
    }
    return out;
  }

  configure(config: SandboxConfig): void {
    const parsed = salesforceConfigSchema.safeParse(config);
    if (!parsed.success) throw new TypeError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const c = parsed.data;
    if (c.dailyQuota !== undefined) this.quota.limit = c.dailyQuota;
    // `rateLimit: {}` (or null) turns the window off; `windowMs` defaults to one second.
    if (c.rateLimit === null || (c.rateLimit && c.rateLimit.requests === undefined)) this.window = null;
    else if (c.rateLimit?.requests !== undefined) this.window = new RollingWindowLimiter(c.rateLimit.requests, c.rateLimit.windowMs ?? 1000);
    if (c.webhookUrl !== undefined) this.notifier.webhookUrl = c.webhookUrl;
    if (c.duplicateRule !== undefined) {
      this.org.duplicateRule.clear();
      const objects = c.duplicateRule === true ? ['Contact', 'Lead'] : c.duplicateRule === false ? [] : c.duplicateRule;
      for (const o of objects) {
        const def = findObject(o);
        if (!def) throw new TypeError(`duplicateRule: unknown sObject ${o}`);
        this.org.duplicateRule.add(def.name);
      }
    }
    if (c.changeEvents !== undefined) this.notifier.changeEvents = c.changeEvents;
    if (c.tokenTtlSeconds !== undefined) this.tokenTtlSeconds = c.tokenTtlSeconds;
    if (c.expireTokens) this.expireTokens(typeof c.expireTokens === 'object' && c.expireTokens.includeStatic);
    if (c.bulkProcessingMs !== undefined) this.bulkProcessingMs = c.bulkProcessingMs;
    if (c.bulkQueryPageSize !== undefined) this.bulkQueryPageSize = c.bulkQueryPageSize;
  }

  snapshot(): unknown {
    return { version: 1, org: this.org.snapshot(), quotaUsed: this.quota.used };
  }

  restore(state: unknown): void {
    const parsed = z
      .object({ version: z.literal(1), org: z.object({ tables: z.record(z.string(), z.array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])))), deletedAt: z.record(z.string(), z.number()), counters: z.record(z.string(), z.number()), lastStamp: z.number() }), quotaUsed: z.number() })
      .safeParse(state);
    if (!parsed.success) return;
    this.org.restore(parsed.data.org);
    this.quota.used = parsed.data.quotaUsed;
  }

  async drainWebhooks(timeoutMs?: number): Promise<void> {
    await this.notifier.drain(timeoutMs);
  }

  close(): void {
    this.notifier.close();
    for (const job of this.ingestJobs.values()) if (job.timer) clearTimeout(job.timer);
    for (const job of this.queryJobs.values()) if (job.timer) clearTimeout(job.timer);
  }
}
