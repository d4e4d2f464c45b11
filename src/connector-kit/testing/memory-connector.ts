/**
 * A faithful little CRM in memory that implements `Connector`: records with modified times, cursor
 * paging, a batch cap, per-record errors for invalid values, native upsert by unique keys,
 * change-source marking of our own writes, optional injected 429/5xx, and call counting. The
 * contract suite, the engine tests, the property test and the bench all run against it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { FieldValues, JsonValue } from '../../core/types.ts';
import { CrmhubError } from '../errors.ts';
import type {
  ChangePage,
  Connector,
  ConnectorDeclaration,
  ConnectorLimits,
  ObjectSchema,
  QuotaState,
  ReadOptions,
  RemoteRecord,
  WebhookRequest,
  WebhookResult,
  WriteItem,
  WriteOutcome,
} from '../connector.ts';

/** A record as the memory CRM stores it. */
export interface MemoryRecord {
  id: string;
  fields: FieldValues;
  /** Monotonic change sequence (the cursor orders by it). */
  seq: number;
  modifiedAt: string;
  fieldChangedAt: Record<string, string>;
  deleted: boolean;
  origin: 'self' | 'other';
}

export interface MemoryConnectorOptions {
  /** Default `memory`. */
  slug?: string;
  /** Objects and their unique (upsert) fields. Default one `contacts` object keyed by `email` and `crmhub_id`. */
  objects?: { name: string; upsertKeys?: string[]; identifierType?: string; profileKind?: 'person' | 'account' }[];
  /** Default 100. */
  maxBatchSize?: number;
  /** Default 100 requests per 10 000 ms, 10 in flight. */
  limits?: ConnectorLimits;
  /** Shared secret for webhook HMAC-SHA256 signatures. Default `memory-secret`. */
  webhookSecret?: string;
  /**
   * Enforces `limits` like the CRM would: a call beyond the window answers 429 (a `rate_limited`
   * rejection with `retryAfterMs`). Default false.
   */
  enforceLimits?: boolean;
  /** Clock in ms; default `Date.now`. Times are also forced strictly increasing. */
  now?: () => number;
}

/** Fault injection for the next calls. */
export interface MemoryFaults {
  /** Probability (0–1) that a call answers 429. */
  rateLimitRate?: number;
  /** Probability (0–1) that a call answers 503. */
  transientRate?: number;
  /** `retryAfterMs` carried by injected 429s. Default 50. */
  retryAfterMs?: number;
  /** Deterministic random source for faults; default `Math.random`. */
  random?: () => number;
  /** Every call fails with 401 while true. */
  authFailure?: boolean;
}

const webhookBodySchema = z.object({
  deliveries: z.array(
    z.object({
      deliveryId: z.string(),
      object: z.string(),
      id: z.string(),
      kind: z.enum(['upsert', 'delete']),
      changedAt: z.string(),
      origin: z.enum(['self', 'other']),
    }),
  ),
});

const cursorSchema = z.object({ seq: z.number().int().nonnegative() });

/** Values the memory CRM rejects per record: any string beginning with `invalid`. */
function invalidField(fields: FieldValues): string | null {
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string' && value.startsWith('invalid')) return key;
  }
  return null;
}

function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export class MemoryConnector implements Connector {
  readonly declaration: ConnectorDeclaration;
  /** Calls per method name, plus `total` and `rateLimited`. */
  readonly calls: Record<string, number> = { total: 0, rateLimited: 0 };
  /** Records written per write call (for batching figures). */
  readonly writeBatchSizes: number[] = [];
  faults: MemoryFaults = {};
  private readonly stores = new Map<string, Map<string, MemoryRecord>>();
  /**
   * Live records by unique-key value: object → field → value → ids. Upserts and duplicate checks
   * look values up here instead of scanning every record (a scan per written record made a
   * 10,000-record bench spend most of its time inside this fake CRM).
   */
  private readonly uniques = new Map<string, Map<string, Map<JsonValue, Set<string>>>>();
  private seq = 0;
  private nextId = 1;
  private lastTime = 0;
  private readonly secret: string;
  private readonly clock: () => number;
  private readonly enforce: boolean;
  private readonly stamps: number[] = [];
  private inFlight = 0;
  /** Highest number of calls in flight at once. */
  maxInFlight = 0;
  /** Webhook deliveries produced by changes, newest last; tests drain them. */
  readonly outbox: { deliveryId: string; object: string; id: string; kind: 'upsert' | 'delete'; changedAt: string; origin: 'self' | 'other' }[] = [];
  private deliverySeq = 0;

  constructor(options: MemoryConnectorOptions = {}) {
    const slug = options.slug ?? 'memory';
    const objects = options.objects ?? [{ name: 'contacts', upsertKeys: ['email', 'crmhub_id'] }];
    this.secret = options.webhookSecret ?? 'memory-secret';
    this.clock = options.now ?? Date.now;
    this.enforce = options.enforceLimits ?? false;
    this.declaration = {
      slug,
      displayName: `Memory CRM (${slug})`,
      objects: objects.map((o) => ({
        name: o.name,
        profileKind: o.profileKind ?? 'person',
        identifierType: o.identifierType ?? `${slug}.${o.name}`,
        maxBatchSize: options.maxBatchSize ?? 100,
        upsertKeys: o.upsertKeys ?? ['email', 'crmhub_id'],
        modifiedField: 'modified_at',
      })),
      limits: options.limits ?? { requestsPerWindow: 100, windowMs: 10_000, maxConcurrent: 10 },
      capabilities: { batchUpsert: true, bulk: false, webhooks: true, deletes: true, fieldChangeTimes: true },
    };
    for (const o of objects) this.stores.set(o.name, new Map());
  }

  // ---- rep-side (test) API -------------------------------------------------------------------

  /** A rep edits (or creates, when `id` is absent) a record in the CRM's UI. Returns the id. */
  repEdit(object: string, id: string | undefined, fields: FieldValues): string {
    return this.apply(object, id, fields, 'other').id;
  }

  /** A rep deletes (archives) a record. */
  repDelete(object: string, id: string): void {
    const record = this.table(object).get(id);
    if (!record || record.deleted) return;
    this.unindex(object, record);
    record.deleted = true;
    record.seq = ++this.seq;
    record.modifiedAt = this.tick();
    record.origin = 'other';
    this.announce(object, id, 'delete', record.modifiedAt, 'other');
  }

  /** All live records of an object (a copy). */
  records(object: string): MemoryRecord[] {
    return [...this.table(object).values()].filter((r) => !r.deleted).map((r) => structuredClone(r));
  }

  record(object: string, id: string): MemoryRecord | undefined {
    const r = this.table(object).get(id);
    return r ? structuredClone(r) : undefined;
  }

  /** Builds a signed webhook request announcing these deliveries (default: all pending, drained). */
  buildWebhook(deliveries = this.outbox.splice(0, this.outbox.length), now = this.clock()): WebhookRequest {
    const rawBody = Buffer.from(JSON.stringify({ deliveries }));
    const signature = createHmac('sha256', this.secret).update(rawBody).digest('hex');
    return {
      method: 'POST',
      url: `http://127.0.0.1/webhooks/${this.declaration.slug}`,
      headers: { 'content-type': 'application/json', 'x-memory-signature': signature },
      rawBody,
      now,
    };
  }

  // ---- Connector -----------------------------------------------------------------------------

  async readChanges(object: string, cursor: string | null, options: ReadOptions = {}): Promise<ChangePage> {
    return this.call('readChanges', () => {
      let after = 0;
      // `full` reads from the start only when the caller passes a null cursor; page cursors still advance.
      if (cursor !== null) {
        const parsed = cursorSchema.safeParse(safeJson(cursor));
        if (!parsed.success) throw new CrmhubError('payload', 'Unreadable cursor', { code: 'MEMORY_BAD_CURSOR', context: { object } });
        after = parsed.data.seq;
      }
      const size = Math.min(Math.max(options.pageSize ?? 100, 1), 100);
      const all = [...this.table(object).values()]
        .filter((r) => r.seq > after && !(options.full && r.deleted))
        .sort((a, b) => a.seq - b.seq);
      const page = all.slice(0, size);
      const last = page[page.length - 1];
      return {
        records: page.map((r) => this.toRemote(object, r, options.fields)),
        nextCursor: JSON.stringify({ seq: last ? last.seq : after }),
        done: all.length <= size,
      };
    });
  }

  async readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]> {
    return this.call('readByIds', () => {
      const table = this.table(object);
      const out: RemoteRecord[] = [];
      for (const id of ids) {
        const r = table.get(id);
        if (r) out.push(this.toRemote(object, r, fields));
      }
      return out;
    });
  }

  async write(object: string, items: WriteItem[]): Promise<WriteOutcome[]> {
    const max = this.declaration.objects.find((o) => o.name === object)?.maxBatchSize ?? 1;
    if (items.length > max) {
      throw new CrmhubError('payload', `Batch of ${items.length} exceeds ${max}`, { code: 'MEMORY_BATCH_TOO_LARGE', context: { object } });
    }
    return this.call('write', () => {
      this.writeBatchSizes.push(items.length);
      const table = this.table(object);
      const keys = this.declaration.objects.find((o) => o.name === object)?.upsertKeys ?? [];
      return items.map((item): WriteOutcome => {
        const context = { connector: this.declaration.slug, object, record: item.ref };
        const bad = invalidField(item.fields);
        if (bad !== null) {
          return { ref: item.ref, ok: false, error: new CrmhubError('payload', `Invalid value for ${bad}`, { code: 'MEMORY_INVALID_VALUE', context: { ...context, field: bad } }) };
        }
        if (item.upsertKey && !keys.includes(item.upsertKey.field)) {
          return { ref: item.ref, ok: false, error: new CrmhubError('config', `${item.upsertKey.field} is not unique`, { code: 'MEMORY_NOT_UNIQUE', context }) };
        }
        let id = item.remoteId;
        if (id === undefined && item.upsertKey) {
          const { field, value } = item.upsertKey;
          id = this.findLive(object, field, value)?.id;
        }
        if (id !== undefined && !table.get(id)) {
          return { ref: item.ref, ok: false, error: new CrmhubError('payload', `No ${object} ${id}`, { code: 'MEMORY_NOT_FOUND', context }) };
        }
        if (item.delete) {
          if (id !== undefined) {
            const r = table.get(id);
            if (r && !r.deleted) {
              this.unindex(object, r);
              r.deleted = true;
              r.seq = ++this.seq;
              r.modifiedAt = this.tick();
              r.origin = 'self';
              this.announce(object, id, 'delete', r.modifiedAt, 'self');
            }
          }
          return { ref: item.ref, ok: true, remoteId: id ?? '', created: false };
        }
        // The upsert key itself is written so a later upsert by the same key finds this record.
        const fields = item.upsertKey ? { ...item.fields, [item.upsertKey.field]: item.upsertKey.value } : item.fields;
        for (const key of keys) {
          const v = fields[key];
          if (v === undefined || v === null || v === '') continue;
          const clash = this.findLive(object, key, v, id);
          if (clash) {
            return { ref: item.ref, ok: false, error: new CrmhubError('payload', `Duplicate ${key}`, { code: 'MEMORY_DUPLICATE', context: { ...context, field: key } }) };
          }
        }
        const created = id === undefined;
        const record = this.apply(object, id, fields, 'self');
        return { ref: item.ref, ok: true, remoteId: record.id, created, modifiedAt: record.modifiedAt };
      });
    });
  }

  handleWebhook(request: WebhookRequest): Promise<WebhookResult> {
    try {
      return Promise.resolve(this.parseWebhook(request));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new TypeError(String(error)));
    }
  }

  private parseWebhook(request: WebhookRequest): WebhookResult {
    const header = request.headers['x-memory-signature'];
    const given = Buffer.from(typeof header === 'string' ? header : '', 'utf8');
    const expected = Buffer.from(createHmac('sha256', this.secret).update(request.rawBody).digest('hex'), 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new CrmhubError('auth', 'Webhook signature does not match', { code: 'MEMORY_BAD_SIGNATURE', context: { connector: this.declaration.slug } });
    }
    const parsed = webhookBodySchema.safeParse(safeJson(request.rawBody.toString('utf8')));
    if (!parsed.success) {
      throw new CrmhubError('payload', 'Malformed webhook body', { code: 'MEMORY_BAD_WEBHOOK', context: { connector: this.declaration.slug } });
    }
    // Thin payloads, as HubSpot sends: only ids; the engine reads the records.
    return {
      changes: parsed.data.deliveries.map((d) => ({
        object: d.object,
        id: d.id,
        deliveryId: d.deliveryId,
        changedAt: d.changedAt,
        kind: d.kind,
        origin: d.origin,
      })),
    };
  }

  async describe(object: string): Promise<ObjectSchema> {
    return this.call('describe', () => {
      const names = new Set<string>(this.declaration.objects.find((o) => o.name === object)?.upsertKeys ?? []);
      for (const r of this.table(object).values()) for (const k of Object.keys(r.fields)) names.add(k);
      const unique = new Set(this.declaration.objects.find((o) => o.name === object)?.upsertKeys ?? []);
      return {
        object,
        fields: [...names].sort().map((name) => ({
          name,
          label: name,
          type: 'string' as const,
          readOnly: false,
          unique: unique.has(name),
          required: false,
          custom: name.startsWith('crmhub_'),
        })),
      };
    });
  }

  quota(): QuotaState {
    const now = this.clock();
    const { requestsPerWindow, windowMs } = this.declaration.limits;
    const live = this.stamps.filter((t) => t > now - windowMs);
    // Like a rolling-window CRM's headers: the reset is when the oldest call in the window leaves it.
    const oldest = live[0];
    return { windowRemaining: Math.max(0, requestsPerWindow - live.length), windowResetMs: oldest === undefined ? 0 : Math.max(0, oldest + windowMs - now) };
  }

  async close(): Promise<void> {
    /* nothing to release */
  }

  // ---- internals -----------------------------------------------------------------------------

  private table(object: string): Map<string, MemoryRecord> {
    const t = this.stores.get(object);
    if (!t) throw new CrmhubError('config', `Unknown object ${object}`, { code: 'MEMORY_UNKNOWN_OBJECT', context: { connector: this.declaration.slug, object } });
    return t;
  }

  /** The unique-key fields of an object (its upsert keys). */
  private keyIndex(object: string): Map<string, Map<JsonValue, Set<string>>> {
    let byField = this.uniques.get(object);
    if (!byField) {
      byField = new Map((this.declaration.objects.find((o) => o.name === object)?.upsertKeys ?? []).map((k) => [k, new Map()]));
      this.uniques.set(object, byField);
    }
    return byField;
  }

  private index(object: string, record: MemoryRecord): void {
    for (const [field, values] of this.keyIndex(object)) {
      const v = record.fields[field];
      if (v === undefined || v === null || typeof v === 'object') continue;
      let ids = values.get(v);
      if (!ids) values.set(v, (ids = new Set()));
      ids.add(record.id);
    }
  }

  private unindex(object: string, record: MemoryRecord): void {
    for (const [field, values] of this.keyIndex(object)) {
      const v = record.fields[field];
      if (v === undefined || v === null || typeof v === 'object') continue;
      values.get(v)?.delete(record.id);
    }
  }

  /** The first live record (in creation order) whose `field` equals `value`, other than `except`. */
  private findLive(object: string, field: string, value: JsonValue | undefined, except?: string): MemoryRecord | undefined {
    const table = this.table(object);
    const values = this.keyIndex(object).get(field);
    if (!values || value === undefined || value === null || typeof value === 'object') {
      return [...table.values()].find((r) => !r.deleted && r.id !== except && r.fields[field] === value);
    }
    const ids = [...(values.get(value) ?? [])].filter((id) => id !== except);
    if (ids.length <= 1) return ids[0] === undefined ? undefined : table.get(ids[0]);
    // Several (a rep can give two records one email): the first created, as a scan would find.
    return [...table.values()].find((r) => !r.deleted && r.id !== except && ids.includes(r.id));
  }

  /** Strictly increasing ISO times so "later" is always well defined. */
  private tick(): string {
    const t = Math.max(this.clock(), this.lastTime + 1);
    this.lastTime = t;
    return new Date(t).toISOString();
  }

  private apply(object: string, id: string | undefined, fields: FieldValues, origin: 'self' | 'other'): MemoryRecord {
    const table = this.table(object);
    const at = this.tick();
    let record = id === undefined ? undefined : table.get(id);
    if (record && !record.deleted) this.unindex(object, record);
    if (!record) {
      record = { id: id ?? String(this.nextId++), fields: {}, seq: 0, modifiedAt: at, fieldChangedAt: {}, deleted: false, origin };
      table.set(record.id, record);
    }
    for (const [key, value] of Object.entries(fields)) {
      if (!jsonEqual(record.fields[key], value)) record.fieldChangedAt[key] = at;
      record.fields[key] = value;
    }
    record.seq = ++this.seq;
    record.modifiedAt = at;
    record.origin = origin;
    record.deleted = false;
    this.index(object, record);
    this.announce(object, record.id, 'upsert', at, origin);
    return record;
  }

  private announce(object: string, id: string, kind: 'upsert' | 'delete', changedAt: string, origin: 'self' | 'other'): void {
    this.outbox.push({ deliveryId: `${this.declaration.slug}-d${++this.deliverySeq}`, object, id, kind, changedAt, origin });
  }

  private toRemote(object: string, r: MemoryRecord, fields?: string[]): RemoteRecord {
    const picked: FieldValues = {};
    for (const [k, v] of Object.entries(r.fields)) if (!fields || fields.includes(k)) picked[k] = structuredClone(v);
    return {
      object,
      id: r.id,
      fields: picked,
      modifiedAt: r.modifiedAt,
      fieldChangedAt: { ...r.fieldChangedAt },
      ...(r.deleted ? { deleted: true } : {}),
      origin: r.origin,
    };
  }

  /** Counts the call, applies the declared limit and injected faults, then runs `fn`. */
  private async call<T>(name: string, fn: () => T): Promise<T> {
    this.calls.total = (this.calls.total ?? 0) + 1;
    this.calls[name] = (this.calls[name] ?? 0) + 1;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await Promise.resolve();
      const context = { connector: this.declaration.slug, status: 429 };
      if (this.faults.authFailure) throw new CrmhubError('auth', 'Token revoked', { code: 'MEMORY_UNAUTHORIZED', context: { ...context, status: 401 } });
      if (this.enforce) {
        const now = this.clock();
        const { requestsPerWindow, windowMs } = this.declaration.limits;
        while (this.stamps.length > 0 && (this.stamps[0] ?? 0) <= now - windowMs) this.stamps.shift();
        if (this.stamps.length >= requestsPerWindow) {
          this.calls.rateLimited = (this.calls.rateLimited ?? 0) + 1;
          const retryAfterMs = Math.max(1, (this.stamps[0] ?? now) + windowMs - now);
          throw new CrmhubError('rate_limited', 'Rate limit exceeded', { code: 'MEMORY_RATE_LIMITED', context, retryAfterMs });
        }
        this.stamps.push(now);
      }
      const random = this.faults.random ?? Math.random;
      if (this.faults.rateLimitRate && random() < this.faults.rateLimitRate) {
        this.calls.rateLimited = (this.calls.rateLimited ?? 0) + 1;
        throw new CrmhubError('rate_limited', 'Rate limit exceeded', { code: 'MEMORY_RATE_LIMITED', context, retryAfterMs: this.faults.retryAfterMs ?? 50 });
      }
      if (this.faults.transientRate && random() < this.faults.transientRate) {
        throw new CrmhubError('transient', 'Service unavailable', { code: 'MEMORY_UNAVAILABLE', context: { ...context, status: 503 } });
      }
      return fn();
    } finally {
      this.inFlight--;
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
