/**
 * Properties API v3 and associations v4 routes of the HubSpot sandbox, plus the daily-usage
 * endpoint. Shapes: `@hubspot/api-client` `codegen/crm/properties/models/Property.d.ts`,
 * `codegen/crm/associations/v4/models/*` and the reference README §1.4–1.6.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { customProperty, resolveObjectName, type ObjectName } from './property-catalog.ts';
import { defaultTypeId, typeLabel, type AssociationType } from './record-store.ts';
import { batchEnvelope, inputError, parseOr400, sendError, type HubSpotErrorBody } from './http-shapes.ts';
import { BATCH_LIMIT, type RouteContext } from './object-routes.ts';

const createPropertySchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower case letters, digits and underscores'),
  label: z.string(),
  type: z.enum(['string', 'number', 'date', 'datetime', 'enumeration', 'bool']),
  fieldType: z.string(),
  groupName: z.string(),
  description: z.string().optional(),
  options: z.array(z.object({ label: z.string(), value: z.string(), displayOrder: z.number().optional(), hidden: z.boolean().optional() })).optional(),
  hasUniqueValue: z.boolean().optional(),
  hidden: z.boolean().optional(),
  formField: z.boolean().optional(),
});

const specSchema = z.object({ associationCategory: z.enum(['HUBSPOT_DEFINED', 'USER_DEFINED', 'INTEGRATOR_DEFINED']), associationTypeId: z.number().int() });
const idString = z.union([z.string(), z.number()]).transform(String);

function resolveOr400(raw: string, reply: FastifyReply): ObjectName | null {
  const object = resolveObjectName(raw);
  if (!object) void sendError(reply, 400, 'VALIDATION_ERROR', `Unable to infer object type from: ${raw}`);
  return object;
}

function toSpec(types: z.infer<typeof specSchema>[]): AssociationType[] {
  return types.map((t) => ({ category: t.associationCategory, typeId: t.associationTypeId }));
}

function typesWithLabels(types: AssociationType[]): { category: string; typeId: number; label: string | null }[] {
  return types.map((t) => ({ category: t.category, typeId: t.typeId, label: t.category === 'HUBSPOT_DEFINED' ? typeLabel(t.typeId) : `Label ${t.typeId}` }));
}

export function registerMetaRoutes(app: FastifyInstance, ctx: RouteContext, usage: () => { limit: number; used: number; resetsAt: string }): void {
  const { store } = ctx;

  // ---- properties ----
  app.get('/crm/v3/properties/:objectType', async (request, reply) => {
    const object = resolveOr400((request.params as { objectType: string }).objectType, reply);
    if (!object) return reply;
    const archived = (request.query as Record<string, unknown>).archived === 'true';
    return { results: [...store.catalog[object].values()].filter((p) => p.archived === archived) };
  });

  app.get('/crm/v3/properties/:objectType/:propertyName', async (request, reply) => {
    const { objectType, propertyName } = request.params as { objectType: string; propertyName: string };
    const object = resolveOr400(objectType, reply);
    if (!object) return reply;
    const def = store.catalog[object].get(propertyName);
    if (!def || def.archived) return sendError(reply, 404, 'OBJECT_NOT_FOUND', `Property ${propertyName} does not exist`, { context: { propertyName: [propertyName] } });
    return def;
  });

  app.post('/crm/v3/properties/:objectType', async (request, reply) => {
    const object = resolveOr400((request.params as { objectType: string }).objectType, reply);
    if (!object) return reply;
    const body = parseOr400(createPropertySchema, request.body, reply);
    if (!body) return reply;
    if (store.catalog[object].get(body.name)?.archived === false) return sendError(reply, 409, 'OBJECT_ALREADY_EXISTS', `Property named '${body.name}' already exists.`, { context: { propertyName: [body.name] } });
    const def = customProperty(
      { name: body.name, label: body.label, type: body.type, fieldType: body.fieldType, options: body.options?.map((o) => o.value) ?? [], unique: body.hasUniqueValue ?? false },
      body.groupName,
      new Date().toISOString(),
    );
    if (body.options) def.options = body.options.map((o, i) => ({ label: o.label, value: o.value, displayOrder: o.displayOrder ?? i, hidden: o.hidden ?? false }));
    def.description = body.description ?? '';
    store.catalog[object].set(def.name, def);
    return reply.code(201).send(def);
  });

  app.delete('/crm/v3/properties/:objectType/:propertyName', async (request, reply) => {
    const { objectType, propertyName } = request.params as { objectType: string; propertyName: string };
    const object = resolveOr400(objectType, reply);
    if (!object) return reply;
    const def = store.catalog[object].get(propertyName);
    if (!def) return sendError(reply, 404, 'OBJECT_NOT_FOUND', `Property ${propertyName} does not exist`);
    if (def.hubspotDefined) return sendError(reply, 400, 'VALIDATION_ERROR', `Property ${propertyName} is a HubSpot defined property and cannot be archived`);
    def.archived = true;
    return reply.code(204).send();
  });

  // ---- associations v4, one pair ----
  type PairParams = { objectType: string; objectId: string; toObjectType: string; toObjectId: string };
  const pair = (request: FastifyRequest, reply: FastifyReply): { from: ObjectName; to: ObjectName; p: PairParams } | null => {
    const p = request.params as PairParams;
    const from = resolveOr400(p.objectType, reply);
    if (!from) return null;
    const to = resolveOr400(p.toObjectType, reply);
    if (!to) return null;
    return { from, to, p };
  };

  app.put('/crm/v4/objects/:objectType/:objectId/associations/default/:toObjectType/:toObjectId', async (request, reply) => {
    const r = pair(request, reply);
    if (!r) return reply;
    const typeId = defaultTypeId(r.from, r.to);
    if (typeId === null) return sendError(reply, 400, 'VALIDATION_ERROR', `No default association between ${r.from} and ${r.to}`);
    if (!store.associate(r.from, r.p.objectId, r.to, r.p.toObjectId, [{ category: 'HUBSPOT_DEFINED', typeId }], ctx.apiSource)) {
      return sendError(reply, 404, 'OBJECT_NOT_FOUND', 'One or more objects of the association were not found');
    }
    const started = new Date().toISOString();
    return batchEnvelope([{ from: { id: r.p.objectId }, to: { id: r.p.toObjectId }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId } }], [], started);
  });

  app.put('/crm/v4/objects/:objectType/:objectId/associations/:toObjectType/:toObjectId', async (request, reply) => {
    const r = pair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.array(specSchema), request.body, reply);
    if (!body) return reply;
    if (!store.associate(r.from, r.p.objectId, r.to, r.p.toObjectId, toSpec(body), ctx.apiSource)) {
      return sendError(reply, 404, 'OBJECT_NOT_FOUND', 'One or more objects of the association were not found');
    }
    const types = store.associationsOf(r.from, r.p.objectId, r.to).find(([id]) => id === r.p.toObjectId)?.[1] ?? [];
    return reply.code(201).send({
      fromObjectTypeId: { contacts: '0-1', companies: '0-2', deals: '0-3' }[r.from],
      fromObjectId: r.p.objectId,
      toObjectTypeId: { contacts: '0-1', companies: '0-2', deals: '0-3' }[r.to],
      toObjectId: r.p.toObjectId,
      labels: typesWithLabels(types).map((t) => t.label).filter((l): l is string => l !== null),
    });
  });

  app.delete('/crm/v4/objects/:objectType/:objectId/associations/:toObjectType/:toObjectId', async (request, reply) => {
    const r = pair(request, reply);
    if (!r) return reply;
    store.unassociate(r.from, r.p.objectId, r.to, r.p.toObjectId, ctx.apiSource);
    return reply.code(204).send();
  });

  app.get('/crm/v4/objects/:objectType/:objectId/associations/:toObjectType', async (request, reply) => {
    const p = request.params as { objectType: string; objectId: string; toObjectType: string };
    const from = resolveOr400(p.objectType, reply);
    if (!from) return reply;
    const to = resolveOr400(p.toObjectType, reply);
    if (!to) return reply;
    const q = request.query as Record<string, unknown>;
    const limit = Math.min(500, Math.max(1, Number(q.limit ?? 500) || 500));
    const offset = Number(q.after ?? 0) || 0;
    const all = store.associationsOf(from, p.objectId, to);
    const page = all.slice(offset, offset + limit);
    return {
      results: page.map(([toId, types]) => ({ toObjectId: toId, associationTypes: typesWithLabels(types) })),
      ...(offset + limit < all.length ? { paging: { next: { after: String(offset + limit) } } } : {}),
    };
  });

  // ---- associations v4, batch ----
  type BatchParams = { fromObjectType: string; toObjectType: string };
  const batchPair = (request: FastifyRequest, reply: FastifyReply): { from: ObjectName; to: ObjectName } | null => {
    const p = request.params as BatchParams;
    const from = resolveOr400(p.fromObjectType, reply);
    if (!from) return null;
    const to = resolveOr400(p.toObjectType, reply);
    if (!to) return null;
    return { from, to };
  };
  const batchBase = '/crm/v4/associations/:fromObjectType/:toObjectType/batch';
  const notFound = (ids: string[]): HubSpotErrorBody => inputError('OBJECT_NOT_FOUND', 'One or more objects of the association were not found', { ids });

  app.post(`${batchBase}/read`, async (request, reply) => {
    const r = batchPair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.object({ inputs: z.array(z.object({ id: idString, after: z.string().optional() })) }), request.body, reply);
    if (!body) return reply;
    if (body.inputs.length > 1000) return sendError(reply, 400, 'VALIDATION_ERROR', `Too many inputs: ${body.inputs.length}. The maximum number of inputs supported in a batch request is 1000.`);
    const started = new Date().toISOString();
    const results = [];
    const missing: string[] = [];
    for (const input of body.inputs) {
      const rec = store.resolve(r.from, input.id);
      if (!rec || rec.archived) {
        missing.push(input.id);
        continue;
      }
      const links = store.associationsOf(r.from, input.id, r.to);
      if (links.length === 0) {
        missing.push(input.id);
        continue;
      }
      results.push({ from: { id: input.id }, to: links.map(([toId, types]) => ({ toObjectId: toId, associationTypes: typesWithLabels(types) })) });
    }
    const errors = missing.length > 0 ? [inputError('NO_ASSOCIATIONS_FOUND', `No ${r.to} associations found for some ${r.from}`, { fromObjectIds: missing })] : [];
    return reply.code(errors.length > 0 ? 207 : 200).send(batchEnvelope(results, errors, started));
  });

  app.post(`${batchBase}/create`, async (request, reply) => {
    const r = batchPair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.object({ inputs: z.array(z.object({ from: z.object({ id: idString }), to: z.object({ id: idString }), types: z.array(specSchema) })) }), request.body, reply);
    if (!body) return reply;
    if (body.inputs.length > BATCH_LIMIT * 20) return sendError(reply, 400, 'VALIDATION_ERROR', `Too many inputs: ${body.inputs.length}. The maximum number of inputs supported in a batch request is 2000.`);
    const started = new Date().toISOString();
    const results = [];
    const missing: string[] = [];
    for (const input of body.inputs) {
      if (!store.associate(r.from, input.from.id, r.to, input.to.id, toSpec(input.types), ctx.apiSource)) {
        missing.push(input.from.id, input.to.id);
        continue;
      }
      results.push({
        fromObjectTypeId: { contacts: '0-1', companies: '0-2', deals: '0-3' }[r.from],
        fromObjectId: input.from.id,
        toObjectTypeId: { contacts: '0-1', companies: '0-2', deals: '0-3' }[r.to],
        toObjectId: input.to.id,
        labels: typesWithLabels(toSpec(input.types)).map((t) => t.label).filter((l): l is string => l !== null),
      });
    }
    const errors = missing.length > 0 ? [notFound(missing)] : [];
    return reply.code(errors.length > 0 ? 207 : 201).send(batchEnvelope(results, errors, started));
  });

  app.post(`${batchBase}/associate/default`, async (request, reply) => {
    const r = batchPair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.object({ inputs: z.array(z.object({ from: z.object({ id: idString }), to: z.object({ id: idString }) })) }), request.body, reply);
    if (!body) return reply;
    const typeId = defaultTypeId(r.from, r.to);
    if (typeId === null) return sendError(reply, 400, 'VALIDATION_ERROR', `No default association between ${r.from} and ${r.to}`);
    const started = new Date().toISOString();
    const results = [];
    const missing: string[] = [];
    for (const input of body.inputs) {
      if (!store.associate(r.from, input.from.id, r.to, input.to.id, [{ category: 'HUBSPOT_DEFINED', typeId }], ctx.apiSource)) {
        missing.push(input.from.id, input.to.id);
        continue;
      }
      results.push({ from: { id: input.from.id }, to: { id: input.to.id }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId } });
    }
    const errors = missing.length > 0 ? [notFound(missing)] : [];
    return reply.code(errors.length > 0 ? 207 : 200).send(batchEnvelope(results, errors, started));
  });

  app.post(`${batchBase}/archive`, async (request, reply) => {
    const r = batchPair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.object({ inputs: z.array(z.object({ from: z.object({ id: idString }), to: z.array(z.object({ id: idString })) })) }), request.body, reply);
    if (!body) return reply;
    for (const input of body.inputs) for (const to of input.to) store.unassociate(r.from, input.from.id, r.to, to.id, ctx.apiSource);
    return reply.code(204).send();
  });

  app.post(`${batchBase}/labels/archive`, async (request, reply) => {
    const r = batchPair(request, reply);
    if (!r) return reply;
    const body = parseOr400(z.object({ inputs: z.array(z.object({ from: z.object({ id: idString }), to: z.object({ id: idString }), types: z.array(specSchema) })) }), request.body, reply);
    if (!body) return reply;
    for (const input of body.inputs) store.unassociate(r.from, input.from.id, r.to, input.to.id, ctx.apiSource, toSpec(input.types));
    return reply.code(204).send();
  });

  // ---- daily usage (reference §1.6) ----
  app.get('/account-info/v3/api-usage/daily/private-apps', (_request, reply) => {
    const u = usage();
    return reply.send({
      results: [{ name: 'private-apps-api-calls-daily', usageLimit: u.limit, currentUsage: u.used, collectedAt: new Date().toISOString(), fetchStatus: 'SUCCESS', resetsAt: u.resetsAt }],
    });
  });
}
