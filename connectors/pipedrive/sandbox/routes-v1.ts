/**
 * API v1 routes the sandbox keeps because v2 has no replacement (crm-reference §3.1): webhooks
 * (add/list/delete), recents, users/me. Shapes: `specs/pipedrive/openapi-v1.yaml`, fixtures
 * `v1.webhooks.add.201.json`, `v1.recents.200.json`, `v1.error.401.json`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { PipedriveSandboxState } from './sandbox-state.ts';
import { API_USER_ID, COMPANY_ID, USERS, type Json } from './store.ts';
import type { Subscription } from './webhooks.ts';
import { entityFromObjectName } from './seed-data.ts';

/** v1 error body: `{success:false, error, errorCode, error_info}` (crm-reference §3.6). */
export function sendV1Error(reply: FastifyReply, status: number, error: string): FastifyReply {
  return reply.code(status).send({ success: false, error, errorCode: status, error_info: 'Please check developers.pipedrive.com' });
}

/** Max webhooks per user (Pipedrive's webhooks guide). */
const MAX_WEBHOOKS_PER_USER = 40;

const addWebhookSchema = z.strictObject({
  subscription_url: z.string().url(),
  event_action: z.enum(['create', 'change', 'delete', '*']),
  event_object: z.enum(['activity', 'deal', 'lead', 'note', 'organization', 'person', 'pipeline', 'product', 'stage', 'user', '*']),
  name: z.string().min(1).max(255),
  user_id: z.number().int().optional(),
  http_auth_user: z.string().nullable().optional(),
  http_auth_password: z.string().nullable().optional(),
  version: z.enum(['1.0', '2.0']).optional(),
});

const recentsQuerySchema = z.strictObject({
  since_timestamp: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, 'must be YYYY-MM-DD HH:MM:SS'),
  items: z.string().optional(),
  start: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  api_token: z.string().optional(),
});

function renderSubscription(sub: Subscription): Record<string, Json> {
  return {
    id: sub.id,
    company_id: COMPANY_ID,
    owner_id: sub.user_id,
    user_id: sub.user_id,
    event_action: sub.event_action,
    event_object: sub.event_object,
    subscription_url: sub.subscription_url,
    version: sub.version,
    is_active: 1,
    add_time: sub.add_time,
    remove_time: null,
    type: 'general',
    http_auth_user: sub.http_auth_user,
    // Never echo a stored secret back.
    http_auth_password: sub.http_auth_password === null ? null : '********',
    remove_reason: null,
    last_delivery_time: sub.last_delivery_time,
    last_http_status: sub.last_http_status,
    admin_id: API_USER_ID,
    name: sub.name,
  };
}

function v1Time(iso: Json | undefined): string {
  return typeof iso === 'string' ? iso.replace('T', ' ').replace('Z', '') : '';
}

export function registerV1Routes(app: FastifyInstance, state: PipedriveSandboxState): void {
  app.get('/v1/webhooks', () => ({ status: 'ok', success: true, data: [...state.hub.subscriptions.values()].map(renderSubscription) }));

  app.post('/v1/webhooks', async (request, reply) => {
    const parsed = addWebhookSchema.safeParse(request.body);
    if (!parsed.success) return sendV1Error(reply, 400, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const b = parsed.data;
    const userId = b.user_id ?? API_USER_ID;
    if ([...state.hub.subscriptions.values()].filter((s) => s.user_id === userId).length >= MAX_WEBHOOKS_PER_USER) {
      return sendV1Error(reply, 400, `Maximum number of webhooks (${MAX_WEBHOOKS_PER_USER}) per user reached`);
    }
    const sub = state.hub.add({
      subscription_url: b.subscription_url,
      event_action: b.event_action,
      event_object: b.event_object,
      name: b.name,
      version: b.version ?? '2.0',
      http_auth_user: b.http_auth_user ?? null,
      http_auth_password: b.http_auth_password ?? null,
      user_id: userId,
    });
    return reply.code(201).send({ status: 'ok', success: true, data: renderSubscription(sub) });
  });

  app.delete('/v1/webhooks/:id', async (request, reply) => {
    const id = Number((request.params as Record<string, string>)['id']);
    if (!state.hub.remove(id)) return sendV1Error(reply, 404, 'Webhook not found');
    return { status: 'ok', success: true };
  });

  app.get('/v1/users/me', () => {
    const me = USERS[0];
    return {
      success: true,
      data: {
        id: me.id, name: me.name, email: me.email, default_currency: 'USD', locale: 'en_US', lang: 1, timezone_name: 'UTC',
        timezone_offset: '+00:00', activated: true, active_flag: true, is_admin: 1, role_id: 1, icon_url: null, is_you: true,
        company_id: COMPANY_ID, company_name: 'crmhub sandbox', company_domain: 'sandbox', company_country: 'US', company_industry: 'software',
        created: '2024-01-01 00:00:00', modified: '2024-01-01 00:00:00', has_created_company: true, last_login: '2024-01-01 00:00:00',
        phone: null, access: [{ app: 'sales', admin: true, permission_set_id: '1' }], language: { language_code: 'en', country_code: 'US' },
      },
    };
  });

  // Recents: v1 offset paging; items changed since `since_timestamp` (UTC), deleted ones included.
  app.get('/v1/recents', async (request, reply) => {
    const parsed = recentsQuerySchema.safeParse(request.query);
    if (!parsed.success) return sendV1Error(reply, 400, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const q = parsed.data;
    const since = Date.parse(`${q.since_timestamp.replace(' ', 'T')}Z`);
    const kinds = (q.items ?? 'person,organization,deal').split(',').map(entityFromObjectName);
    const rows: { item: string; id: number; data: Record<string, Json>; at: string }[] = [];
    for (const entity of kinds) {
      if (!entity) continue;
      for (const r of state.store.records[entity].values()) {
        const at = typeof r.data['update_time'] === 'string' ? r.data['update_time'] : '';
        if (Date.parse(at) < since) continue;
        const view = state.store.render(r);
        const { custom_fields, emails, phones, owner_id, ...rest } = view;
        const data: Record<string, Json> = { ...rest, ...((custom_fields ?? {}) as Record<string, Json>), user_id: owner_id ?? null, active_flag: !r.deleted };
        if (emails !== undefined) data['email'] = emails;
        if (phones !== undefined) data['phone'] = phones;
        data['add_time'] = v1Time(view['add_time']);
        data['update_time'] = v1Time(view['update_time']);
        rows.push({ item: entity, id: r.id, data, at });
      }
    }
    rows.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id - b.id));
    const start = q.start ?? 0;
    const limit = q.limit ?? 100;
    const page = rows.slice(start, start + limit);
    const more = start + limit < rows.length;
    return {
      success: true,
      data: page.map(({ item, id, data }) => ({ item, id, data })),
      additional_data: {
        since_timestamp: q.since_timestamp,
        last_timestamp_on_page: page.length > 0 ? v1Time(page[page.length - 1]?.at) : q.since_timestamp,
        pagination: { start, limit, more_items_in_collection: more, ...(more ? { next_start: start + limit } : {}) },
      },
    };
  });
}
