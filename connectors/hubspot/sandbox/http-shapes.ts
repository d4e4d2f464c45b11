/**
 * HubSpot's response shapes as the sandbox writes them: the error body (`Error` in the v3 specs:
 * status, message, correlationId, category, context, errors), per-input batch errors
 * (`StandardError`), and `SimplePublicObject` with optional `propertiesWithHistory`. Models:
 * `@hubspot/api-client` `codegen/crm/contacts/models/{Error,StandardError,SimplePublicObject}.d.ts`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { ObjectName, PropertyIssue } from './property-catalog.ts';
import type { StoredRecord } from './record-store.ts';

export interface HubSpotErrorBody {
  status: 'error';
  message: string;
  correlationId: string;
  category: string;
  subCategory?: string;
  context?: Record<string, string[]>;
  errors?: { message: string; code?: string; context?: Record<string, string[]> }[];
  policyName?: string;
  errorType?: string;
  requestId?: string;
  links?: Record<string, string>;
}

export function errorBody(category: string, message: string, extra: Partial<HubSpotErrorBody> = {}): HubSpotErrorBody {
  return { status: 'error', message, correlationId: randomUUID(), category, ...extra };
}

export function sendError(reply: FastifyReply, status: number, category: string, message: string, extra: Partial<HubSpotErrorBody> = {}): FastifyReply {
  return reply.code(status).header('content-type', 'application/json;charset=utf-8').send(errorBody(category, message, extra));
}

/** 400 for a body that does not parse, in HubSpot's words ("Invalid input JSON …"). */
export function parseOr400<T>(schema: z.ZodType<T>, body: unknown, reply: FastifyReply): T | null {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  void sendError(reply, 400, 'VALIDATION_ERROR', `Invalid input JSON: ${detail}`);
  return null;
}

/** "Property values were not valid: [...]" — HubSpot's validation message embeds the issue list as JSON. */
export function validationMessage(issues: PropertyIssue[]): string {
  return `Property values were not valid: ${JSON.stringify(issues)}`;
}

/** One input's failure inside a 207 (`StandardError`). `context` ties it to the input. */
export function inputError(category: string, message: string, context: Record<string, string[]>, issues: PropertyIssue[] = []): HubSpotErrorBody & { errors: NonNullable<HubSpotErrorBody['errors']>; links: Record<string, string> } {
  return {
    status: 'error',
    category,
    message,
    correlationId: randomUUID(),
    context,
    errors: issues.map((i) => ({ message: i.message, code: i.error, context: { propertyName: [i.name] } })),
    links: {},
  };
}

/** Properties HubSpot returns when a request names none (search guide, "default properties"). */
export const DEFAULT_PROPERTIES: Record<ObjectName, string[]> = {
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  deals: ['amount', 'closedate', 'createdate', 'dealname', 'dealstage', 'hs_lastmodifieddate', 'hs_object_id', 'pipeline'],
};

/** Accepts `a,b` strings, repeated query keys and arrays alike. */
export function listParam(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

export interface ObjectView {
  properties?: string[] | undefined;
  propertiesWithHistory?: string[] | undefined;
}

export interface PublicObject {
  id: string;
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
  archivedAt?: string;
  propertiesWithHistory?: Record<string, { value: string; timestamp: string; sourceType: string; sourceId?: string }[]>;
  objectWriteTraceId?: string;
}

/** `SimplePublicObject`: every value a string (or null when asked for and unset). */
export function toPublic(record: StoredRecord, view: ObjectView = {}): PublicObject {
  const names = view.properties && view.properties.length > 0 ? view.properties : DEFAULT_PROPERTIES[record.object];
  const properties: Record<string, string | null> = {};
  for (const name of names) {
    const v = record.props[name];
    // HubSpot includes asked-for properties that exist but are unset as null, and silently drops unknown names.
    if (v !== undefined) properties[name] = v;
    else if (!view.properties) continue;
    else properties[name] = null;
  }
  properties.hs_object_id = record.id;
  const out: PublicObject = {
    id: record.id,
    properties,
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
    archived: record.archived,
  };
  if (record.archivedAt !== undefined) out.archivedAt = new Date(record.archivedAt).toISOString();
  if (view.propertiesWithHistory && view.propertiesWithHistory.length > 0) {
    const history: NonNullable<PublicObject['propertiesWithHistory']> = {};
    for (const name of view.propertiesWithHistory) {
      const h = record.history[name];
      if (h) history[name] = h;
      else if (record.props[name] !== undefined && record.props[name] !== null) {
        history[name] = [{ value: record.props[name] ?? '', timestamp: new Date(record.createdAt).toISOString(), sourceType: 'CALCULATED' }];
      }
    }
    out.propertiesWithHistory = history;
  }
  return out;
}

/** Batch envelope (`BatchResponseSimplePublicObject[WithErrors]`). */
export function batchEnvelope<T>(results: T[], errors: HubSpotErrorBody[], startedAt: string): Record<string, unknown> {
  const body: Record<string, unknown> = { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() };
  if (errors.length > 0) {
    body.numErrors = errors.length;
    body.errors = errors;
  }
  return body;
}
