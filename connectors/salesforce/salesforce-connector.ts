/**
 * The Salesforce connector: incremental pulls by SystemModstamp with Id as tie breaker, deletes via
 * queryAll (IsDeleted) and getDeleted, writes through sObject Collections (≤ 200 per call) or Bulk
 * API 2.0 above a threshold, Lead conversion followed to the Contact, webhooks (Outbound Messages
 * and CDC-shaped JSON), schema from describe and quota from `Sforce-Limit-Info`.
 */
import type {
  ChangePage,
  Connector,
  ConnectorDeclaration,
  ObjectSchema,
  QuotaState,
  ReadOptions,
  RemoteRecord,
  WebhookRequest,
  WebhookResult,
  WriteItem,
  WriteOutcome,
} from '../../src/connector-kit/connector.ts';
import type { ConnectorLogger } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { FieldValues, JsonValue } from '../../src/core/types.ts';
import { runIngestJob, type BulkRow } from './bulk.ts';
import type { DescribeField, DescribeResult, QueryResult, SaveResult, SalesforceClient } from './client.ts';
import { formatCursor, parseCursor, type PullCursor } from './cursor.ts';
import { COLLECTION_MAX, CRMHUB_ID_FIELD, DEFAULT_BULK_THRESHOLD, findObject, salesforceDeclaration } from './declaration.ts';
import { classifyRecordError } from './errors.ts';
import { fromSalesforceText, toObjectSchema, toSalesforceValue, UNREADABLE_TYPES } from './schema.ts';
import {
  DEFAULT_MAX_QUERY_CHARS,
  encodedLength,
  isSalesforceId,
  keysetWhere,
  normaliseSalesforceDate,
  selectSoql,
  soqlIn,
  splitFieldList,
} from './soql.ts';
import { handleSalesforceWebhook } from './webhook.ts';

export interface SalesforceConnectorOptions {
  client: SalesforceClient;
  /** `Sforce-Call-Options` client name of our writes (default `crmhub`). */
  clientName?: string;
  /** Shared token expected as `?token=` on `/webhooks/salesforce`. */
  webhookToken?: string;
  /** Organization id Outbound Messages must come from. */
  orgId?: string;
  /** Writes of at least this many records go through Bulk API 2.0. Default 2,000. */
  bulkThreshold?: number;
  /** Bulk job poll interval, ms. Default 1,000. */
  bulkPollIntervalMs?: number;
  /** Bulk job wait limit, ms. Default 600,000. */
  bulkTimeoutMs?: number;
  /** Budget for one query's URL-encoded SOQL, characters. Default 15,000. */
  maxQueryChars?: number;
  /** Also ask getDeleted for deletions purged from the recycle bin. Default true. */
  useGetDeleted?: boolean;
  /** Injectable clock (ms). */
  now?: () => number;
  logger?: ConnectorLogger;
}

/** Fields every pull reads, whatever the mapping asks for. */
const ALWAYS = ['Id', 'SystemModstamp'];
/** Extra fields per object the connector itself needs (deletes, Lead conversion). */
const OBJECT_EXTRAS: Record<string, string[]> = {
  Lead: ['IsDeleted', 'IsConverted', 'ConvertedContactId'],
};
const DEFAULT_EXTRAS = ['IsDeleted'];
/** Lead fields a Contact has no counterpart for; dropped when a write follows a converted Lead. */
const LEAD_ONLY_FIELDS = new Set([
  'Company',
  'Status',
  'IsConverted',
  'ConvertedContactId',
  'ConvertedAccountId',
  'ConvertedOpportunityId',
  'ConvertedDate',
  'Industry',
  'Website',
  'NumberOfEmployees',
  'AnnualRevenue',
  'Rating',
]);
/** Salesforce refuses writes to converted Leads with this code (REST API "Status Codes and Error Responses"). */
const CONVERTED_LEAD_CODE = 'CANNOT_UPDATE_CONVERTED_LEAD';
/** Query page size bounds (`Sforce-Query-Options: batchSize`, REST API Developer Guide). */
const MIN_BATCH = 200;
const MAX_BATCH = 2000;

/** A write split by how each record is addressed. */
interface WritePlan {
  deletes: WriteItem[];
  /** Known records, updated by Id. */
  updates: WriteItem[];
  /** Upserts grouped by external id field. */
  upserts: Map<string, WriteItem[]>;
  /** Neither id nor key: plain creates. */
  creates: WriteItem[];
}

function iso(value: JsonValue | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(normaliseSalesforceDate(value));
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** REST datetimes look like `2024-05-02T11:22:33.000+0000`; SOAP and CDC send `…Z`. One form for all. */
const SF_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})$/;
function normaliseDateTime(value: JsonValue): JsonValue {
  if (typeof value !== 'string' || !SF_DATETIME.test(value)) return value;
  return iso(value) ?? value;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class SalesforceConnector implements Connector {
  readonly declaration: ConnectorDeclaration = salesforceDeclaration;
  private readonly client: SalesforceClient;
  private readonly options: SalesforceConnectorOptions;
  private readonly clientName: string;
  private readonly now: () => number;
  private readonly describes = new Map<string, Promise<DescribeResult>>();
  private readonly describedFields = new Map<string, Map<string, DescribeField>>();
  private getDeletedAvailable: boolean;

  constructor(options: SalesforceConnectorOptions) {
    this.client = options.client;
    this.options = options;
    this.clientName = options.clientName ?? 'crmhub';
    this.now = options.now ?? Date.now;
    this.getDeletedAvailable = options.useGetDeleted ?? true;
  }

  private get maxQueryChars(): number {
    return this.options.maxQueryChars ?? DEFAULT_MAX_QUERY_CHARS;
  }

  private knownObject(object: string): void {
    if (findObject(object) === undefined) {
      throw new CrmhubError('config', `Salesforce connector does not sync object ${object}`, {
        code: 'UNKNOWN_OBJECT',
        context: { connector: 'salesforce', object },
      });
    }
  }

  private async describeRaw(object: string): Promise<DescribeResult> {
    let pending = this.describes.get(object);
    if (pending === undefined) {
      pending = this.client.describe(object);
      this.describes.set(object, pending);
      pending.then(
        (d) => this.describedFields.set(object, new Map(d.fields.map((f) => [f.name, f]))),
        () => this.describes.delete(object),
      );
    }
    return pending;
  }

  async describe(object: string): Promise<ObjectSchema> {
    return toObjectSchema(await this.describeRaw(object), object);
  }

  quota(): QuotaState {
    return this.client.quota();
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // ---- reads ----------------------------------------------------------------------------------

  private async readFields(object: string, requested: string[] | undefined): Promise<string[]> {
    const base = requested ?? (await this.describeRaw(object)).fields.filter((f) => !UNREADABLE_TYPES.has(f.type)).map((f) => f.name);
    const extras = OBJECT_EXTRAS[object] ?? DEFAULT_EXTRAS;
    return [...new Set([...ALWAYS, ...extras, ...base])];
  }

  private toRemote(object: string, row: Record<string, JsonValue>): RemoteRecord {
    const fields: FieldValues = {};
    for (const [key, value] of Object.entries(row)) if (key !== 'attributes') fields[key] = normaliseDateTime(value);
    const id = typeof fields['Id'] === 'string' ? fields['Id'] : '';
    const modifiedAt = iso(fields['SystemModstamp']) ?? iso(fields['LastModifiedDate']) ?? new Date(this.now()).toISOString();
    const converted = object === 'Lead' && fields['IsConverted'] === true && typeof fields['ConvertedContactId'] === 'string';
    return {
      object,
      id,
      fields,
      modifiedAt,
      ...(fields['IsDeleted'] === true ? { deleted: true } : {}),
      ...(converted ? { mergedIntoId: fields['ConvertedContactId'] as string } : {}),
      // SOQL rows do not say who made the change; the shadow comparison stops echoes.
      origin: 'unknown',
    };
  }

  /**
   * Fetches the fields of groups 2..n for the rows of a page (split so each URL stays in budget)
   * and merges them into the rows by Id.
   */
  private async fillGroups(object: string, rows: Record<string, JsonValue>[], groups: string[][], all: boolean): Promise<void> {
    if (groups.length === 0 || rows.length === 0) return;
    const byId = new Map(rows.map((r) => [r['Id'] as string, r]));
    const ids = [...byId.keys()];
    for (const group of groups) {
      const fields = ['Id', ...group];
      const fixed = encodedLength(selectSoql(object, fields, 'Id IN ()'));
      let start = 0;
      while (start < ids.length) {
        let size = fixed;
        let end = start;
        while (end < ids.length && size + encodedLength(`'${ids[end] ?? ''}',`) <= this.maxQueryChars) {
          size += encodedLength(`'${ids[end] ?? ''}',`);
          end++;
        }
        if (end === start) end = start + 1;
        const soql = selectSoql(object, fields, soqlIn('Id', ids.slice(start, end)));
        for (const extra of await this.queryAllPages(soql, all)) {
          const target = byId.get(extra['Id'] as string);
          if (target !== undefined) Object.assign(target, extra);
        }
        start = end;
      }
    }
  }

  private async queryAllPages(soql: string, all: boolean): Promise<Record<string, JsonValue>[]> {
    let result: QueryResult = await this.client.query(soql, { all });
    const rows = [...result.records];
    while (!result.done && result.nextRecordsUrl !== undefined) {
      result = await this.client.queryMore(result.nextRecordsUrl);
      rows.push(...result.records);
    }
    return rows;
  }

  async readChanges(object: string, cursorValue: string | null, options: ReadOptions = {}): Promise<ChangePage> {
    this.knownObject(object);
    const stored = parseCursor(cursorValue);
    // A full read restarts unless the cursor already belongs to the full read in progress.
    const cursor: PullCursor = options.full === true && stored.full !== true ? { full: true } : stored;
    const full = cursor.full === true;
    const pageSize = Math.min(MAX_BATCH, Math.max(1, options.pageSize ?? MAX_BATCH));
    const fields = await this.readFields(object, options.fields);
    const position = cursor.ts !== undefined && cursor.id !== undefined ? { ts: cursor.ts, id: cursor.id } : null;
    const where = keysetWhere(position);
    const tail = `ORDER BY SystemModstamp, Id${pageSize < MIN_BATCH ? ` LIMIT ${pageSize}` : ''}`;
    const restChars = encodedLength(`FROM ${object} ${where === '' ? '' : `WHERE ${where} `}${tail}`);
    const [first = [], ...others] = splitFieldList(ALWAYS, fields, restChars, this.maxQueryChars);
    // Incremental reads use queryAll so recycle-bin deletions (IsDeleted = true) come with the changes.
    const all = !full;

    let result: QueryResult | undefined;
    if (cursor.next !== undefined) {
      try {
        result = await this.client.queryMore(cursor.next);
      } catch (error) {
        // Query locators expire; the keyset position resumes the same place.
        if (!(error instanceof CrmhubError) || error.code !== 'INVALID_QUERY_LOCATOR') throw error;
      }
    }
    result ??= await this.client.query(selectSoql(object, [...ALWAYS, ...first], where, tail), {
      all,
      batchSize: Math.max(MIN_BATCH, pageSize),
    });
    const rows = result.records;
    await this.fillGroups(object, rows, others, all);
    const records = rows.map((r) => this.toRemote(object, r));

    const last = rows[rows.length - 1];
    const next: PullCursor = { ...(full ? { full: true } : {}) };
    const lastTs = last === undefined ? cursor.ts : (iso(last['SystemModstamp']) ?? cursor.ts);
    const lastId = last === undefined ? cursor.id : ((last['Id'] as string | undefined) ?? cursor.id);
    if (lastTs !== undefined) next.ts = lastTs;
    if (lastId !== undefined) next.id = lastId;
    if (cursor.del !== undefined) next.del = cursor.del;
    // With a LIMIT (page sizes under Salesforce's minimum batch) there is no locator: a full page means "maybe more".
    const limited = pageSize < MIN_BATCH;
    let done = limited ? rows.length < pageSize : result.done;
    if (!limited && !result.done && result.nextRecordsUrl !== undefined) next.next = result.nextRecordsUrl;
    if (!limited && !result.done && result.nextRecordsUrl === undefined) done = true;

    if (done && !full) records.push(...(await this.readDeleted(object, next, new Set(records.map((r) => r.id)))));
    if (done && full) delete next.full;
    return { records, nextCursor: formatCursor(next), done };
  }

  /** getDeleted from the last covered time; catches deletions already purged from the recycle bin. */
  private async readDeleted(object: string, cursor: PullCursor, seen: Set<string>): Promise<RemoteRecord[]> {
    const now = this.now();
    if (!this.getDeletedAvailable) return [];
    if (cursor.del === undefined) {
      cursor.del = new Date(now).toISOString();
      return [];
    }
    const since = Date.parse(cursor.del);
    // getDeleted has minute granularity and looks back at most 15 days (REST API, "Get Deleted Records").
    if (now - since < 60_000) return [];
    const start = new Date(Math.max(since, now - 15 * 86_400_000 + 60_000)).toISOString();
    try {
      const result = await this.client.getDeleted(object, start, new Date(now).toISOString());
      cursor.del = iso(result.latestDateCovered) ?? cursor.del;
      return result.deletedRecords
        .filter((d) => !seen.has(d.id))
        .map((d) => ({
          object,
          id: d.id,
          fields: { Id: d.id },
          modifiedAt: iso(d.deletedDate) ?? new Date(now).toISOString(),
          deleted: true,
          origin: 'unknown' as const,
        }));
    } catch (error) {
      if (error instanceof CrmhubError && error.code === 'NOT_FOUND') {
        this.getDeletedAvailable = false;
        this.options.logger?.warn({ object }, 'getDeleted is not available; relying on queryAll for deletes');
        return [];
      }
      throw error;
    }
  }

  async readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]> {
    this.knownObject(object);
    const valid = [...new Set(ids.filter(isSalesforceId))];
    if (valid.length === 0) return [];
    const list = await this.readFields(object, fields);
    // Leave room for up to 200 ids (≈ 25 encoded characters each) in every query.
    const perQuery = Math.min(valid.length, 200);
    const idRoom = perQuery * encodedLength("'XXXXXXXXXXXXXXXXXX',");
    const [first = [], ...others] = splitFieldList(ALWAYS, list, encodedLength(`FROM ${object} WHERE Id IN ()`) + idRoom, this.maxQueryChars);
    const rows: Record<string, JsonValue>[] = [];
    const firstFields = [...ALWAYS, ...first];
    for (const part of chunk(valid, perQuery)) {
      rows.push(...(await this.queryAllPages(selectSoql(object, firstFields, soqlIn('Id', part)), false)));
    }
    await this.fillGroups(object, rows, others, false);
    return rows.map((r) => this.toRemote(object, r));
  }

  /**
   * Records whose fields match any of the given values (`Email IN (…) OR LastName IN (…)`), every
   * value escaped. For reconciliation and admin lookups — writes never look up before creating
   * (design.md §8.1); they upsert by Crmhub_Id__c.
   */
  async findByFields(object: string, match: Record<string, string[]>, fields?: string[]): Promise<RemoteRecord[]> {
    this.knownObject(object);
    const clauses = Object.entries(match)
      .filter(([, values]) => values.length > 0)
      .map(([field, values]) => soqlIn(field, values));
    if (clauses.length === 0) return [];
    const list = await this.readFields(object, fields);
    const rows = await this.queryAllPages(selectSoql(object, list, clauses.join(' OR ')), false);
    return rows.map((r) => this.toRemote(object, r));
  }

  // ---- writes ---------------------------------------------------------------------------------

  private salesforceFields(object: string, fields: FieldValues): Record<string, JsonValue> {
    const described = this.describedFields.get(object);
    const out: Record<string, JsonValue> = {};
    for (const [key, value] of Object.entries(fields)) {
      // Id travels separately (collections `id`, Bulk `Id`); SystemModstamp and friends are read-only.
      if (key === 'Id' || key === 'attributes') continue;
      out[key] = toSalesforceValue(value, described?.get(key));
    }
    return out;
  }

  async write(object: string, items: WriteItem[]): Promise<WriteOutcome[]> {
    this.knownObject(object);
    const outcomes: WriteOutcome[] = [];
    const plan: WritePlan = { deletes: [], updates: [], upserts: new Map(), creates: [] };
    for (const item of items) {
      if (item.delete === true) {
        if (item.remoteId === undefined) {
          outcomes.push({ ref: item.ref, ok: false, error: new CrmhubError('payload', 'delete without a remote id', { code: 'DELETE_WITHOUT_ID', context: { object, record: item.ref } }) });
        } else plan.deletes.push(item);
      } else if (item.remoteId !== undefined) plan.updates.push(item);
      else if (item.upsertKey !== undefined) {
        const list = plan.upserts.get(item.upsertKey.field) ?? [];
        list.push(item);
        plan.upserts.set(item.upsertKey.field, list);
      } else plan.creates.push(item);
    }
    const bulk = items.length >= (this.options.bulkThreshold ?? DEFAULT_BULK_THRESHOLD);
    outcomes.push(...(await (bulk ? this.writeBulk(object, plan) : this.writeCollections(object, plan))));
    if (object === 'Lead') return this.followConvertedLeads(items, outcomes);
    return outcomes;
  }

  private matchResults(object: string, batch: WriteItem[], results: SaveResult[]): WriteOutcome[] {
    return batch.map((item, i): WriteOutcome => {
      const result = results[i];
      if (result === undefined) {
        return { ref: item.ref, ok: false, error: new CrmhubError('transient', 'Salesforce returned fewer results than records', { code: 'RESULT_MISSING', context: { object, record: item.ref } }) };
      }
      if (result.success && typeof result.id === 'string') {
        return { ref: item.ref, ok: true, remoteId: result.id, created: result.created ?? false };
      }
      if (result.success && item.remoteId !== undefined) {
        return { ref: item.ref, ok: true, remoteId: item.remoteId, created: false };
      }
      const errors = result.errors.map((e) => ({ statusCode: e.statusCode ?? e.errorCode ?? 'UNKNOWN_RECORD_ERROR', message: e.message, fields: e.fields }));
      return { ref: item.ref, ok: false, error: classifyRecordError(errors, { object, record: item.ref }) };
    });
  }

  /**
   * Runs one collections call (≤ 200 records). When an earlier call of the same write already
   * succeeded, a failing call fails only its own records (their outcomes carry the error) so the
   * results already obtained are not lost; a failing first call rejects the whole write.
   */
  private async collectionsCall(
    object: string,
    batch: WriteItem[],
    call: () => Promise<SaveResult[]>,
    state: { anyDone: boolean },
  ): Promise<WriteOutcome[]> {
    try {
      const outcomes = this.matchResults(object, batch, await call());
      state.anyDone = true;
      return outcomes;
    } catch (error) {
      if (!state.anyDone || !(error instanceof CrmhubError)) throw error;
      return batch.map((item) => ({ ref: item.ref, ok: false as const, error }));
    }
  }

  private async writeCollections(object: string, plan: WritePlan): Promise<WriteOutcome[]> {
    const out: WriteOutcome[] = [];
    const state = { anyDone: false };
    for (const batch of chunk(plan.deletes, COLLECTION_MAX)) {
      out.push(...(await this.collectionsCall(object, batch, () => this.client.collectionsDelete(batch.map((i) => i.remoteId ?? '')), state)));
    }
    for (const batch of chunk(plan.updates, COLLECTION_MAX)) {
      const records = batch.map((i) => ({ id: i.remoteId, ...this.salesforceFields(object, i.fields) }));
      out.push(...(await this.collectionsCall(object, batch, () => this.client.collectionsUpdate(object, records), state)));
    }
    for (const [field, list] of plan.upserts) {
      for (const batch of chunk(list, COLLECTION_MAX)) {
        const records = batch.map((i) => ({ ...this.salesforceFields(object, i.fields), [field]: i.upsertKey?.value ?? null }));
        out.push(...(await this.collectionsCall(object, batch, () => this.client.collectionsUpsert(object, field, records), state)));
      }
    }
    for (const batch of chunk(plan.creates, COLLECTION_MAX)) {
      const records = batch.map((i) => this.salesforceFields(object, i.fields));
      out.push(...(await this.collectionsCall(object, batch, () => this.client.collectionsCreate(object, records), state)));
    }
    return out;
  }

  private async writeBulk(object: string, plan: WritePlan): Promise<WriteOutcome[]> {
    const { deletes, updates, upserts, creates } = plan;
    const bulkOptions = {
      pollIntervalMs: this.options.bulkPollIntervalMs ?? 1_000,
      timeoutMs: this.options.bulkTimeoutMs ?? 600_000,
    };
    const out: WriteOutcome[] = [];
    const rowsOf = (list: WriteItem[], key?: string): BulkRow[] =>
      list.map((i) => ({
        ref: i.ref,
        values: {
          ...this.salesforceFields(object, i.fields),
          ...(key === 'Id' ? { Id: i.remoteId ?? '' } : {}),
          ...(key !== undefined && key !== 'Id' ? { [key]: i.upsertKey?.value ?? '' } : {}),
        },
      }));
    if (deletes.length > 0) {
      const rows = deletes.map((i) => ({ ref: i.ref, values: { Id: i.remoteId ?? '' } }));
      out.push(...(await runIngestJob(this.client, object, 'delete', 'Id', rows, bulkOptions)));
    }
    if (updates.length > 0) out.push(...(await runIngestJob(this.client, object, 'update', 'Id', rowsOf(updates, 'Id'), bulkOptions)));
    for (const [field, list] of upserts) {
      out.push(...(await runIngestJob(this.client, object, 'upsert', field, rowsOf(list, field), bulkOptions)));
    }
    if (creates.length > 0) out.push(...(await runIngestJob(this.client, object, 'insert', undefined, rowsOf(creates), bulkOptions)));
    return out;
  }

  /**
   * A converted Lead refuses writes; its data now lives on the Contact it became. Those records are
   * written to the Contact instead (Lead-only fields dropped) and reported with `movedFrom`.
   */
  private async followConvertedLeads(items: WriteItem[], outcomes: WriteOutcome[]): Promise<WriteOutcome[]> {
    const byRef = new Map(items.map((i) => [i.ref, i]));
    const blocked = outcomes.filter((o) => !o.ok && o.error.code === CONVERTED_LEAD_CODE).map((o) => byRef.get(o.ref)).filter((i): i is WriteItem => i !== undefined);
    if (blocked.length === 0) return outcomes;
    const byId = blocked.filter((i) => i.remoteId !== undefined);
    const byKey = blocked.filter((i) => i.remoteId === undefined && i.upsertKey?.field === CRMHUB_ID_FIELD);
    const leads: Record<string, JsonValue>[] = [];
    const fields = ['Id', 'ConvertedContactId', CRMHUB_ID_FIELD];
    for (const part of chunk(byId.map((i) => i.remoteId ?? ''), 200)) {
      leads.push(...(await this.queryAllPages(selectSoql('Lead', fields, soqlIn('Id', part)), false)));
    }
    for (const part of chunk(byKey.map((i) => i.upsertKey?.value ?? ''), 200)) {
      leads.push(...(await this.queryAllPages(selectSoql('Lead', fields, soqlIn(CRMHUB_ID_FIELD, part)), false)));
    }
    const follow: { item: WriteItem; leadId: string; contactId: string }[] = [];
    for (const item of [...byId, ...byKey]) {
      const lead = leads.find((l) => (item.remoteId !== undefined ? l['Id'] === item.remoteId : l[CRMHUB_ID_FIELD] === item.upsertKey?.value));
      const contactId = lead?.['ConvertedContactId'];
      if (lead !== undefined && typeof contactId === 'string') follow.push({ item, leadId: lead['Id'] as string, contactId });
    }
    if (follow.length === 0) return outcomes;
    const contactItems: WriteItem[] = follow.map(({ item, contactId }) => ({
      ref: item.ref,
      remoteId: contactId,
      fields: Object.fromEntries(Object.entries(item.fields).filter(([k]) => !LEAD_ONLY_FIELDS.has(k))),
    }));
    const followed = await this.writeCollections('Contact', { deletes: [], updates: contactItems, upserts: new Map(), creates: [] });
    const replaced = new Map(
      followed.map((o): [string, WriteOutcome] => {
        const leadId = follow.find((f) => f.item.ref === o.ref)?.leadId;
        return [o.ref, o.ok && leadId !== undefined ? { ...o, created: false, movedFrom: leadId } : o];
      }),
    );
    return outcomes.map((o) => replaced.get(o.ref) ?? o);
  }

  // ---- webhooks -------------------------------------------------------------------------------

  async handleWebhook(request: WebhookRequest): Promise<WebhookResult> {
    let result: WebhookResult;
    try {
      result = handleSalesforceWebhook(request, {
        token: this.options.webhookToken,
        orgId: this.options.orgId,
        clientName: this.clientName,
      });
    } catch (error) {
      throw error instanceof CrmhubError ? error : new CrmhubError('payload', 'Salesforce webhook could not be read', { code: 'WEBHOOK_MALFORMED', cause: error });
    }
    // Outbound Message values are text: give them their JSON types (from describe, fetched once per
    // object) and one datetime form, so they compare equal to what pulls read.
    for (const change of result.changes) {
      if (change.fields === undefined) continue;
      const described = findObject(change.object) === undefined ? undefined : await this.describeRaw(change.object).then(
        () => this.describedFields.get(change.object),
        () => undefined,
      );
      for (const [key, value] of Object.entries(change.fields)) change.fields[key] = normaliseDateTime(fromSalesforceText(value, described?.get(key)));
    }
    return result;
  }
}
