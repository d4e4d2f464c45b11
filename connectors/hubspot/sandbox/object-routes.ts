/**
 * CRM objects v3 routes of the HubSpot sandbox: CRUD, batch read/create/update/upsert/archive
 * (100-input cap, 207 multi-status with per-input errors), search (200 per page, 10,000-result
 * cap), merge. Paths as in `@hubspot/api-client` `codegen/crm/{contacts,companies,deals}/apis` and
 * the generic `/crm/v3/objects/{objectType}` form (`0-1`, `0-2`, `0-3`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SINGULAR, resolveObjectName, type ObjectName } from './property-catalog.ts';
import type { ChangeSource, RecordStore, StoredRecord, WriteResult } from './record-store.ts';
import { SEARCH_LIMITS, runSearch, searchRequestSchema } from './search-engine.ts';
import {
  batchEnvelope,
  inputError,
  listParam,
  parseOr400,
  sendError,
  toPublic,
  validationMessage,
  type HubSpotErrorBody,
  type PublicObject,
} from './http-shapes.ts';

export interface RouteContext {
  store: RecordStore;
  /** Change source of API writes: the token's app (`INTEGRATION`, sourceId = app id). */
  apiSource: ChangeSource;
}

/** HubSpot's batch cap (CRM objects guides: "up to 100"); with property history, 50. */
export const BATCH_LIMIT = 100;
export const HISTORY_BATCH_LIMIT = 50;

const propsSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));
const assocInput = z.object({
  to: z.object({ id: z.union([z.string(), z.number()]).transform(String) }),
  types: z.array(z.object({ associationCategory: z.enum(['HUBSPOT_DEFINED', 'USER_DEFINED', 'INTEGRATOR_DEFINED']), associationTypeId: z.number().int() })),
});
const createSchema = z.object({ properties: propsSchema.default({}), associations: z.array(assocInput).optional() });
const idString = z.union([z.string(), z.number()]).transform(String);
const batchReadSchema = z.object({
  inputs: z.array(z.object({ id: idString })),
  properties: z.array(z.string()).optional(),
  propertiesWithHistory: z.array(z.string()).optional(),
  idProperty: z.string().optional(),
});
const batchCreateSchema = z.object({ inputs: z.array(createSchema.extend({ objectWriteTraceId: z.string().optional() })) });
const batchUpdateSchema = z.object({
  inputs: z.array(z.object({ id: idString, idProperty: z.string().optional(), properties: propsSchema, objectWriteTraceId: z.string().optional() })),
});
const batchArchiveSchema = z.object({ inputs: z.array(z.object({ id: idString })) });
const mergeSchema = z.object({ primaryObjectId: idString, objectIdToMerge: idString });

type Params = { objectType: string; id?: string };

function objectOr400(request: FastifyRequest, reply: FastifyReply): ObjectName | null {
  const raw = (request.params as Params).objectType;
  const object = resolveObjectName(raw);
  if (!object) void sendError(reply, 400, 'VALIDATION_ERROR', `Unable to infer object type from: ${raw}`);
  return object;
}

function tooMany(reply: FastifyReply, count: number, limit = BATCH_LIMIT): FastifyReply {
  return sendError(reply, 400, 'VALIDATION_ERROR', `Too many inputs: ${count}. The maximum number of inputs supported in a batch request is ${limit}.`, {
    context: { maxInputs: [String(limit)], inputs: [String(count)] },
  });
}

/** The common start of a batch route: object type, body, 100-input cap. Null when already answered. */
function batchInput<T extends { inputs: unknown[] }>(request: FastifyRequest, reply: FastifyReply, schema: z.ZodType<T>): { object: ObjectName; body: T } | null {
  const object = objectOr400(request, reply);
  if (!object) return null;
  const body = parseOr400(schema, request.body, reply);
  if (!body) return null;
  if (body.inputs.length > BATCH_LIMIT) {
    void tooMany(reply, body.inputs.length);
    return null;
  }
  return { object, body };
}

type AssociationInput = z.infer<typeof assocInput>;

/** `associations` of a create body: the target type is implied by the type id, so try each object. */
function associateOnCreate(ctx: RouteContext, object: ObjectName, id: string, associations: AssociationInput[] | undefined): void {
  for (const a of associations ?? []) {
    const types = a.types.map((t) => ({ category: t.associationCategory, typeId: t.associationTypeId }));
    for (const to of ['companies', 'contacts', 'deals'] as const) if (ctx.store.associate(object, id, to, a.to.id, types, ctx.apiSource)) break;
  }
}

function duplicates(ids: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const id of ids.map((i) => i.toLowerCase())) (seen.has(id) ? dup : seen).add(id);
  return [...dup];
}

function notFoundMessage(object: ObjectName): string {
  return `Could not get some ${SINGULAR[object].toUpperCase()} objects, they may be deleted or not exist. Check that ids are valid.`;
}

/** Turns a failed write into the per-input `StandardError` of a 207. */
function writeError(object: ObjectName, result: Exclude<WriteResult, { ok: true }>, context: Record<string, string[]>): HubSpotErrorBody {
  switch (result.kind) {
    case 'validation':
      return inputError('VALIDATION_ERROR', validationMessage(result.issues), { ...context, propertyName: result.issues.map((i) => i.name) }, result.issues);
    case 'conflict':
      return inputError('CONFLICT', `${SINGULAR[object].replace(/^\w/, (c) => c.toUpperCase())} already exists. Existing ID: ${result.existingId}`, { ...context, existingId: [result.existingId], propertyName: [result.property] });
    default:
      return inputError('OBJECT_NOT_FOUND', notFoundMessage(object), context);
  }
}

/** Sends a failed single-record write with HubSpot's status for it (400, 409, 404). */
function sendWriteError(reply: FastifyReply, object: ObjectName, result: Exclude<WriteResult, { ok: true }>): FastifyReply {
  switch (result.kind) {
    case 'validation':
      return sendError(reply, 400, 'VALIDATION_ERROR', validationMessage(result.issues), { context: { propertyName: result.issues.map((i) => i.name) } });
    case 'conflict':
      return sendError(reply, 409, 'CONFLICT', `${SINGULAR[object].replace(/^\w/, (c) => c.toUpperCase())} already exists. Existing ID: ${result.existingId}`);
    default:
      return sendError(reply, 404, 'OBJECT_NOT_FOUND', 'resource not found');
  }
}

/** `associations=companies,deals` on reads: `{companies: {results: [{id, type}]}}`. */
function withAssociations(ctx: RouteContext, record: StoredRecord, out: PublicObject, associations: string[] | undefined): PublicObject & { associations?: Record<string, unknown> } {
  if (!associations || associations.length === 0) return out;
  const result: Record<string, unknown> = {};
  for (const name of associations) {
    const to = resolveObjectName(name);
    if (!to) continue;
    const links = ctx.store.associationsOf(record.object, record.id, to);
    if (links.length === 0) continue;
    result[to] = {
      results: links.flatMap(([toId, types]) => types.map((t) => ({ id: toId, type: `${SINGULAR[record.object]}_to_${SINGULAR[to]}${t.typeId === 1 || t.typeId === 5 ? '_primary' : ''}` }))),
    };
  }
  return { ...out, associations: result };
}

function lookup(ctx: RouteContext, object: ObjectName, id: string, idProperty: string | undefined): StoredRecord | undefined {
  if (idProperty && idProperty !== 'hs_object_id') return ctx.store.findByUnique(object, idProperty, id);
  return ctx.store.resolve(object, id);
}

export function registerObjectRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const base = '/crm/v3/objects/:objectType';
  let searchCache: { key: string; version: number; matched: StoredRecord[] } = { key: '', version: -1, matched: [] };

  app.get(base, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const q = request.query as Record<string, unknown>;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 10) || 10));
    const after = Number(q.after ?? 0) || 0;
    const archived = q.archived === 'true';
    const view = { properties: listParam(q.properties), propertiesWithHistory: listParam(q.propertiesWithHistory) };
    const associations = listParam(q.associations);
    const page: StoredRecord[] = [];
    let next: string | undefined;
    // Ids are ascending integers; `after` is the last id seen (HubSpot's is opaque).
    const ids = [...ctx.store.records[object].keys()].map(Number).filter((id) => id > after).sort((a, b) => a - b);
    for (const id of ids) {
      const r = ctx.store.records[object].get(String(id));
      if (!r || r.archived !== archived) continue;
      if (page.length === limit) {
        next = String(page[page.length - 1]?.id ?? '');
        break;
      }
      page.push(r);
    }
    return {
      results: page.map((r) => withAssociations(ctx, r, toPublic(r, view), associations)),
      ...(next ? { paging: { next: { after: next, link: `?after=${next}` } } } : {}),
    };
  });

  app.post(base, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const body = parseOr400(createSchema, request.body, reply);
    if (!body) return reply;
    const result = ctx.store.create(object, body.properties, ctx.apiSource);
    if (!result.ok) return sendWriteError(reply, object, result);
    associateOnCreate(ctx, object, result.record.id, body.associations);
    return reply.code(201).send(toPublic(result.record, { properties: Object.keys(body.properties) }));
  });

  app.get(`${base}/:id`, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const q = request.query as Record<string, unknown>;
    const id = (request.params as Params).id ?? '';
    const record = lookup(ctx, object, id, typeof q.idProperty === 'string' ? q.idProperty : undefined);
    const archived = q.archived === 'true';
    if (!record || record.archived !== archived) return sendError(reply, 404, 'OBJECT_NOT_FOUND', 'resource not found');
    const view = { properties: listParam(q.properties), propertiesWithHistory: listParam(q.propertiesWithHistory) };
    return withAssociations(ctx, record, toPublic(record, view), listParam(q.associations));
  });

  app.patch(`${base}/:id`, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const q = request.query as Record<string, unknown>;
    const body = parseOr400(z.object({ properties: propsSchema }), request.body, reply);
    if (!body) return reply;
    const record = lookup(ctx, object, (request.params as Params).id ?? '', typeof q.idProperty === 'string' ? q.idProperty : undefined);
    if (!record || record.archived) return sendError(reply, 404, 'OBJECT_NOT_FOUND', 'resource not found');
    const result = ctx.store.update(object, record.id, body.properties, ctx.apiSource);
    if (!result.ok) return sendWriteError(reply, object, result);
    return toPublic(result.record, { properties: Object.keys(body.properties) });
  });

  app.delete(`${base}/:id`, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    // Archiving an unknown or archived id answers 204 too (HubSpot's archive is idempotent).
    ctx.store.archive(object, (request.params as Params).id ?? '', ctx.apiSource);
    return reply.code(204).send();
  });

  app.post(`${base}/batch/read`, async (request, reply) => {
    const parsed = batchInput(request, reply, batchReadSchema);
    if (!parsed) return reply;
    const { object, body } = parsed;
    if ((body.propertiesWithHistory?.length ?? 0) > 0 && body.inputs.length > HISTORY_BATCH_LIMIT) {
      return sendError(reply, 400, 'VALIDATION_ERROR', 'The maximum number of inputs supported in a batch request for property histories is 50. Please reduce the number of items and try again');
    }
    const startedAt = new Date().toISOString();
    const archived = (request.query as Record<string, unknown>).archived === 'true';
    const results: PublicObject[] = [];
    const missing: string[] = [];
    const seen = new Set<string>();
    for (const input of body.inputs) {
      const r = lookup(ctx, object, input.id, body.idProperty);
      if (!r || r.archived !== archived) {
        missing.push(input.id);
        continue;
      }
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      results.push(toPublic(r, { properties: body.properties, propertiesWithHistory: body.propertiesWithHistory }));
    }
    const errors = missing.length > 0 ? [inputError('OBJECT_NOT_FOUND', notFoundMessage(object), { ids: missing })] : [];
    return reply.code(errors.length > 0 ? 207 : 200).send(batchEnvelope(results, errors, startedAt));
  });

  app.post(`${base}/batch/create`, async (request, reply) => {
    const parsed = batchInput(request, reply, batchCreateSchema);
    if (!parsed) return reply;
    const { object, body } = parsed;
    const startedAt = new Date().toISOString();
    const results: PublicObject[] = [];
    const errors: HubSpotErrorBody[] = [];
    for (const input of body.inputs) {
      const trace = input.objectWriteTraceId;
      const result = ctx.store.create(object, input.properties, ctx.apiSource);
      if (!result.ok) {
        errors.push(writeError(object, result, trace ? { objectWriteTraceId: [trace] } : {}));
        continue;
      }
      associateOnCreate(ctx, object, result.record.id, input.associations);
      const out = toPublic(result.record, { properties: Object.keys(input.properties) });
      if (trace) out.objectWriteTraceId = trace;
      results.push(out);
    }
    return reply.code(errors.length > 0 ? 207 : 201).send(batchEnvelope(results, errors, startedAt));
  });

  app.post(`${base}/batch/update`, async (request, reply) => {
    const parsed = batchInput(request, reply, batchUpdateSchema);
    if (!parsed) return reply;
    const { object, body } = parsed;
    const dup = duplicates(body.inputs.map((i) => i.id));
    if (dup.length > 0) return sendError(reply, 400, 'VALIDATION_ERROR', `Duplicate IDs found in batch input: [${dup.join(', ')}]. IDs must be unique`, { context: { ids: dup } });
    const startedAt = new Date().toISOString();
    const results: PublicObject[] = [];
    const errors: HubSpotErrorBody[] = [];
    for (const input of body.inputs) {
      const context: Record<string, string[]> = { ids: [input.id], ...(input.objectWriteTraceId ? { objectWriteTraceId: [input.objectWriteTraceId] } : {}) };
      const record = lookup(ctx, object, input.id, input.idProperty);
      const result: WriteResult = record && !record.archived ? ctx.store.update(object, record.id, input.properties, ctx.apiSource) : { ok: false, kind: 'not_found' };
      if (!result.ok) {
        errors.push(writeError(object, result, context));
        continue;
      }
      const out = toPublic(result.record, { properties: Object.keys(input.properties) });
      if (input.objectWriteTraceId) out.objectWriteTraceId = input.objectWriteTraceId;
      results.push(out);
    }
    return reply.code(errors.length > 0 ? 207 : 200).send(batchEnvelope(results, errors, startedAt));
  });

  app.post(`${base}/batch/upsert`, async (request, reply) => {
    const parsed = batchInput(request, reply, batchUpdateSchema);
    if (!parsed) return reply;
    const { object, body } = parsed;
    for (const input of body.inputs) {
      const idProperty = input.idProperty ?? 'hs_object_id';
      // Upsert needs a property with hasUniqueValue (spec: "idProperty … must be a unique property").
      if (idProperty !== 'hs_object_id' && !ctx.store.isUnique(object, idProperty)) {
        const exists = ctx.store.catalog[object].has(idProperty);
        return sendError(reply, 400, 'VALIDATION_ERROR', exists ? `Property "${idProperty}" is not a unique identifier property; upsert requires a property with hasUniqueValue set to true.` : `Property "${idProperty}" does not exist`, {
          context: { idProperty: [idProperty] },
        });
      }
    }
    const dup = duplicates(body.inputs.map((i) => `${i.idProperty ?? ''}|${i.id}`)).map((d) => d.split('|').slice(1).join('|'));
    if (dup.length > 0) return sendError(reply, 400, 'VALIDATION_ERROR', `Duplicate IDs found in batch input: [${dup.join(', ')}]. IDs must be unique`, { context: { ids: dup } });
    const startedAt = new Date().toISOString();
    const results: (PublicObject & { new: boolean })[] = [];
    const errors: HubSpotErrorBody[] = [];
    for (const input of body.inputs) {
      const idProperty = input.idProperty ?? 'hs_object_id';
      const context: Record<string, string[]> = { ids: [input.id], ...(input.objectWriteTraceId ? { objectWriteTraceId: [input.objectWriteTraceId] } : {}) };
      const existing = ctx.store.findByUnique(object, idProperty, input.id);
      let result: WriteResult;
      if (existing) result = ctx.store.update(object, existing.id, input.properties, ctx.apiSource);
      else if (idProperty === 'hs_object_id') result = { ok: false, kind: 'not_found' };
      else result = ctx.store.create(object, { ...input.properties, [idProperty]: input.id }, ctx.apiSource);
      if (!result.ok) {
        errors.push(writeError(object, result, context));
        continue;
      }
      const out = toPublic(result.record, { properties: [...new Set([...Object.keys(input.properties), ...(idProperty === 'hs_object_id' ? [] : [idProperty])])] });
      if (input.objectWriteTraceId) out.objectWriteTraceId = input.objectWriteTraceId;
      results.push({ ...out, new: result.created });
    }
    return reply.code(errors.length > 0 ? 207 : 200).send(batchEnvelope(results, errors, startedAt));
  });

  app.post(`${base}/batch/archive`, async (request, reply) => {
    const parsed = batchInput(request, reply, batchArchiveSchema);
    if (!parsed) return reply;
    const { object, body } = parsed;
    for (const input of body.inputs) ctx.store.archive(object, input.id, ctx.apiSource);
    return reply.code(204).send();
  });

  app.post(`${base}/search`, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const body = parseOr400(searchRequestSchema, request.body, reply);
    if (!body) return reply;
    const limit = body.limit ?? 10;
    if (limit < 1 || limit > SEARCH_LIMITS.maxLimit) return sendError(reply, 400, 'VALIDATION_ERROR', `limit must be between 1 and ${SEARCH_LIMITS.maxLimit}; got ${limit}`);
    const groups = body.filterGroups ?? [];
    const filterCount = groups.reduce((n, g) => n + g.filters.length, 0);
    if (groups.length > SEARCH_LIMITS.maxGroups || groups.some((g) => g.filters.length > SEARCH_LIMITS.maxFiltersPerGroup) || filterCount > SEARCH_LIMITS.maxFilters) {
      return sendError(reply, 400, 'VALIDATION_ERROR', `Too many filters: at most ${SEARCH_LIMITS.maxGroups} filterGroups, ${SEARCH_LIMITS.maxFiltersPerGroup} filters per group and ${SEARCH_LIMITS.maxFilters} filters in total are allowed.`);
    }
    if ((body.query?.length ?? 0) > 3000) return sendError(reply, 400, 'VALIDATION_ERROR', 'query must be at most 3000 characters');
    const offset = Number(body.after ?? 0);
    if (!Number.isInteger(offset) || offset < 0) return sendError(reply, 400, 'VALIDATION_ERROR', `Invalid after value: ${String(body.after)}`);
    // HubSpot search guide: "The search endpoints are limited to 10,000 total results for any given query.
    // Attempting to page beyond 10,000 will result in a 400 error."
    if (offset >= SEARCH_LIMITS.maxResults) {
      return sendError(reply, 400, 'VALIDATION_ERROR', `Search paging is limited to ${SEARCH_LIMITS.maxResults} results: after=${offset} is past the last page. Narrow the query (e.g. re-anchor on a modified-date filter) to read further.`, {
        context: { after: [String(offset)] },
      });
    }
    // Paging repeats one query with growing `after`: reuse its sorted matches while nothing changed.
    const key = `${object}|${JSON.stringify([body.filterGroups ?? [], body.sorts ?? [], body.query ?? ''])}`;
    let matched: StoredRecord[];
    if (searchCache.key === key && searchCache.version === ctx.store.version) matched = searchCache.matched;
    else {
      matched = runSearch(ctx.store.records[object].values(), body, ctx.store.catalog[object]);
      searchCache = { key, version: ctx.store.version, matched };
    }
    const end = Math.min(offset + limit, matched.length, SEARCH_LIMITS.maxResults);
    const results = matched.slice(offset, end).map((r) => toPublic(r, { properties: body.properties }));
    // Like HubSpot, the next link is offered whenever more results match, even at the cap: following
    // it to after=10000 is what fails.
    const hasNext = end < matched.length;
    return { total: matched.length, results, ...(hasNext ? { paging: { next: { after: String(end) } } } : {}) };
  });

  app.post(`${base}/merge`, async (request, reply) => {
    const object = objectOr400(request, reply);
    if (!object) return reply;
    const body = parseOr400(mergeSchema, request.body, reply);
    if (!body) return reply;
    if (body.primaryObjectId === body.objectIdToMerge) return sendError(reply, 400, 'VALIDATION_ERROR', 'Cannot merge an object with itself');
    const survivor = ctx.store.merge(object, body.primaryObjectId, body.objectIdToMerge, ctx.apiSource);
    if (!survivor) return sendError(reply, 404, 'OBJECT_NOT_FOUND', notFoundMessage(object));
    return toPublic(survivor);
  });
}
