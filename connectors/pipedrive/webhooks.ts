/**
 * Pipedrive webhooks in (crm-reference §3.7). No signature: the subscription's HTTP Basic
 * credentials are compared in constant time. v2 payloads (`meta`, `data`, `previous` with only the
 * changed fields) are the default since 2025-03-17; v1 payloads (`meta`, `current`, `previous`,
 * `event`) are accepted too. `meta.change_source` is `api` for integration writes: with the
 * token's own user id it marks crmhub's own writes (origin `self`), which stops echo loops early.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { WebhookChange, WebhookRequest } from '../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { PipedriveEntity } from './client.ts';
import { OBJECT_BY_ENTITY } from './declaration.ts';

const id = z.union([z.string(), z.number()]).transform((v) => String(v));

const v2Schema = z.object({
  meta: z
    .object({
      action: z.string(),
      entity: z.string(),
      entity_id: id,
      id: z.string(),
      // An unparsable time would throw a RangeError in toISOString (a 500): refuse it as a payload error.
      timestamp: z.string().refine((t) => Number.isFinite(Date.parse(t)), 'not a date-time'),
      change_source: z.string().nullable().optional(),
      user_id: id.nullable().optional(),
      version: z.string().optional(),
      merged_to_id: id.nullable().optional(),
    })
    .passthrough(),
  data: z.record(z.string(), z.unknown()).nullable().optional(),
  previous: z.record(z.string(), z.unknown()).nullable().optional(),
});

const v1Schema = z.object({
  v: z.literal(1).optional(),
  meta: z
    .object({
      action: z.string(),
      object: z.string(),
      id: id.nullable().optional(),
      timestamp: z.number().optional(),
      timestamp_micro: z.number().optional(),
      change_source: z.string().nullable().optional(),
      user_id: id.nullable().optional(),
      webhook_id: id.nullable().optional(),
    })
    .passthrough(),
  current: z.record(z.string(), z.unknown()).nullable().optional(),
  previous: z.record(z.string(), z.unknown()).nullable().optional(),
  event: z.string().optional(),
});

const ENTITIES: Record<string, PipedriveEntity> = { person: 'person', organization: 'organization', deal: 'deal' };

/** A parsed webhook before field values are named (the connector does that with its field cache). */
export interface ParsedPipedriveWebhook {
  entity: PipedriveEntity;
  change: Omit<WebhookChange, 'fields' | 'changedFields'>;
  /** Current record attributes (v2 `data`, v1 `current`), vendor shape. */
  data: Record<string, unknown> | null;
  /** Attribute names Pipedrive says changed (keys of v2 `previous`; differing keys for v1). */
  changedKeys: string[];
  /** Changed custom field keys (40-character hashes). */
  changedCustomKeys: string[];
  changeSource: string | null;
  userId: string | null;
}

function header(request: WebhookRequest, name: string): string | undefined {
  const raw = request.headers[name] ?? request.headers[name.toLowerCase()];
  return Array.isArray(raw) ? raw[0] : raw;
}

/** Constant-time check of `Authorization: Basic …` against the configured user and password. */
export function verifyBasicAuth(request: WebhookRequest, user: string | undefined, password: string | undefined): void {
  const fail = (why: string) =>
    new CrmhubError('auth', `Pipedrive webhook rejected: ${why}`, { code: 'PIPEDRIVE_WEBHOOK_AUTH', context: { connector: 'pipedrive' } });
  if (!user || password === undefined) throw fail('no webhook credentials configured (PIPEDRIVE_WEBHOOK_USER / PIPEDRIVE_WEBHOOK_PASSWORD)');
  const got = header(request, 'authorization') ?? '';
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  // Hash both so the comparison is over equal lengths and takes the same time for any input.
  const a = createHash('sha256').update(got).digest();
  const b = createHash('sha256').update(expected).digest();
  if (!timingSafeEqual(a, b)) throw fail('bad or missing Basic credentials');
}

function payloadError(message: string): CrmhubError {
  return new CrmhubError('payload', `Pipedrive webhook: ${message}`, { code: 'PIPEDRIVE_WEBHOOK_MALFORMED', context: { connector: 'pipedrive' } });
}

function differingKeys(current: Record<string, unknown> | null | undefined, previous: Record<string, unknown> | null | undefined): string[] {
  if (!current || !previous) return [];
  return Object.keys(previous).filter((k) => k !== 'update_time' && JSON.stringify(previous[k]) !== JSON.stringify(current[k]));
}

/** Parses a verified webhook body (v2 or v1). Unsupported entities yield null (acknowledged, ignored). */
export function parsePipedriveWebhook(rawBody: Buffer): ParsedPipedriveWebhook | null {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw payloadError('body is not JSON');
  }
  const isV1 = typeof json === 'object' && json !== null && ((json as { v?: unknown }).v === 1 || 'current' in json || 'event' in json);
  if (!isV1) {
    const parsed = v2Schema.safeParse(json);
    if (!parsed.success) throw payloadError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const { meta, data, previous } = parsed.data;
    const entity = ENTITIES[meta.entity];
    if (!entity) return null;
    const deleted = meta.action === 'delete';
    const merged = deleted && meta.merged_to_id !== undefined && meta.merged_to_id !== null;
    const prev = previous ?? {};
    const customPrev = prev['custom_fields'];
    return {
      entity,
      change: {
        object: OBJECT_BY_ENTITY[entity],
        id: meta.entity_id,
        deliveryId: meta.id,
        changedAt: new Date(Date.parse(meta.timestamp)).toISOString(),
        kind: merged ? 'merge' : deleted ? 'delete' : 'upsert',
        ...(merged && meta.merged_to_id ? { mergedIntoId: meta.merged_to_id } : {}),
      },
      data: deleted ? null : (data ?? null),
      changedKeys: meta.action === 'change' ? Object.keys(prev).filter((k) => k !== 'custom_fields') : [],
      changedCustomKeys: meta.action === 'change' && customPrev && typeof customPrev === 'object' ? Object.keys(customPrev) : [],
      changeSource: meta.change_source ?? null,
      userId: meta.user_id ?? null,
    };
  }
  const parsed = v1Schema.safeParse(json);
  if (!parsed.success) throw payloadError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const { meta, current, previous } = parsed.data;
  const entity = ENTITIES[meta.object];
  if (!entity) return null;
  const idOf = (r: Record<string, unknown> | null | undefined): string | null => (typeof r?.['id'] === 'number' || typeof r?.['id'] === 'string' ? String(r['id']) : null);
  const recordId = meta.id ?? idOf(current) ?? idOf(previous);
  if (recordId === null) throw payloadError('no record id');
  const micros = meta.timestamp_micro ?? (meta.timestamp !== undefined ? meta.timestamp * 1_000_000 : undefined);
  if (micros === undefined) throw payloadError('no timestamp');
  if (!Number.isFinite(new Date(Math.floor(micros / 1000)).getTime())) throw payloadError('timestamp out of range');
  const deleted = meta.action === 'deleted' || meta.action === 'delete';
  const merged = meta.action === 'merged';
  const keys = differingKeys(current, previous);
  const customKeys = keys.filter((k) => /^[0-9a-f]{40}$/.test(k));
  return {
    entity,
    change: {
      object: OBJECT_BY_ENTITY[entity],
      id: recordId,
      // v1 has no event id: the webhook, record and microsecond timestamp identify a delivery.
      deliveryId: `v1:${meta.webhook_id ?? ''}:${entity}:${recordId}:${micros}`,
      changedAt: new Date(Math.floor(micros / 1000)).toISOString(),
      kind: deleted ? 'delete' : merged ? 'merge' : 'upsert',
    },
    data: deleted ? null : v1ToV2(current ?? null),
    changedKeys: keys.filter((k) => !customKeys.includes(k)).map((k) => (k === 'email' ? 'emails' : k === 'phone' ? 'phones' : k)),
    changedCustomKeys: customKeys,
    changeSource: meta.change_source ?? null,
    userId: meta.user_id ?? null,
  };
}

/** v1 record → v2-like attributes: `email`/`phone` arrays renamed, hash keys into `custom_fields`. */
function v1ToV2(current: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!current) return null;
  const out: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(current)) {
    if (/^[0-9a-f]{40}$/.test(k)) custom[k] = v;
    else if (k === 'email') out['emails'] = v;
    else if (k === 'phone') out['phones'] = v;
    else out[k] = v;
  }
  out['custom_fields'] = custom;
  return out;
}
