/**
 * REST API routes under `/services/data/vNN.N`: versions, resources, describeGlobal/describe,
 * sObject CRUD, upsert by external id, getUpdated/getDeleted, SOQL query/queryAll with
 * `nextRecordsUrl` paging, sObject Collections and `/limits`. Shapes follow the REST API
 * Developer Guide and what jsforce 3.10.16 sends and parses (lib/connection.js, lib/query.js).
 */
/* eslint-disable @typescript-eslint/require-await -- Fastify handlers are async on purpose: return values are sent and throws become rejections for the error handler. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { normalizeId } from './ids.ts';
import { SfRequestError, saveError, type WriteOutcome } from './org.ts';
import { describeField, describeObjectSummary, SOBJECTS, type SfObjectDef } from './schema.ts';
import { apiContext, sendSfErrors } from './http.ts';
import { planQuery, runQuery } from './soql.ts';
import type { SalesforceSandbox } from './salesforce-sandbox.ts';
import { formatDateTime, parseDateTime, show, type SfRecord, type SfSaveError } from './values.ts';

type Params = Record<string, string>;
type Query = Record<string, string | undefined>;

const COLLECTION_CAP = 200;
const RETRIEVE_CAP = 2000;

const recordBody = z.record(z.string(), z.unknown());
const collectionBody = z.object({
  allOrNone: z.boolean().optional(),
  records: z.array(z.record(z.string(), z.unknown())),
});
const retrieveBody = z.object({ ids: z.array(z.string()), fields: z.array(z.string()) });

const ROLLED_BACK: SfSaveError = {
  statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK',
  message: 'Record rolled back because not all records were valid and the request was using AllOrNone header',
  fields: [],
};

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new SfRequestError(400, 'JSON_PARSER_ERROR', `Cannot deserialize the request body: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** REST single-record failure body: errorCode (not statusCode) per error. */
function restErrors(errors: SfSaveError[]): { message: string; errorCode: string; fields: string[] }[] {
  return errors.map((e) => ({ message: e.message, errorCode: e.statusCode, fields: e.fields }));
}

function capExceeded(): SfRequestError {
  // Salesforce answers a 201-record collection with EXCEEDED_ID_LIMIT (seen in public reports of the
  // real message; REST API Developer Guide "sObject Collections": up to 200 records).
  return new SfRequestError(400, 'EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 200 records into this call');
}

export function registerRestRoutes(app: FastifyInstance, sb: SalesforceSandbox): void {
  const base = (version: string): string => `/services/data/${version}`;
  const urlOf = (version: string) => (object: string, id: string) => `${base(version)}/sobjects/${object}/${id}`;
  const v = (request: FastifyRequest): string => (request.params as Params).version ?? 'v62.0';

  const withAttributes = (version: string, object: SfObjectDef, row: SfRecord, fields?: string[]): Record<string, unknown> => {
    const out: Record<string, unknown> = { attributes: { type: object.name, url: urlOf(version)(object.name, String(row.Id)) } };
    const list = fields ?? object.fields.map((f) => f.name);
    for (const name of list) {
      const f = object.byName.get(name.toLowerCase());
      if (!f) throw new SfRequestError(400, 'INVALID_FIELD', `No such column '${name}' on entity '${object.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`);
      out[f.name] = row[f.name] ?? null;
    }
    return out;
  };

  app.get('/services/data', async () =>
    ['58.0', '59.0', '60.0', '61.0', '62.0', '63.0', '64.0'].map((version) => ({ label: `API ${version}`, url: `/services/data/v${version}`, version })),
  );

  app.get('/services/data/:version', async (request) => {
    const b = base(v(request));
    return {
      limits: `${b}/limits`,
      sobjects: `${b}/sobjects`,
      query: `${b}/query`,
      queryAll: `${b}/queryAll`,
      composite: `${b}/composite`,
      jobs: `${b}/jobs`,
    };
  });

  app.get('/services/data/:version/limits', async () => {
    const max = sb.quota.limit;
    const remaining = Math.max(0, max - sb.quota.used);
    const fixed = (m: number) => ({ Max: m, Remaining: m });
    return {
      ConcurrentAsyncGetReportInstances: fixed(200),
      ConcurrentSyncReportRuns: fixed(20),
      DailyApiRequests: { Max: max, Remaining: remaining },
      DailyAsyncApexExecutions: fixed(250_000),
      DailyBulkApiBatches: fixed(15_000),
      DailyBulkV2QueryFileStorageMB: fixed(976_562),
      DailyBulkV2QueryJobs: { Max: 10_000, Remaining: Math.max(0, 10_000 - sb.queryJobs.size) },
      DailyStreamingApiEvents: fixed(1_000_000),
      DailyWorkflowEmails: fixed(2_000_000),
      DataStorageMB: fixed(1024),
      FileStorageMB: fixed(1024),
      HourlyODataCallout: fixed(10_000),
      SingleEmail: fixed(5_000),
    };
  });

  // ----- describe -----------------------------------------------------------------------------

  app.get('/services/data/:version/sobjects', async (request) => ({
    encoding: 'UTF-8',
    maxBatchSize: 200,
    sobjects: [...SOBJECTS.values()].map((o) => describeObjectSummary(o, base(v(request)))),
  }));

  app.get('/services/data/:version/sobjects/:type', async (request) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    return { objectDescribe: describeObjectSummary(object, base(v(request))), recentItems: [] };
  });

  app.get('/services/data/:version/sobjects/:type/describe', async (request) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    return {
      ...describeObjectSummary(object, base(v(request))),
      childRelationships: [],
      fields: object.fields.map(describeField),
      recordTypeInfos: [],
      supportedScopes: [{ label: 'All', name: 'everything' }, { label: 'Mine', name: 'mine' }],
    };
  });

  // ----- CRUD ---------------------------------------------------------------------------------

  const sendWrite = (reply: FastifyReply, outcome: WriteOutcome, successStatus: number, body: unknown): FastifyReply => {
    if (!outcome.ok) return sendSfErrors(reply, 400, restErrors(outcome.errors));
    if (successStatus === 204) return reply.code(204).send();
    return reply.code(successStatus).send(body);
  };

  app.post('/services/data/:version/sobjects/:type', async (request, reply) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    const body = parseBody(recordBody, request.body);
    if (Object.keys(body).some((k) => k.toLowerCase() === 'id')) {
      return sendSfErrors(reply, 400, [{ message: 'Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.', errorCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', fields: ['Id'] }]);
    }
    const outcome = sb.org.create(object.name, body, apiContext(request));
    return sendWrite(reply, outcome, 201, outcome.ok ? { id: outcome.id, success: true, errors: [] } : null);
  });

  app.get('/services/data/:version/sobjects/:type/:id', async (request, reply) => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const row = sb.org.get(object, p.id ?? '');
    if (!row || row.IsDeleted === true) return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const fields = (request.query as Query).fields?.split(',').map((s) => s.trim()).filter(Boolean);
    return withAttributes(v(request), object, row, fields);
  });

  app.patch('/services/data/:version/sobjects/:type/:id', async (request, reply) => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const row = sb.org.get(object, p.id ?? '');
    if (!row) return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const body = parseBody(recordBody, request.body ?? {});
    const fields = Object.fromEntries(Object.entries(body).filter(([k]) => k.toLowerCase() !== 'id'));
    return sendWrite(reply, sb.org.update(object.name, p.id ?? '', fields, apiContext(request)), 204, null);
  });

  app.delete('/services/data/:version/sobjects/:type/:id', async (request, reply) => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const row = sb.org.get(object, p.id ?? '');
    if (!row) return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const outcome = sb.org.remove(object.name, p.id ?? '', apiContext(request));
    if (!outcome.ok) return sendSfErrors(reply, outcome.errors[0]?.statusCode === 'ENTITY_IS_DELETED' ? 404 : 400, restErrors(outcome.errors));
    return reply.code(204).send();
  });

  // ----- by external id -------------------------------------------------------------------------

  const byExternalId = (request: FastifyRequest): { object: SfObjectDef; ids: string[]; field: string; value: string } => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const field = sb.org.externalIdField(object, p.field ?? '');
    const value = p.value ?? '';
    const ids = field.name === 'Id' ? [normalizeId(value) ?? value] : sb.org.lookup(object, field, value);
    return { object, ids, field: field.name, value };
  };

  app.patch('/services/data/:version/sobjects/:type/:field/:value', async (request, reply) => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const body = parseBody(recordBody, request.body ?? {});
    if (Object.keys(body).some((k) => k.toLowerCase() === 'id')) {
      return sendSfErrors(reply, 400, [{ message: 'Id not specified in an update call', errorCode: 'INVALID_FIELD', fields: ['Id'] }]);
    }
    const updateOnly = (request.query as Query).updateOnly === 'true';
    const field = sb.org.externalIdField(object, p.field ?? '');
    if (updateOnly && field.name !== 'Id' && sb.org.lookup(object, field, p.value ?? '').length === 0) {
      return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    const outcome = sb.org.upsert(object.name, field.name, p.value ?? '', body, apiContext(request));
    if (!outcome.ok && outcome.multiple) {
      return reply.code(300).send(outcome.multiple.map((id) => urlOf(v(request))(object.name, id)));
    }
    if (!outcome.ok) return sendSfErrors(reply, 400, restErrors(outcome.errors));
    // Since API 46 an update answers 200 with a body (created:false); older versions 204.
    return reply.code(outcome.created ? 201 : 200).send({ id: outcome.id, success: true, errors: [], created: outcome.created });
  });

  app.get('/services/data/:version/sobjects/:type/:field/:value', async (request, reply) => {
    const { object, ids } = byExternalId(request);
    const live = ids.map((id) => sb.org.get(object, id)).filter((r): r is SfRecord => r !== undefined && r.IsDeleted !== true);
    if (live.length === 0) return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (live.length > 1) return reply.code(300).send(live.map((r) => urlOf(v(request))(object.name, String(r.Id))));
    const fields = (request.query as Query).fields?.split(',').map((s) => s.trim()).filter(Boolean);
    const only = live[0];
    return only ? withAttributes(v(request), object, only, fields) : null;
  });

  app.delete('/services/data/:version/sobjects/:type/:field/:value', async (request, reply) => {
    const { object, ids } = byExternalId(request);
    const live = ids.filter((id) => sb.org.get(object, id)?.IsDeleted === false);
    if (live.length === 0) return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (live.length > 1) return reply.code(300).send(live.map((id) => urlOf(v(request))(object.name, id)));
    const outcome = sb.org.remove(object.name, live[0] ?? '', apiContext(request));
    if (!outcome.ok) return sendSfErrors(reply, 400, restErrors(outcome.errors));
    return reply.code(204).send();
  });

  // ----- getUpdated / getDeleted ----------------------------------------------------------------

  /** start/end as ms, seconds dropped (REST API Developer Guide: "seconds are ignored"). */
  const window = (request: FastifyRequest, maxDays: number): { start: number; end: number } => {
    const q = request.query as Query;
    if (!q.start || !q.end) throw new SfRequestError(400, 'MISSING_ARGUMENT', 'start and end are required');
    const start = parseDateTime(q.start);
    const end = parseDateTime(q.end);
    if (Number.isNaN(start) || Number.isNaN(end)) throw new SfRequestError(400, 'INVALID_REPLICATION_DATE', 'Invalid start or end date');
    const minute = 60_000;
    const s = start - (start % minute);
    const e = end - (end % minute);
    if (e < s) throw new SfRequestError(400, 'INVALID_REPLICATION_DATE', 'EndDate before StartDate');
    if (sb.now() - s > maxDays * 86_400_000) throw new SfRequestError(400, 'INVALID_REPLICATION_DATE', `startDate cannot be more than ${maxDays} days ago`);
    return { start: s, end: e };
  };

  app.get('/services/data/:version/sobjects/:type/updated', async (request) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    const { start, end } = window(request, 30);
    const ids: string[] = [];
    for (const row of sb.org.table(object).values()) {
      if (row.IsDeleted === true) continue;
      const stamp = parseDateTime(String(row.SystemModstamp));
      if (stamp >= start && stamp < end) ids.push(String(row.Id));
    }
    if (ids.length > 600_000) throw new SfRequestError(400, 'EXCEEDED_ID_LIMIT', 'too many ids: more than 600000 results for getUpdated');
    return { ids, latestDateCovered: formatDateTime(Math.min(end, sb.now() - (sb.now() % 60_000))) };
  });

  app.get('/services/data/:version/sobjects/:type/deleted', async (request) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    const { start, end } = window(request, 15);
    const deletedRecords: { id: string; deletedDate: string }[] = [];
    let earliest = Number.POSITIVE_INFINITY;
    for (const row of sb.org.table(object).values()) {
      if (row.IsDeleted !== true) continue;
      const at = sb.org.deletedAt.get(String(row.Id));
      if (at === undefined) continue;
      earliest = Math.min(earliest, at);
      if (at >= start && at < end) deletedRecords.push({ id: String(row.Id), deletedDate: formatDateTime(at) });
    }
    return {
      deletedRecords,
      earliestDateAvailable: formatDateTime(Number.isFinite(earliest) ? earliest - (earliest % 60_000) : start),
      latestDateCovered: formatDateTime(Math.min(end, sb.now() - (sb.now() % 60_000))),
    };
  });

  // ----- SOQL ---------------------------------------------------------------------------------

  const batchSize = (request: FastifyRequest): number => {
    const header = request.headers['sforce-query-options'];
    const raw = Array.isArray(header) ? header.join(',') : (header ?? '');
    const n = Number(/batchSize=(\d+)/i.exec(raw)?.[1] ?? 2000);
    return Math.min(2000, Math.max(200, Number.isFinite(n) ? n : 2000));
  };

  const runSoql = (request: FastifyRequest, includeDeleted: boolean) => {
    const q = (request.query as Query).q;
    if (!q) throw new SfRequestError(400, 'MALFORMED_QUERY', 'A query string has to be specified');
    const plan = planQuery(q, sb.now());
    const out = runQuery(plan, sb.org.table(plan.object).values(), {
      includeDeleted,
      urlOf: urlOf(v(request)),
      lookupParent: (object, id) => sb.org.get(object, id),
    });
    if (plan.countOnly) return { totalSize: out.totalSize, done: true, records: [] };
    return sb.firstPage(v(request), out.records, out.totalSize, batchSize(request));
  };

  const nextPage = (request: FastifyRequest) => {
    const locator = (request.params as Params).locator ?? '';
    const dash = locator.lastIndexOf('-');
    if (dash < 0) throw new SfRequestError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    return sb.page(v(request), locator.slice(0, dash), Number(locator.slice(dash + 1)));
  };

  app.get('/services/data/:version/query', async (request) => runSoql(request, false));
  app.get('/services/data/:version/queryAll', async (request) => runSoql(request, true));
  app.get('/services/data/:version/query/:locator', async (request) => nextPage(request));
  app.get('/services/data/:version/queryAll/:locator', async (request) => nextPage(request));

  // ----- sObject Collections ------------------------------------------------------------------

  type Item = Record<string, unknown>;
  const typeOf = (record: Item): string | undefined => {
    const attrs = record.attributes as { type?: unknown } | undefined;
    return typeof attrs?.type === 'string' ? attrs.type : undefined;
  };

  /** Runs per-record writes in one transaction, rolling back all when allOrNone and one failed. */
  const collection = (allOrNone: boolean, records: Item[], write: (record: Item, index: number, tx: Parameters<Parameters<typeof sb.org.transact>[0]>[0]) => WriteOutcome, extra?: (o: WriteOutcome) => Record<string, unknown>) => {
    const outcomes = sb.org.transact(
      (tx) => records.map((r, i) => write(r, i, tx)),
      (results) => allOrNone && results.some((o) => !o.ok),
    );
    const failed = outcomes.some((o) => !o.ok);
    return outcomes.map((o) => {
      if (o.ok && allOrNone && failed) return { id: o.id, success: false, errors: [ROLLED_BACK] };
      if (o.ok) return { id: o.id, success: true, errors: [], ...(extra ? extra(o) : {}) };
      return { ...(o.id ? { id: o.id } : {}), success: false, errors: o.errors };
    });
  };

  app.post('/services/data/:version/composite/sobjects', async (request) => {
    const body = parseBody(collectionBody, request.body);
    if (body.records.length > COLLECTION_CAP) throw capExceeded();
    const ctx = apiContext(request);
    return collection(body.allOrNone ?? false, body.records, (record, _i, tx) => {
      const type = typeOf(record);
      if (!type) return { ok: false, errors: [saveError('INVALID_TYPE', 'Must send a concrete entity type.')] };
      if (Object.keys(record).some((k) => k.toLowerCase() === 'id')) {
        return { ok: false, errors: [saveError('INVALID_FIELD', 'Cannot specify Id in an insert call', ['Id'])] };
      }
      try {
        return sb.org.create(type, record, ctx, tx);
      } catch (error) {
        if (error instanceof SfRequestError) return { ok: false, errors: [saveError('INVALID_TYPE', `sObject type '${type}' is not supported.`)] };
        throw error;
      }
    });
  });

  app.patch('/services/data/:version/composite/sobjects', async (request) => {
    const body = parseBody(collectionBody, request.body);
    if (body.records.length > COLLECTION_CAP) throw capExceeded();
    const ctx = apiContext(request);
    return collection(body.allOrNone ?? false, body.records, (record, _i, tx) => {
      const type = typeOf(record);
      const idKey = Object.keys(record).find((k) => k.toLowerCase() === 'id');
      const id = idKey ? record[idKey] : undefined;
      if (!type) return { ok: false, errors: [saveError('INVALID_TYPE', 'Must send a concrete entity type.')] };
      if (typeof id !== 'string') return { ok: false, errors: [saveError('MISSING_ARGUMENT', 'Id not specified in an update call')] };
      const fields = Object.fromEntries(Object.entries(record).filter(([k]) => k !== idKey));
      const outcome = sb.org.update(type, id, fields, ctx, tx);
      return outcome.ok ? outcome : { ...outcome, id };
    });
  });

  app.patch('/services/data/:version/composite/sobjects/:type/:field', async (request) => {
    const p = request.params as Params;
    const object = sb.org.object(p.type ?? '');
    const field = object.byName.get((p.field ?? '').toLowerCase());
    if (!field || (!field.externalId && !field.idLookup)) {
      throw new SfRequestError(400, 'INVALID_FIELD', `Field name provided, ${p.field ?? ''} does not match an External ID, Salesforce Id, or indexed field for ${object.name}`);
    }
    const body = parseBody(collectionBody, request.body);
    if (body.records.length > COLLECTION_CAP) throw capExceeded();
    const ctx = apiContext(request);
    const valueOf = (record: Item): string | undefined => {
      const key = Object.keys(record).find((k) => k.toLowerCase() === field.name.toLowerCase());
      const raw = key ? record[key] : undefined;
      return raw === undefined || raw === null || raw === '' ? undefined : show(raw);
    };
    const seen = new Map<string, number>();
    for (const r of body.records) {
      const value = valueOf(r);
      if (value !== undefined) seen.set(value.toLowerCase(), (seen.get(value.toLowerCase()) ?? 0) + 1);
    }
    return collection(
      body.allOrNone ?? false,
      body.records,
      (record, _i, tx) => {
        const type = typeOf(record);
        if (type && type.toLowerCase() !== object.name.toLowerCase()) {
          return { ok: false, errors: [saveError('INVALID_FIELD', `The sObject type ${type} does not match the type of the request: ${object.name}`)] };
        }
        const value = valueOf(record);
        if (value === undefined) return { ok: false, errors: [saveError('MISSING_ARGUMENT', `${field.name} not specified`, [field.name])] };
        if ((seen.get(value.toLowerCase()) ?? 0) > 1) {
          return { ok: false, errors: [saveError('DUPLICATE_EXTERNAL_ID', `Duplicate external id specified: ${value}`, [field.name])] };
        }
        return sb.org.upsert(object.name, field.name, value, record, ctx, tx);
      },
      (o) => ({ created: o.ok && o.created }),
    );
  });

  app.delete('/services/data/:version/composite/sobjects', async (request) => {
    const q = request.query as Query;
    const ids = (q.ids ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) throw new SfRequestError(400, 'MISSING_ARGUMENT', 'ids parameter is required');
    if (ids.length > COLLECTION_CAP) throw capExceeded();
    const ctx = apiContext(request);
    return collection(
      q.allOrNone === 'true',
      ids.map((id) => ({ id })),
      (record, _i, tx) => {
        const id = String(record.id);
        const object = sb.org.objectOfId(id);
        if (!object) return { ok: false, id, errors: [saveError('MALFORMED_ID', `malformed id ${id}`)] };
        const outcome = sb.org.remove(object.name, id, ctx, tx);
        return outcome.ok ? outcome : { ...outcome, id };
      },
    );
  });

  const retrieve = (request: FastifyRequest, ids: string[], fields: string[]) => {
    const object = sb.org.object((request.params as Params).type ?? '');
    if (ids.length > RETRIEVE_CAP) throw new SfRequestError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${RETRIEVE_CAP} records into this call`);
    return ids.map((id) => {
      const row = sb.org.get(object, id);
      return row && row.IsDeleted !== true ? withAttributes(v(request), object, row, fields) : null;
    });
  };

  app.post('/services/data/:version/composite/sobjects/:type', async (request) => {
    const body = parseBody(retrieveBody, request.body);
    return retrieve(request, body.ids, body.fields);
  });

  app.get('/services/data/:version/composite/sobjects/:type', async (request) => {
    const q = request.query as Query;
    const split = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    return retrieve(request, split(q.ids), split(q.fields));
  });
}
