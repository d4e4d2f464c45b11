/**
 * The only place that knows Salesforce's URLs and builds the jsforce `Connection`. Every request goes
 * through `request()`, which turns jsforce's own retries off (the engine owns retries, design.md §7),
 * tracks the daily allocation from `Sforce-Limit-Info` (jsforce parses it into `conn.limitInfo`),
 * refuses to dip into the reserve left for the org's other integrations, and classifies failures.
 */
import jsforce from 'jsforce';
import { z } from 'zod';
import type { QuotaState } from '../../src/connector-kit/connector.ts';
import type { ConnectorLogger } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError, type ErrorContext } from '../../src/connector-kit/errors.ts';
import { DEFAULT_QUOTA_PAUSE_MS, classifyRequestError, quotaReserveError } from './errors.ts';

/** How the connection authenticates. */
export type SalesforceAuth =
  | { kind: 'access_token'; accessToken: string }
  | { kind: 'client_credentials'; clientId: string; clientSecret: string; loginUrl: string }
  | {
      kind: 'refresh_token';
      clientId: string;
      clientSecret?: string;
      loginUrl: string;
      refreshToken: string;
      accessToken?: string;
    };

export interface SalesforceClientOptions {
  /** `https://<my-domain>.my.salesforce.com`; taken from the token response when OAuth is used. */
  instanceUrl?: string;
  auth: SalesforceAuth;
  /** API version without the `v`, e.g. `62.0` (jsforce defaults to 50.0, so always set it). */
  apiVersion: string;
  /** Client name sent as `Sforce-Call-Options: client=<name>`; CDC reports it in `changeOrigin`. */
  clientName: string;
  /**
   * Daily API calls left untouched for the org's other integrations. A number ≥ 1 is a call count;
   * below 1 a share of the daily limit. Default 0.1 (10 %).
   */
  quotaReserve?: number;
  /** Injectable clock (ms). */
  now?: () => number;
  logger?: ConnectorLogger;
}

export interface ApiRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path below `/services/data/vNN.N`, starting with `/`; or an absolute `/services/…` path. */
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Return the raw body text (CSV results) instead of parsed JSON. */
  raw?: boolean;
}

const queryResultSchema = z.object({
  totalSize: z.number(),
  done: z.boolean(),
  nextRecordsUrl: z.string().optional(),
  records: z.array(z.record(z.string(), z.json())),
});
export type QueryResult = z.infer<typeof queryResultSchema>;

const saveResultSchema = z.object({
  id: z.string().nullish(),
  success: z.boolean(),
  created: z.boolean().optional(),
  errors: z
    .array(
      z.object({
        statusCode: z.string().optional(),
        errorCode: z.string().optional(),
        message: z.string(),
        fields: z.array(z.string()).optional(),
      }),
    )
    .default([]),
});
export type SaveResult = z.infer<typeof saveResultSchema>;
const saveResultsSchema = z.array(saveResultSchema);

const picklistSchema = z.object({ value: z.string(), label: z.string().nullish(), active: z.boolean().optional() });
const describeFieldSchema = z.object({
  name: z.string(),
  label: z.string(),
  type: z.string(),
  custom: z.boolean().default(false),
  externalId: z.boolean().default(false),
  unique: z.boolean().default(false),
  nillable: z.boolean().default(true),
  createable: z.boolean().default(false),
  updateable: z.boolean().default(false),
  defaultedOnCreate: z.boolean().default(false),
  calculated: z.boolean().default(false),
  length: z.number().optional(),
  referenceTo: z.array(z.string()).default([]),
  picklistValues: z.array(picklistSchema).default([]),
});
export type DescribeField = z.infer<typeof describeFieldSchema>;
const describeSchema = z.object({ name: z.string(), fields: z.array(describeFieldSchema) });
export type DescribeResult = z.infer<typeof describeSchema>;

const deletedSchema = z.object({
  deletedRecords: z.array(z.object({ id: z.string(), deletedDate: z.string() })),
  earliestDateAvailable: z.string().optional(),
  latestDateCovered: z.string(),
});
export type DeletedResult = z.infer<typeof deletedSchema>;

const ingestJobSchema = z.object({
  id: z.string(),
  state: z.string(),
  object: z.string().optional(),
  operation: z.string().optional(),
  numberRecordsProcessed: z.number().optional(),
  numberRecordsFailed: z.number().optional(),
  errorMessage: z.string().nullish(),
});
export type IngestJob = z.infer<typeof ingestJobSchema>;

export type BulkOperation = 'insert' | 'update' | 'upsert' | 'delete';

const limitsSchema = z.object({ DailyApiRequests: z.object({ Max: z.number(), Remaining: z.number() }) });

const tokenSchema = z.object({ access_token: z.string(), instance_url: z.string(), id: z.string().optional() });

/** Thin typed wrapper over the REST, Collections and Bulk API 2.0 endpoints the connector uses. */
export class SalesforceClient {
  readonly conn: jsforce.Connection;
  private readonly options: SalesforceClientOptions;
  private readonly now: () => number;
  private authorized: boolean;
  private authorizing: Promise<void> | undefined;
  private usage: { used: number; limit: number } | undefined;
  private pausedUntil = 0;
  /** The usage figures predate a pause; let one call through to refresh them. */
  private usageStale = false;
  /** Refreshes since the last successful response: stops jsforce replaying a dead session forever. */
  private refreshesWithoutSuccess = 0;

  constructor(options: SalesforceClientOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    const { auth } = options;
    const oauth2 =
      auth.kind === 'access_token'
        ? undefined
        : {
            clientId: auth.clientId,
            loginUrl: auth.loginUrl,
            ...(auth.kind === 'client_credentials' || auth.clientSecret !== undefined
              ? { clientSecret: auth.kind === 'client_credentials' ? auth.clientSecret : (auth.clientSecret ?? '') }
              : {}),
          };
    this.conn = new jsforce.Connection({
      ...(options.instanceUrl === undefined ? {} : { instanceUrl: options.instanceUrl }),
      ...(auth.kind === 'access_token' ? { accessToken: auth.accessToken } : {}),
      ...(auth.kind === 'refresh_token' ? { refreshToken: auth.refreshToken } : {}),
      ...(auth.kind === 'refresh_token' && auth.accessToken !== undefined ? { accessToken: auth.accessToken } : {}),
      version: options.apiVersion,
      ...(auth.kind === 'access_token' ? {} : { loginUrl: auth.loginUrl }),
      ...(oauth2 === undefined ? {} : { oauth2 }),
      ...(auth.kind === 'access_token' ? {} : { refreshFn: (conn, callback) => void this.refreshSession(conn, callback) }),
      callOptions: { client: options.clientName },
    });
    this.authorized = auth.kind === 'access_token' || (auth.kind === 'refresh_token' && auth.accessToken !== undefined);
  }

  /** Gets a new access token (client credentials or refresh token) for jsforce's refresh delegate. */
  private async refreshSession(
    conn: jsforce.Connection,
    callback: (err: Error | null | undefined, accessToken?: string, res?: never) => void,
  ): Promise<void> {
    this.refreshesWithoutSuccess += 1;
    if (this.refreshesWithoutSuccess > 2) {
      callback(new CrmhubError('auth', 'Salesforce keeps rejecting fresh sessions', { code: 'SESSION_REFRESH_LOOP' }));
      return;
    }
    try {
      const token = await this.requestToken(conn);
      callback(undefined, token);
    } catch (error) {
      callback(error instanceof Error ? error : new TypeError(String(error)));
    }
  }

  private async requestToken(conn: jsforce.Connection): Promise<string> {
    const { auth } = this.options;
    if (auth.kind === 'access_token') {
      throw new CrmhubError('auth', 'Salesforce access token rejected and no way to refresh it', { code: 'INVALID_SESSION_ID' });
    }
    const raw: unknown =
      auth.kind === 'refresh_token'
        ? await conn.oauth2.refreshToken(auth.refreshToken)
        : await conn.oauth2.requestToken({ grant_type: 'client_credentials' });
    const token = tokenSchema.parse(raw);
    // jsforce's refresh path (oauthRefreshFn) also moves the instance URL to the token's.
    conn.instanceUrl = token.instance_url;
    conn.accessToken = token.access_token;
    return token.access_token;
  }

  private ensureAuthorized(): Promise<void> {
    if (this.authorized) return Promise.resolve();
    // Concurrent first calls share one token request.
    this.authorizing ??= this.requestToken(this.conn).then(
      () => {
        this.authorized = true;
        this.authorizing = undefined;
      },
      (error: unknown) => {
        this.authorizing = undefined;
        throw classifyRequestError(error, { operation: 'oauth_token' });
      },
    );
    return this.authorizing;
  }

  /** The reserve in calls for a daily limit. */
  private reserveFor(limit: number): number {
    const reserve = this.options.quotaReserve ?? 0.1;
    return reserve >= 1 ? Math.floor(reserve) : Math.ceil(limit * reserve);
  }

  private checkQuota(context: ErrorContext): void {
    const now = this.now();
    if (now < this.pausedUntil) {
      throw new CrmhubError('rate_limited', 'Salesforce API allocation exhausted; paused until it returns', {
        code: 'REQUEST_LIMIT_EXCEEDED',
        context: { connector: 'salesforce', ...context },
        retryAfterMs: this.pausedUntil - now,
      });
    }
    if (this.usage !== undefined && !this.usageStale) {
      const reserve = this.reserveFor(this.usage.limit);
      if (this.usage.used >= this.usage.limit - reserve) {
        // The allocation is a rolling 24 h window: after the pause one call goes through to re-read
        // the usage (it is stale until a response brings a new Sforce-Limit-Info).
        this.pausedUntil = now + DEFAULT_QUOTA_PAUSE_MS;
        this.usageStale = true;
        throw quotaReserveError(this.usage.used, this.usage.limit, reserve, context);
      }
    }
  }

  private url(path: string): string {
    return path.startsWith('/services/') ? path : `/services/data/v${this.options.apiVersion}${path}`;
  }

  /** Sends one request with jsforce retries off; returns the parsed JSON (or raw text). */
  async request(req: ApiRequest, context: ErrorContext = {}): Promise<unknown> {
    this.checkQuota(context);
    await this.ensureAuthorized();
    const headers = { ...(req.body !== undefined && req.headers?.['Content-Type'] === undefined ? { 'Content-Type': 'application/json' } : {}), ...req.headers };
    try {
      const result: unknown = await this.conn.request(
        { method: req.method, url: this.url(req.path), ...(req.body === undefined ? {} : { body: req.body }), headers },
        {
          // The engine owns retries (design.md §7); jsforce would otherwise retry GETs 5 times.
          retry: { maxRetries: 0 },
          ...(req.raw === true ? { responseType: 'text/plain' } : {}),
        },
      );
      this.refreshesWithoutSuccess = 0;
      this.readLimitInfo();
      return result;
    } catch (error) {
      this.readLimitInfo();
      const classified = classifyRequestError(error, context);
      if (classified.code === 'REQUEST_LIMIT_EXCEEDED') {
        this.pausedUntil = this.now() + (classified.retryAfterMs ?? DEFAULT_QUOTA_PAUSE_MS);
      }
      throw classified;
    }
  }

  private readLimitInfo(): void {
    const info = this.conn.limitInfo as { apiUsage?: { used: number; limit: number } } | undefined;
    if (info?.apiUsage !== undefined) {
      this.usage = { ...info.apiUsage };
      this.usageStale = false;
      // jsforce keeps the last figures until the next header; clear them so a stale value is not re-read.
      this.conn.limitInfo = {};
    }
  }

  /** Latest daily figures from `Sforce-Limit-Info` (Salesforce sends no per-window headers). */
  quota(): QuotaState {
    const now = this.now();
    return {
      ...(this.usage === undefined
        ? {}
        : { dailyLimit: this.usage.limit, dailyRemaining: Math.max(0, this.usage.limit - this.usage.used) }),
      ...(now < this.pausedUntil ? { windowRemaining: 0, windowResetMs: this.pausedUntil - now } : {}),
    };
  }

  // ---- SOQL --------------------------------------------------------------------------------

  /**
   * `GET /query?q=` (or `/queryAll` to include deleted rows). `batchSize` (200..2000) goes in
   * `Sforce-Query-Options` (REST API Developer Guide, "Query Options Header").
   */
  async query(soql: string, options: { all?: boolean; batchSize?: number } = {}): Promise<QueryResult> {
    const resource = options.all === true ? 'queryAll' : 'query';
    const body = await this.request(
      {
        method: 'GET',
        path: `/${resource}?q=${encodeURIComponent(soql)}`,
        ...(options.batchSize === undefined ? {} : { headers: { 'Sforce-Query-Options': `batchSize=${options.batchSize}` } }),
      },
      { operation: resource },
    );
    return queryResultSchema.parse(body);
  }

  /** Follows `nextRecordsUrl` (`/services/data/vNN.N/query/<locator>`). */
  async queryMore(nextRecordsUrl: string): Promise<QueryResult> {
    if (!nextRecordsUrl.startsWith('/services/data/')) {
      throw new CrmhubError('internal', 'unexpected nextRecordsUrl', { code: 'BAD_LOCATOR' });
    }
    const body = await this.request({ method: 'GET', path: nextRecordsUrl }, { operation: 'queryMore' });
    return queryResultSchema.parse(body);
  }

  async describe(object: string): Promise<DescribeResult> {
    const body = await this.request({ method: 'GET', path: `/sobjects/${encodeURIComponent(object)}/describe` }, { object });
    return describeSchema.parse(body);
  }

  /** `GET /limits`: fills the daily figures before any other call has returned a limit header. */
  async limits(): Promise<{ max: number; remaining: number }> {
    const body = limitsSchema.parse(await this.request({ method: 'GET', path: '/limits' }));
    this.usage ??= { used: body.DailyApiRequests.Max - body.DailyApiRequests.Remaining, limit: body.DailyApiRequests.Max };
    return { max: body.DailyApiRequests.Max, remaining: body.DailyApiRequests.Remaining };
  }

  /** getDeleted: `GET /sobjects/{Object}/deleted/?start&end` (≤ 15 days back, minute granularity). */
  async getDeleted(object: string, start: string, end: string): Promise<DeletedResult> {
    const qs = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
    const body = await this.request({ method: 'GET', path: `/sobjects/${encodeURIComponent(object)}/deleted/?${qs}` }, { object });
    return deletedSchema.parse(body);
  }

  // ---- sObject Collections (≤ 200 records per call) -----------------------------------------

  async collectionsCreate(object: string, records: Record<string, unknown>[]): Promise<SaveResult[]> {
    const body = JSON.stringify({ allOrNone: false, records: records.map((r) => ({ attributes: { type: object }, ...r })) });
    return saveResultsSchema.parse(await this.request({ method: 'POST', path: '/composite/sobjects', body }, { object }));
  }

  /** Update by Id: each record carries `id` (collections accept the lower-case key, as jsforce sends it). */
  async collectionsUpdate(object: string, records: Record<string, unknown>[]): Promise<SaveResult[]> {
    const body = JSON.stringify({ allOrNone: false, records: records.map((r) => ({ attributes: { type: object }, ...r })) });
    return saveResultsSchema.parse(await this.request({ method: 'PATCH', path: '/composite/sobjects', body }, { object }));
  }

  /** Upsert by external id: `PATCH /composite/sobjects/{Object}/{ExtIdField}` (API ≥ 46). */
  async collectionsUpsert(object: string, externalIdField: string, records: Record<string, unknown>[]): Promise<SaveResult[]> {
    const body = JSON.stringify({ allOrNone: false, records: records.map((r) => ({ attributes: { type: object }, ...r })) });
    const path = `/composite/sobjects/${encodeURIComponent(object)}/${encodeURIComponent(externalIdField)}`;
    return saveResultsSchema.parse(await this.request({ method: 'PATCH', path, body }, { object }));
  }

  async collectionsDelete(ids: string[]): Promise<SaveResult[]> {
    const path = `/composite/sobjects?ids=${ids.map(encodeURIComponent).join(',')}&allOrNone=false`;
    return saveResultsSchema.parse(await this.request({ method: 'DELETE', path }, {}));
  }

  // ---- Bulk API 2.0 ingest -------------------------------------------------------------------

  async createIngestJob(object: string, operation: BulkOperation, externalIdFieldName?: string): Promise<IngestJob> {
    const body = JSON.stringify({
      object,
      operation,
      ...(externalIdFieldName === undefined ? {} : { externalIdFieldName }),
      contentType: 'CSV',
      lineEnding: 'LF',
      columnDelimiter: 'COMMA',
    });
    return ingestJobSchema.parse(await this.request({ method: 'POST', path: '/jobs/ingest', body }, { object, operation: 'bulk_create' }));
  }

  async uploadIngestData(jobId: string, csv: string): Promise<void> {
    await this.request(
      { method: 'PUT', path: `/jobs/ingest/${encodeURIComponent(jobId)}/batches`, body: csv, headers: { 'Content-Type': 'text/csv' }, raw: true },
      { operation: 'bulk_upload' },
    );
  }

  async setIngestJobState(jobId: string, state: 'UploadComplete' | 'Aborted'): Promise<IngestJob> {
    const body = JSON.stringify({ state });
    return ingestJobSchema.parse(await this.request({ method: 'PATCH', path: `/jobs/ingest/${encodeURIComponent(jobId)}`, body }, { operation: 'bulk_close' }));
  }

  async getIngestJob(jobId: string): Promise<IngestJob> {
    return ingestJobSchema.parse(await this.request({ method: 'GET', path: `/jobs/ingest/${encodeURIComponent(jobId)}` }, { operation: 'bulk_poll' }));
  }

  /** `successfulResults` / `failedResults` / `unprocessedrecords` as raw CSV text. */
  async getIngestResults(jobId: string, kind: 'successfulResults' | 'failedResults' | 'unprocessedrecords'): Promise<string> {
    const body = await this.request(
      { method: 'GET', path: `/jobs/ingest/${encodeURIComponent(jobId)}/${kind}`, raw: true },
      { operation: `bulk_${kind}` },
    );
    return typeof body === 'string' ? body : '';
  }

  async close(): Promise<void> {
    // jsforce keeps no sockets or timers of its own beyond node-fetch's agent.
    await Promise.resolve();
  }
}
