/**
 * The only place that knows Pipedrive's URLs. Calls go through the official `pipedrive` SDK (API v2
 * for persons, organizations, deals and their fields; v1 for users/me), whose axios interceptors
 * hand back bodies only and reject with the error body — hiding status and rate-limit headers
 * (crm-reference §3.8). So each SDK `Configuration` gets `baseOptions.adapter`: our own transport
 * (Node's fetch) that every SDK request passes through. It paces requests to the 2-second burst and
 * the search burst, reads `x-ratelimit-*` and `x-daily-ratelimit-token-*` headers into `quota()`,
 * and turns non-2xx answers into `CrmhubError`s (errors.ts) before the SDK's interceptors see them.
 */
import { v1, v2 } from 'pipedrive';
import { z } from 'zod';
import type { QuotaState } from '../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { classifyNetworkError, classifyPipedriveFailure, retryAfterMs, unexpectedBody } from './errors.ts';
import { Pacer } from './pacer.ts';

export type PipedriveEntity = 'person' | 'organization' | 'deal';

export interface PipedriveClientOptions {
  /** Host root, e.g. `https://acme.pipedrive.com` or the sandbox URL; `/api/v2` and `/v1` are appended. */
  baseUrl: string;
  apiToken: string;
  /** Burst requests per window until the first `x-ratelimit-limit` header says otherwise. Default 20 (lowest plan). */
  burst?: number;
  /** Burst window, ms. Default 2000. */
  windowMs?: number;
  /** Search requests per window. Default 10 (all plans). */
  searchBurst?: number;
  /** Requests in flight at once. Default 32. */
  maxConcurrent?: number;
  /** Per-request timeout, ms. Default 30 000. */
  timeoutMs?: number;
  now?: () => number;
}

/** A v2 record: vendor attributes verbatim. */
export const v2RecordSchema = z.object({ id: z.number().int(), update_time: z.string().nullable().optional() }).passthrough();
export type V2Record = z.infer<typeof v2RecordSchema>;

const listBodySchema = z.object({
  success: z.literal(true),
  data: z.array(v2RecordSchema).nullable(),
  additional_data: z.object({ next_cursor: z.string().nullable().optional() }).passthrough().nullable().optional(),
});
const oneBodySchema = z.object({ success: z.literal(true), data: v2RecordSchema });
const searchBodySchema = z.object({
  success: z.literal(true),
  data: z.object({ items: z.array(z.object({ item: z.object({ id: z.number().int() }).passthrough() }).passthrough()) }),
  additional_data: z.object({ next_cursor: z.string().nullable().optional() }).passthrough().nullable().optional(),
});
export const fieldDefSchema = z
  .object({
    field_name: z.string(),
    field_code: z.string(),
    field_type: z.string(),
    options: z.array(z.object({ id: z.union([z.number(), z.string()]), label: z.string() }).passthrough()).nullable().optional(),
    is_custom_field: z.boolean(),
  })
  .passthrough();
export type FieldDef = z.infer<typeof fieldDefSchema>;
const fieldsBodySchema = z.object({
  success: z.literal(true),
  data: z.array(fieldDefSchema).nullable(),
  additional_data: z.object({ next_cursor: z.string().nullable().optional() }).passthrough().nullable().optional(),
});
const meBodySchema = z.object({ success: z.literal(true), data: z.object({ id: z.number().int() }).passthrough() });

export interface ListParams {
  ids?: number[];
  updated_since?: string;
  sort_by?: 'id' | 'update_time' | 'add_time';
  sort_direction?: 'asc' | 'desc';
  limit?: number;
  cursor?: string;
}

/** Minimal view of the axios request config our adapter receives (axios is the SDK's, not ours). */
interface AdapterConfig {
  url?: string;
  method?: string;
  data?: unknown;
  headers?: { toJSON?: () => Record<string, unknown> } & Record<string, unknown>;
}

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw unexpectedBody(what, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

export class PipedriveClient {
  private readonly pacer: Pacer;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly quotaState: QuotaState = {};
  private readonly persons: v2.PersonsApi;
  private readonly organizations: v2.OrganizationsApi;
  private readonly deals: v2.DealsApi;
  private readonly personFields: v2.PersonFieldsApi;
  private readonly organizationFields: v2.OrganizationFieldsApi;
  private readonly dealFields: v2.DealFieldsApi;
  private readonly users: v1.UsersApi;
  /** Requests sent (tests and benchmarks). */
  requests = 0;

  constructor(options: PipedriveClientOptions) {
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pacer = new Pacer({
      burst: options.burst ?? 20,
      windowMs: options.windowMs ?? 2000,
      searchBurst: options.searchBurst ?? 10,
      maxConcurrent: options.maxConcurrent ?? 32,
      now: this.now,
    });
    const root = options.baseUrl.replace(/\/+$/, '');
    const adapter = (config: AdapterConfig) => this.transport(config);
    const v2cfg = new v2.Configuration({ apiKey: options.apiToken, basePath: `${root}/api/v2` });
    const v1cfg = new v1.Configuration({ apiKey: options.apiToken, basePath: `${root}/v1` });
    // baseOptions is merged into every SDK request's axios config (dist/versions/*/api/*.js).
    v2cfg.baseOptions = { adapter };
    v1cfg.baseOptions = { adapter };
    this.persons = new v2.PersonsApi(v2cfg);
    this.organizations = new v2.OrganizationsApi(v2cfg);
    this.deals = new v2.DealsApi(v2cfg);
    this.personFields = new v2.PersonFieldsApi(v2cfg);
    this.organizationFields = new v2.OrganizationFieldsApi(v2cfg);
    this.dealFields = new v2.DealFieldsApi(v2cfg);
    this.users = new v1.UsersApi(v1cfg);
  }

  /** Latest figures from the rate-limit headers. */
  quota(): QuotaState {
    return { ...this.quotaState };
  }

  /** The burst ceiling currently paced to (requests per window). */
  get burstLimit(): number {
    return this.pacer.burst;
  }

  /** The SDK's transport: pacing, header reading, error classification. Returns an axios response. */
  private async transport(config: AdapterConfig): Promise<{ data: string; status: number; statusText: string; headers: Record<string, string>; config: AdapterConfig; request: object }> {
    const url = config.url ?? '';
    const method = (config.method ?? 'get').toUpperCase();
    const path = url.replace(/^https?:\/\/[^/]+/, '').split('?')[0] ?? '';
    const search = path.endsWith('/search');
    const rawHeaders = typeof config.headers?.toJSON === 'function' ? config.headers.toJSON() : (config.headers ?? {});
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(rawHeaders)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') headers[k] = String(v);
    const pausedMs = await this.pacer.acquire(search);
    if (pausedMs > 0) {
      throw new CrmhubError('rate_limited', 'Pipedrive: paused until the rate limit resets', {
        code: this.quotaState.dailyRemaining === 0 ? 'PIPEDRIVE_DAILY_BUDGET_EXHAUSTED' : 'PIPEDRIVE_RATE_LIMITED',
        context: { connector: 'pipedrive', operation: `${method} ${path}` },
        retryAfterMs: pausedMs,
      });
    }
    let response: Response;
    let text: string;
    try {
      this.requests++;
      response = await fetch(url, {
        method,
        headers,
        ...(config.data === undefined || config.data === null ? {} : { body: typeof config.data === 'string' ? config.data : JSON.stringify(config.data) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw classifyNetworkError(error, { operation: `${method} ${path}` });
    } finally {
      this.pacer.release(search);
    }
    const lower: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      lower[key.toLowerCase()] = value;
    });
    this.observe(lower, search, response.status);
    if (response.status < 200 || response.status >= 300) {
      throw classifyPipedriveFailure({ status: response.status, body: text, headers: lower }, { operation: `${method} ${path}` }, this.now());
    }
    return { data: text, status: response.status, statusText: response.statusText, headers: lower, config, request: {} };
  }

  private observe(headers: Record<string, string>, search: boolean, status: number): void {
    const num = (name: string): number | undefined => {
      const raw = headers[name];
      const n = raw === undefined ? NaN : Number(raw);
      return Number.isFinite(n) ? n : undefined;
    };
    const limit = num('x-ratelimit-limit');
    const remaining = num('x-ratelimit-remaining');
    const reset = num('x-ratelimit-reset');
    const dailyLimit = num('x-daily-ratelimit-token-limit');
    const dailyRemaining = num('x-daily-ratelimit-token-remaining');
    if (!search) {
      if (limit !== undefined && limit > 0) this.pacer.burst = limit;
      if (remaining !== undefined) this.quotaState.windowRemaining = remaining;
      if (reset !== undefined) this.quotaState.windowResetMs = reset * 1000;
    }
    if (dailyLimit !== undefined) this.quotaState.dailyLimit = dailyLimit;
    if (dailyRemaining !== undefined) this.quotaState.dailyRemaining = dailyRemaining;
    if (status === 429 || (dailyRemaining !== undefined && dailyRemaining <= 0)) {
      // 429 or a spent budget pauses every request until the reset (crm-reference §3.5).
      this.pacer.pauseFor(retryAfterMs(headers, this.now()), search && status === 429 && (dailyRemaining === undefined || dailyRemaining > 0));
    }
    // `remaining: 0` alone does not pause: our own window already paces, and the header's whole
    // seconds would stall up to a second too long. A token shared with other processes shows up
    // as 429s, which pause until the reset.
  }

  async list(entity: PipedriveEntity, params: ListParams): Promise<{ data: V2Record[]; nextCursor: string | null }> {
    const query = {
      ...(params.ids ? { ids: params.ids.join(',') } : {}),
      ...(params.updated_since ? { updated_since: params.updated_since } : {}),
      ...(params.sort_by ? { sort_by: params.sort_by } : {}),
      ...(params.sort_direction ? { sort_direction: params.sort_direction } : {}),
      ...(params.limit ? { limit: params.limit } : {}),
      ...(params.cursor ? { cursor: params.cursor } : {}),
    };
    const body: unknown =
      entity === 'person' ? await this.persons.getPersons(query) : entity === 'organization' ? await this.organizations.getOrganizations(query) : await this.deals.getDeals(query);
    const parsed = parse(listBodySchema, body, `${entity} list`);
    return { data: parsed.data ?? [], nextCursor: parsed.additional_data?.next_cursor ?? null };
  }

  async create(entity: PipedriveEntity, payload: Record<string, unknown>): Promise<V2Record> {
    // The SDK's request types are narrower than v2 bodies with custom fields; the server validates.
    const body: unknown =
      entity === 'person'
        ? await this.persons.addPerson({ AddPersonRequest: payload })
        : entity === 'organization'
          ? await this.organizations.addOrganization({ AddOrganizationRequest: payload as unknown as v2.AddOrganizationRequest })
          : await this.deals.addDeal({ AddDealRequest: payload as unknown as v2.AddDealRequest });
    return parse(oneBodySchema, body, `${entity} add`).data;
  }

  async update(entity: PipedriveEntity, id: number, payload: Record<string, unknown>): Promise<V2Record> {
    const body: unknown =
      entity === 'person'
        ? await this.persons.updatePerson({ id, UpdatePersonRequest: payload })
        : entity === 'organization'
          ? await this.organizations.updateOrganization({ id, UpdateOrganizationRequest: payload })
          : await this.deals.updateDeal({ id, UpdateDealRequest: payload });
    return parse(oneBodySchema, body, `${entity} update`).data;
  }

  async get(entity: PipedriveEntity, id: number): Promise<V2Record> {
    const body: unknown =
      entity === 'person' ? await this.persons.getPerson({ id }) : entity === 'organization' ? await this.organizations.getOrganization({ id }) : await this.deals.getDeal({ id });
    return parse(oneBodySchema, body, `${entity} get`).data;
  }

  async remove(entity: PipedriveEntity, id: number): Promise<void> {
    if (entity === 'person') await this.persons.deletePerson({ id });
    else if (entity === 'organization') await this.organizations.deleteOrganization({ id });
    else await this.deals.deleteDeal({ id });
  }

  /**
   * Exact-match search; resolves with the ids found (first page, up to 100). A failed search
   * rejects — it is never read as "not found" (design.md §8.1).
   */
  async search(entity: PipedriveEntity, term: string, fields: string): Promise<number[]> {
    const body: unknown =
      entity === 'person'
        ? await this.persons.searchPersons({ term, fields: fields as 'email', exact_match: true, limit: 100 })
        : entity === 'organization'
          ? await this.organizations.searchOrganization({ term, fields: fields as 'name', exact_match: true, limit: 100 })
          : await this.deals.searchDeals({ term, fields: fields as 'title', exact_match: true, limit: 100 });
    return parse(searchBodySchema, body, `${entity} search`).data.items.map((i) => i.item.id);
  }

  /** All fields of an entity (every page). */
  async fields(entity: PipedriveEntity): Promise<FieldDef[]> {
    const out: FieldDef[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const params = { limit: 500, ...(cursor ? { cursor } : {}) };
      const body: unknown =
        entity === 'person'
          ? await this.personFields.getPersonFields(params)
          : entity === 'organization'
            ? await this.organizationFields.getOrganizationFields(params)
            : await this.dealFields.getDealFields(params);
      const parsed = parse(fieldsBodySchema, body, `${entity} fields`);
      out.push(...(parsed.data ?? []));
      cursor = parsed.additional_data?.next_cursor ?? undefined;
      if (!cursor) break;
    }
    return out;
  }

  /** The user the API token belongs to (v1: v2 has no replacement). */
  async me(): Promise<{ id: number }> {
    return parse(meBodySchema, await this.users.getCurrentUser(), 'users/me').data;
  }
}
