/**
 * API v2 routes of the Pipedrive sandbox: persons, organizations, deals (list with cursor paging,
 * add, get, update, delete), persons/organizations search, the fields endpoints and stages. Shapes
 * follow `specs/pipedrive/openapi-v2.yaml` (a test validates them against it).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { renderField, type PipedriveEntity } from './fields.ts';
import type { PipedriveSandboxState } from './sandbox-state.ts';
import { API_USER_ID, STAGES, type Json, type StoredRecord } from './store.ts';
import { describeQueryIssues, listQuerySchema, searchQuerySchema, validateWrite } from './validation.ts';

/** v2 error body: `{success:false, error, error_info, data:null, additional_data:null}` (crm-reference §3.6). */
export function sendV2Error(reply: FastifyReply, status: number, error: string, info = 'Please check developers.pipedrive.com'): FastifyReply {
  return reply.code(status).send({ success: false, error, error_info: info, data: null, additional_data: null });
}

const COLLECTIONS: [PipedriveEntity, string][] = [
  ['person', 'persons'],
  ['organization', 'organizations'],
  ['deal', 'deals'],
];

interface CursorState {
  field: 'id' | 'update_time' | 'add_time';
  fieldValue: Json;
  sortDirection: 'asc' | 'desc';
  id: number;
}
const cursorSchema = z.strictObject({
  field: z.enum(['id', 'update_time', 'add_time']),
  fieldValue: z.union([z.string(), z.number()]),
  sortDirection: z.enum(['asc', 'desc']),
  id: z.number().int(),
});

/** Opaque cursor in Pipedrive's style: base64url JSON of the last item's sort key. */
function encodeCursor(c: CursorState): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}
function decodeCursor(raw: string): CursorState | null {
  try {
    const parsed = cursorSchema.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function sortValue(r: StoredRecord, field: CursorState['field']): string | number {
  if (field === 'id') return r.id;
  const v = r.data[field];
  return typeof v === 'string' ? v : '';
}

function compareKeys(a: [string | number, number], b: [string | number, number]): number {
  if (a[0] < b[0]) return -1;
  if (a[0] > b[0]) return 1;
  return a[1] - b[1];
}

function idParam(raw: unknown): number | null {
  return typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : null;
}

const fieldsQuerySchema = z.strictObject({
  include_fields: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().optional(),
  api_token: z.string().optional(),
});

export function registerV2Routes(app: FastifyInstance, state: PipedriveSandboxState): void {
  const { store, fields } = state;

  for (const [entity, plural] of COLLECTIONS) {
    const notFound = (reply: FastifyReply) => sendV2Error(reply, 404, 'Entity was not found', `${entity[0]?.toUpperCase()}${entity.slice(1)} not found.`);

    app.get(`/api/v2/${plural}`, async (request, reply) => {
      const parsed = listQuerySchema.safeParse(request.query);
      if (!parsed.success) return sendV2Error(reply, 400, describeQueryIssues(parsed.error));
      const q = parsed.data;
      const field = q.sort_by ?? 'id';
      const direction = q.sort_direction ?? 'asc';
      let cursor: CursorState | null = null;
      if (q.cursor !== undefined) {
        cursor = decodeCursor(q.cursor);
        if (!cursor || cursor.field !== field || cursor.sortDirection !== direction) return sendV2Error(reply, 400, 'Validation failed: cursor: Invalid cursor');
      }
      const ids = q.ids ? new Set(q.ids.split(',').map(Number)) : null;
      const matches = (r: StoredRecord): boolean => {
        if (r.deleted) return false;
        if (ids && !ids.has(r.id)) return false;
        if (q.owner_id !== undefined && r.data['owner_id'] !== q.owner_id) return false;
        if (q.org_id !== undefined && r.data['org_id'] !== q.org_id) return false;
        if (entity === 'deal') {
          if (q.person_id !== undefined && r.data['person_id'] !== q.person_id) return false;
          if (q.stage_id !== undefined && r.data['stage_id'] !== q.stage_id) return false;
          if (q.pipeline_id !== undefined && r.data['pipeline_id'] !== q.pipeline_id) return false;
          if (q.status !== undefined && q.status !== 'all_not_deleted' && r.data['status'] !== q.status) return false;
        }
        const updated = typeof r.data['update_time'] === 'string' ? r.data['update_time'] : '';
        // updated_since is inclusive, updated_until exclusive (getPersons parameter docs).
        if (q.updated_since !== undefined && Date.parse(updated) < Date.parse(q.updated_since)) return false;
        if (q.updated_until !== undefined && Date.parse(updated) >= Date.parse(q.updated_until)) return false;
        return true;
      };
      const sign = direction === 'asc' ? 1 : -1;
      let items = [...store.records[entity].values()].filter(matches);
      items.sort((a, b) => sign * compareKeys([sortValue(a, field), a.id], [sortValue(b, field), b.id]));
      if (cursor) {
        const after: [string | number, number] = [cursor.fieldValue as string | number, cursor.id];
        items = items.filter((r) => sign * compareKeys([sortValue(r, field), r.id], after) > 0);
      }
      const limit = q.limit ?? 100;
      const page = items.slice(0, limit);
      const last = page[page.length - 1];
      const next = items.length > limit && last ? encodeCursor({ field, fieldValue: sortValue(last, field), sortDirection: direction, id: last.id }) : null;
      const only = q.custom_fields ? new Set(q.custom_fields.split(',')) : undefined;
      return { success: true, data: page.map((r) => store.render(r, only)), additional_data: { next_cursor: next } };
    });

    app.post(`/api/v2/${plural}`, async (request, reply) => {
      const valid = validateWrite(entity, request.body, 'create', fields);
      if (!valid.ok) return sendV2Error(reply, 400, valid.error);
      const refError = store.checkReferences(valid.body);
      if (refError) return sendV2Error(reply, 400, refError);
      const record = store.create(entity, valid.body, 'api', API_USER_ID);
      return { success: true, data: store.render(record), additional_data: null };
    });

    app.get(`/api/v2/${plural}/:id`, async (request, reply) => {
      const id = idParam((request.params as Record<string, unknown>)['id']);
      if (id === null) return sendV2Error(reply, 400, 'Validation failed: id: Expected number');
      const record = store.get(entity, id);
      if (!record) return notFound(reply);
      return { success: true, data: store.render(record), additional_data: null };
    });

    app.patch(`/api/v2/${plural}/:id`, async (request, reply) => {
      const id = idParam((request.params as Record<string, unknown>)['id']);
      if (id === null) return sendV2Error(reply, 400, 'Validation failed: id: Expected number');
      const valid = validateWrite(entity, request.body, 'update', fields);
      if (!valid.ok) return sendV2Error(reply, 400, valid.error);
      if (!store.get(entity, id)) return notFound(reply);
      const refError = store.checkReferences(valid.body);
      if (refError) return sendV2Error(reply, 400, refError);
      const record = store.update(entity, id, valid.body, 'api', API_USER_ID);
      if (!record) return notFound(reply);
      return { success: true, data: store.render(record), additional_data: null };
    });

    app.delete(`/api/v2/${plural}/:id`, async (request, reply) => {
      const id = idParam((request.params as Record<string, unknown>)['id']);
      if (id === null) return sendV2Error(reply, 400, 'Validation failed: id: Expected number');
      if (!store.remove(entity, id, 'api', API_USER_ID)) return notFound(reply);
      return { success: true, data: { id }, additional_data: null };
    });

    const fieldsPath = `/api/v2/${entity}Fields`;
    app.get(fieldsPath, async (request, reply) => {
      const parsed = fieldsQuerySchema.safeParse(request.query);
      if (!parsed.success) return sendV2Error(reply, 400, describeQueryIssues(parsed.error));
      const start = parsed.data.cursor ? Number(Buffer.from(parsed.data.cursor, 'base64url').toString('utf8')) : 0;
      if (!Number.isInteger(start) || start < 0) return sendV2Error(reply, 400, 'Validation failed: cursor: Invalid cursor');
      const limit = parsed.data.limit ?? 100;
      const all = fields.fields[entity];
      const page = all.slice(start, start + limit).map((f, i) => renderField(f, start + i + 1));
      const next = start + limit < all.length ? Buffer.from(String(start + limit)).toString('base64url') : null;
      return { success: true, data: page, additional_data: { next_cursor: next } };
    });

    app.get(`${fieldsPath}/:field_code`, async (request, reply) => {
      const code = (request.params as Record<string, string>)['field_code'] ?? '';
      const all = fields.fields[entity];
      const at = all.findIndex((f) => f.field_code === code);
      const def = all[at];
      if (!def) return sendV2Error(reply, 404, 'Field not found', `No ${entity} field with code ${code}.`);
      return { success: true, data: renderField(def, at + 1), additional_data: null };
    });
  }

  // Search: wrapper of itemSearch; `exact_match` is case-insensitive full match (searchPersons docs).
  const SEARCH_FIELDS: Record<PipedriveEntity, string> = {
    person: 'custom_fields,email,notes,phone,name',
    organization: 'address,custom_fields,notes,name',
    deal: 'custom_fields,notes,title',
  };
  const contactValues = (r: StoredRecord, key: string): Json[] => (Array.isArray(r.data[key]) ? (r.data[key] as Record<string, Json>[]).map((c) => c['value'] ?? null) : []);
  const orgRef = (raw: Json | undefined) => {
    const org = typeof raw === 'number' ? store.get('organization', raw) : undefined;
    return org ? { id: org.id, name: org.data['name'] ?? '', address: null } : null;
  };
  const searchItem = (r: StoredRecord): Record<string, Json> => {
    const common = { id: r.id, type: r.entity, visible_to: r.data['visible_to'] ?? 3, owner: { id: r.data['owner_id'] ?? API_USER_ID }, custom_fields: [], notes: [] };
    if (r.entity === 'person') {
      return { ...common, name: r.data['name'] ?? '', phones: contactValues(r, 'phones'), emails: contactValues(r, 'emails'), organization: orgRef(r.data['org_id']) };
    }
    if (r.entity === 'organization') return { ...common, name: r.data['name'] ?? '', address: null };
    const personId = r.data['person_id'];
    const person = typeof personId === 'number' ? store.get('person', personId) : undefined;
    const stage = STAGES.find((st) => st.id === r.data['stage_id']);
    return {
      ...common,
      title: r.data['title'] ?? '',
      value: r.data['value'] ?? 0,
      currency: r.data['currency'] ?? 'USD',
      status: r.data['status'] ?? 'open',
      stage: { id: stage?.id ?? 1, name: stage?.name ?? '' },
      person: person ? { id: person.id, name: person.data['name'] ?? '' } : null,
      organization: orgRef(r.data['org_id']),
      is_archived: false,
    };
  };
  for (const [entity, plural] of COLLECTIONS) {
    app.get(`/api/v2/${plural}/search`, async (request, reply) => {
      const parsed = searchQuerySchema.safeParse(request.query);
      if (!parsed.success) return sendV2Error(reply, 400, describeQueryIssues(parsed.error));
      const q = parsed.data;
      const exact = q.exact_match === 'true';
      if (q.term.length < (exact ? 1 : 2)) return sendV2Error(reply, 400, 'Validation failed: term: Search term must be at least 2 characters long');
      const allowed = SEARCH_FIELDS[entity].split(',');
      const searchIn = new Set((q.fields ?? SEARCH_FIELDS[entity]).split(','));
      const wrong = [...searchIn].find((f) => !allowed.includes(f));
      if (wrong) return sendV2Error(reply, 400, `Validation failed: fields: '${wrong}' is not searchable on ${plural}`);
      const term = q.term.trim().toLowerCase();
      const now = Date.now();
      const hit = (v: unknown): boolean =>
        (typeof v === 'string' || typeof v === 'number') && (exact ? String(v).trim().toLowerCase() === term : String(v).toLowerCase().includes(term));
      let candidates: StoredRecord[];
      if (entity === 'person' && exact && searchIn.size === 1 && searchIn.has('email')) {
        candidates = store.personsByEmail(term).flatMap((id) => store.get('person', id) ?? []);
      } else {
        candidates = [...store.records[entity].values()].filter((r) => {
          if (r.deleted) return false;
          if (searchIn.has('name') && hit(r.data['name'])) return true;
          if (searchIn.has('title') && hit(r.data['title'])) return true;
          if (searchIn.has('email') && contactValues(r, 'emails').some(hit)) return true;
          if (searchIn.has('phone') && contactValues(r, 'phones').some(hit)) return true;
          if (searchIn.has('custom_fields')) {
            // Only text-like custom fields are searchable (searchPersons `fields` docs).
            return Object.entries(r.custom).some(([key, v]) => {
              const type = fields.custom(entity, key)?.field_type;
              return (type === 'varchar' || type === 'text' || type === 'double' || type === 'phone') && hit(v);
            });
          }
          return false;
        });
      }
      candidates = candidates.filter((r) => r.searchableAfter <= now && (q.organization_id === undefined || r.data['org_id'] === q.organization_id));
      candidates.sort((a, b) => a.id - b.id);
      const start = q.cursor ? Number(Buffer.from(q.cursor, 'base64url').toString('utf8')) || 0 : 0;
      const limit = q.limit ?? 100;
      const page = candidates.slice(start, start + limit);
      const items = page.map((r) => ({ result_score: exact ? 1 : 0.5, item: searchItem(r) }));
      const next = start + limit < candidates.length ? Buffer.from(String(start + limit)).toString('base64url') : null;
      return { success: true, data: { items }, additional_data: { next_cursor: next } };
    });
  }

  app.get('/api/v2/stages', () => ({
    success: true,
    data: STAGES.map((s) => ({ ...s, is_deleted: false, is_deal_rot_enabled: false, days_to_rotten: null, add_time: '2024-01-01T00:00:00Z', update_time: '2024-01-01T00:00:00Z' })),
    additional_data: { next_cursor: null },
  }));

  app.get('/api/v2/pipelines', () => ({
    success: true,
    data: [{ id: 1, name: 'Sales pipeline', order_nr: 1, is_deleted: false, is_deal_probability_enabled: false, add_time: '2024-01-01T00:00:00Z', update_time: '2024-01-01T00:00:00Z', is_selected: true }],
    additional_data: { next_cursor: null },
  }));
}
