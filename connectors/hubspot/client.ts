/**
 * The HubSpot API as crmhub uses it, over the official client (`@hubspot/api-client`). This is the
 * only file that knows HubSpot's URLs (the SDK's, with `basePath` pointing elsewhere for the
 * sandbox). The SDK's own retries are off (`numberOfApiCallRetries: 0`) and its Bottleneck limiter
 * is not configured (no `limiterOptions`), so the engine owns pacing and retries.
 *
 * Rate-limit headers: the SDK returns only deserialised bodies on success, so a per-call response
 * middleware reads `X-HubSpot-RateLimit-*` into `quota()` on every answer (errors included). It is
 * passed as each call's `_options` (`{middleware, middlewareMergeStrategy: 'append'}`) because in
 * 13.4 the generated Observable APIs start from an empty middleware list and never apply the
 * client-level `middleware` option (`codegen/crm/<module>/types/ObservableAPI.js`: `let allMiddleware = []`).
 *
 * Every SDK answer is parsed with zod into plain objects (ISO strings, no SDK classes) before it
 * leaves this file; every failure goes through `errors.ts`.
 */
import { Client } from '@hubspot/api-client';
import { z } from 'zod';
import type { ErrorContext } from '../../src/connector-kit/errors.ts';
import type { QuotaState } from '../../src/connector-kit/connector.ts';
import { hubspotErrorBodySchema, toHubSpotError, type HubSpotErrorBody } from './errors.ts';

/** HubSpot's production API (used when no base URL is given). */
export const HUBSPOT_API_BASE = 'https://api.hubapi.com';

const dateish = z.union([z.date(), z.string()]).transform((v) => (v instanceof Date ? v.toISOString() : v));

const historySchema = z.object({ value: z.string(), timestamp: dateish, sourceType: z.string(), sourceId: z.string().optional() }).loose();

const objectSchema = z
  .object({
    id: z.string(),
    properties: z.record(z.string(), z.string().nullable()),
    createdAt: dateish,
    updatedAt: dateish,
    archived: z.boolean().optional(),
    archivedAt: dateish.optional(),
    propertiesWithHistory: z.record(z.string(), z.array(historySchema)).optional(),
    objectWriteTraceId: z.string().optional(),
    _new: z.boolean().optional(),
  })
  .loose();
export type HsObject = z.infer<typeof objectSchema>;

const batchSchema = z.object({ results: z.array(objectSchema), errors: z.array(hubspotErrorBodySchema).optional() }).loose();
export interface HsBatch {
  results: HsObject[];
  errors: HubSpotErrorBody[];
}

const pageSchema = z
  .object({
    results: z.array(objectSchema),
    total: z.number().optional(),
    paging: z.object({ next: z.object({ after: z.string() }).loose().optional() }).loose().optional(),
  })
  .loose();
export interface HsPage {
  results: HsObject[];
  total?: number;
  nextAfter?: string;
}

const propertySchema = z
  .object({
    name: z.string(),
    label: z.string(),
    type: z.string(),
    fieldType: z.string(),
    groupName: z.string().optional(),
    hasUniqueValue: z.boolean().optional(),
    hubspotDefined: z.boolean().optional(),
    calculated: z.boolean().optional(),
    archived: z.boolean().optional(),
    options: z.array(z.object({ label: z.string(), value: z.string() }).loose()).optional(),
    modificationMetadata: z.object({ readOnlyValue: z.boolean().optional() }).loose().optional(),
  })
  .loose();
export type HsProperty = z.infer<typeof propertySchema>;

const assocReadSchema = z
  .object({
    results: z.array(
      z.object({
        _from: z.object({ id: z.string() }).loose(),
        to: z.array(z.object({ toObjectId: z.union([z.string(), z.number()]).transform(String), associationTypes: z.array(z.object({ typeId: z.number(), category: z.string() }).loose()) }).loose()),
      }).loose(),
    ),
  })
  .loose();

/** Search body (`PublicObjectSearchRequest`; sorts in the object form HubSpot's guide uses). */
export interface HsSearchRequest {
  filterGroups: { filters: { propertyName: string; operator: string; value?: string; values?: string[]; highValue?: string }[] }[];
  sorts: { propertyName: string; direction: 'ASCENDING' | 'DESCENDING' }[];
  properties: string[];
  limit: number;
  after: string;
}

export interface HsWriteInput {
  id?: string;
  idProperty?: string;
  properties: Record<string, string>;
  objectWriteTraceId?: string;
}

export interface HubSpotClientOptions {
  accessToken: string;
  /** Default https://api.hubapi.com; the sandbox's URL in tests. */
  baseUrl?: string;
}

const headersSchema = z.record(z.string(), z.unknown());

/** The header-derived quota, kept up to date by the response middleware. */
function readQuota(headers: Record<string, unknown>, into: QuotaState): void {
  const num = (name: string): number | undefined => {
    const v = headers[name];
    const n = typeof v === 'string' ? Number(v) : NaN;
    return Number.isFinite(n) ? n : undefined;
  };
  const remaining = num('x-hubspot-ratelimit-remaining');
  const interval = num('x-hubspot-ratelimit-interval-milliseconds');
  const daily = num('x-hubspot-ratelimit-daily');
  const dailyRemaining = num('x-hubspot-ratelimit-daily-remaining');
  if (remaining !== undefined) into.windowRemaining = remaining;
  if (interval !== undefined) into.windowResetMs = interval;
  if (daily !== undefined) into.dailyLimit = daily;
  if (dailyRemaining !== undefined) into.dailyRemaining = dailyRemaining;
}

export class HubSpotClient {
  /** Calls made through this client (bench and tests). */
  calls = 0;
  readonly quotaState: QuotaState = {};
  /** Call-time options every SDK call gets: the header-reading middleware (see file comment). */
  private readonly opts: never;
  private readonly sdk: Client;
  private readonly objects: Client['crm']['objects'];
  private readonly properties: Client['crm']['properties']['coreApi'];
  private readonly associations: Client['crm']['associations']['v4']['batchApi'];

  constructor(options: HubSpotClientOptions) {
    const quota = this.quotaState;
    this.sdk = new Client({
      accessToken: options.accessToken,
      basePath: (options.baseUrl ?? HUBSPOT_API_BASE).replace(/\/$/, ''),
      numberOfApiCallRetries: 0,
    });
    const middleware = {
      pre: (ctx: unknown) => Promise.resolve(ctx),
      post: (ctx: unknown) => {
        const headers = headersSchema.safeParse((ctx as { headers?: unknown } | null)?.headers);
        if (headers.success) readQuota(headers.data, quota);
        return Promise.resolve(ctx);
      },
    };
    // Each generated API module declares its own (structurally equal) options type; `never` lets one value serve all.
    this.opts = { middleware: [middleware], middlewareMergeStrategy: 'append' } as never;
    // The SDK applies its (process-wide) retry/limiter decorators when an API object is first
    // built; building ours now, right after our Client set "no decorators", keeps them undecorated
    // even if another Client with retries is created later in this process.
    this.objects = this.sdk.crm.objects;
    void this.objects.basicApi;
    void this.objects.batchApi;
    void this.objects.searchApi;
    this.properties = this.sdk.crm.properties.coreApi;
    this.associations = this.sdk.crm.associations.v4.batchApi;
  }

  private async call<T>(context: ErrorContext, run: () => Promise<unknown>, schema: z.ZodType<T>): Promise<T> {
    this.calls++;
    let raw: unknown;
    try {
      raw = await run();
    } catch (error) {
      throw toHubSpotError(error, context);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw toHubSpotError(new TypeError(`unexpected HubSpot response: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`), context);
    }
    return parsed.data;
  }

  private static batch(raw: z.infer<typeof batchSchema>): HsBatch {
    return { results: raw.results, errors: raw.errors ?? [] };
  }

  async search(object: string, request: HsSearchRequest): Promise<HsPage> {
    // The SDK types `sorts` as string[] but passes values through; HubSpot takes the object form.
    const body = { ...request, sorts: request.sorts as unknown as string[], filterGroups: request.filterGroups as never };
    const page = await this.call({ object, operation: 'search' }, () => this.objects.searchApi.doSearch(object, body, this.opts), pageSchema);
    return { results: page.results, ...(page.total !== undefined ? { total: page.total } : {}), ...(page.paging?.next?.after ? { nextAfter: page.paging.next.after } : {}) };
  }

  async listArchived(object: string, after: string | undefined, limit: number, properties: string[]): Promise<HsPage> {
    const page = await this.call({ object, operation: 'list-archived' }, () => this.objects.basicApi.getPage(object, limit, after, properties, undefined, undefined, true, this.opts), pageSchema);
    return { results: page.results, ...(page.paging?.next?.after ? { nextAfter: page.paging.next.after } : {}) };
  }

  async batchRead(object: string, ids: string[], properties: string[], propertiesWithHistory: string[] = []): Promise<HsBatch> {
    const raw = await this.call(
      { object, operation: 'batch-read' },
      () => this.objects.batchApi.read(object, { inputs: ids.map((id) => ({ id })), properties, propertiesWithHistory }, false, this.opts),
      batchSchema,
    );
    return HubSpotClient.batch(raw);
  }

  async batchUpsert(object: string, inputs: HsWriteInput[]): Promise<HsBatch> {
    const raw = await this.call({ object, operation: 'batch-upsert' }, () => this.objects.batchApi.upsert(object, { inputs: inputs.map((i) => ({ ...i, id: i.id ?? '' })) }, this.opts), batchSchema);
    return HubSpotClient.batch(raw);
  }

  async batchUpdate(object: string, inputs: HsWriteInput[]): Promise<HsBatch> {
    const raw = await this.call({ object, operation: 'batch-update' }, () => this.objects.batchApi.update(object, { inputs: inputs.map((i) => ({ ...i, id: i.id ?? '' })) }, this.opts), batchSchema);
    return HubSpotClient.batch(raw);
  }

  async batchCreate(object: string, inputs: HsWriteInput[]): Promise<HsBatch> {
    const raw = await this.call(
      { object, operation: 'batch-create' },
      () => this.objects.batchApi.create(object, { inputs: inputs.map((i) => ({ properties: i.properties, associations: [], ...(i.objectWriteTraceId ? { objectWriteTraceId: i.objectWriteTraceId } : {}) })) }, this.opts),
      batchSchema,
    );
    return HubSpotClient.batch(raw);
  }

  async batchArchive(object: string, ids: string[]): Promise<void> {
    await this.call({ object, operation: 'batch-archive' }, () => this.objects.batchApi.archive(object, { inputs: ids.map((id) => ({ id })) }, this.opts), z.unknown());
  }

  async getProperties(object: string): Promise<HsProperty[]> {
    const raw = await this.call({ object, operation: 'properties' }, () => this.properties.getAll(object, undefined, undefined, this.opts), z.object({ results: z.array(propertySchema) }).loose());
    return raw.results;
  }

  async createProperty(object: string, property: { name: string; label: string; type: string; fieldType: string; groupName: string; hasUniqueValue?: boolean; options?: { label: string; value: string; displayOrder: number }[] }): Promise<HsProperty> {
    return this.call({ object, operation: 'create-property', field: property.name }, () => this.properties.create(object, property as never, this.opts), propertySchema);
  }

  /** Associated ids per from-id (`crm/v4/associations/{from}/{to}/batch/read`). */
  async readAssociations(from: string, to: string, ids: string[]): Promise<Map<string, { id: string; typeIds: number[] }[]>> {
    // A 207 for ids without associations is normal; the SDK hands it back as a result.
    const raw = await this.call({ object: from, operation: 'associations-read' }, () => this.associations.getPage(from, to, { inputs: ids.map((id) => ({ id })) }, this.opts), assocReadSchema);
    const out = new Map<string, { id: string; typeIds: number[] }[]>();
    for (const r of raw.results) out.set(r._from.id, r.to.map((t) => ({ id: t.toObjectId, typeIds: t.associationTypes.map((a) => a.typeId) })));
    return out;
  }

  /** Adds the default (unlabelled) association for each pair. */
  async associateDefault(from: string, to: string, pairs: { from: string; to: string }[]): Promise<void> {
    await this.call({ object: from, operation: 'associations-create' }, () => this.associations.createDefault(from, to, { inputs: pairs.map((p) => ({ _from: { id: p.from }, to: { id: p.to } })) }, this.opts), z.unknown());
  }

  async archiveAssociations(from: string, to: string, pairs: { from: string; to: string[] }[]): Promise<void> {
    await this.call({ object: from, operation: 'associations-archive' }, () => this.associations.archive(from, to, { inputs: pairs.map((p) => ({ _from: { id: p.from }, to: p.to.map((id) => ({ id })) })) }, this.opts), z.unknown());
  }
}
