/**
 * Pipedrive webhooks from the sandbox. Shapes: "Guide for Webhooks v2" and the v1 spec
 * (crm-reference §3.7, fixtures `webhook.v2.*.constructed.json`, `webhook.v1.deal-updated.constructed.json`).
 * No signature: each subscription carries HTTP Basic credentials. One change → one POST; non-2xx
 * answers are retried (compressed schedule). `previous` in v2 holds only the changed fields.
 */
import { randomUUID } from 'node:crypto';
import { WebhookDispatcher } from '../../../src/connector-kit/sandbox/webhook-dispatcher.ts';
import type { FieldCatalogue, PipedriveEntity } from './fields.ts';
import { API_USER_ID, COMPANY_ID, type ChangeEvent, type Json } from './store.ts';

export interface Subscription {
  id: number;
  subscription_url: string;
  event_action: 'create' | 'change' | 'delete' | '*';
  event_object: string;
  name: string;
  version: '1.0' | '2.0';
  http_auth_user: string | null;
  http_auth_password: string | null;
  user_id: number;
  add_time: string;
  last_delivery_time: string | null;
  last_http_status: number | null;
}

interface Delivery {
  event: ChangeEvent;
  eventId: string;
  correlationId: string;
}

const V1_ACTION: Record<ChangeEvent['action'], string> = { create: 'added', change: 'updated', delete: 'deleted' };
const HOST = 'sandbox.pipedrive.test';

/** v2 `data` carries custom field values as `{type, value}` objects (fixture `webhook.v2.person-change`). */
function webhookRecord(record: Record<string, Json> | null, fields: FieldCatalogue, entity: PipedriveEntity): Record<string, Json> | null {
  if (!record) return null;
  const custom = (record['custom_fields'] ?? {}) as Record<string, Json>;
  const wrapped: Record<string, Json> = {};
  for (const [key, value] of Object.entries(custom)) {
    if (value === null) continue;
    wrapped[key] = { type: fields.custom(entity, key)?.field_type ?? 'varchar', value };
  }
  return { ...record, custom_fields: wrapped };
}

/** Only the attributes that changed, with their old values (Pipedrive's v2 `previous`). */
export function changedPrevious(current: Record<string, Json>, previous: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, old] of Object.entries(previous)) {
    if (key === 'update_time' || key === 'custom_fields') continue;
    if (JSON.stringify(old) !== JSON.stringify(current[key] ?? null)) out[key] = old;
  }
  const oldCustom = (previous['custom_fields'] ?? {}) as Record<string, Json>;
  const newCustom = (current['custom_fields'] ?? {}) as Record<string, Json>;
  const customOut: Record<string, Json> = {};
  for (const key of new Set([...Object.keys(oldCustom), ...Object.keys(newCustom)])) {
    if (JSON.stringify(oldCustom[key] ?? null) !== JSON.stringify(newCustom[key] ?? null)) customOut[key] = oldCustom[key] ?? null;
  }
  if (Object.keys(customOut).length > 0) out['custom_fields'] = customOut;
  return out;
}

function v1Time(iso: Json | undefined): Json {
  return typeof iso === 'string' ? iso.replace('T', ' ').replace('Z', '') : null;
}

/** v1 view: flat custom fields by key, `email`/`phone` arrays, `user_id` for the owner, v1 times. */
function v1Record(record: Record<string, Json> | null): Record<string, Json> | null {
  if (!record) return null;
  const { custom_fields, emails, phones, owner_id, add_time, update_time, is_deleted, ...rest } = record;
  const out: Record<string, Json> = { ...rest, ...((custom_fields ?? {}) as Record<string, Json>) };
  if (emails !== undefined) out['email'] = emails;
  if (phones !== undefined) out['phone'] = phones;
  out['user_id'] = owner_id ?? null;
  out['owner_id'] = owner_id ?? null;
  out['add_time'] = v1Time(add_time);
  out['update_time'] = v1Time(update_time);
  out['active_flag'] = is_deleted !== true;
  return out;
}

export function buildV2Payload(sub: Subscription, d: Delivery, attempt: number, fields: FieldCatalogue): Record<string, Json> {
  const e = d.event;
  let previous = e.action === 'change' && e.current && e.previous ? changedPrevious(e.current, e.previous) : null;
  if (previous?.['custom_fields']) {
    const wrapped: Record<string, Json> = {};
    for (const [key, value] of Object.entries(previous['custom_fields'] as Record<string, Json>)) {
      wrapped[key] = value === null ? null : { type: fields.custom(e.entity, key)?.field_type ?? 'varchar', value };
    }
    previous = { ...previous, custom_fields: wrapped };
  }
  if (e.action === 'delete') previous = webhookRecord(e.previous, fields, e.entity);
  return {
    meta: {
      action: e.action,
      entity: e.entity,
      entity_id: String(e.id),
      id: d.eventId,
      company_id: String(COMPANY_ID),
      user_id: String(e.userId),
      correlation_id: d.correlationId,
      is_bulk_edit: false,
      timestamp: new Date(e.at).toISOString(),
      type: 'general',
      version: '2.0',
      webhook_id: String(sub.id),
      webhook_owner_id: String(sub.user_id),
      change_source: e.changeSource,
      permitted_user_ids: [String(API_USER_ID)],
      attempt,
      host: HOST,
    },
    data: webhookRecord(e.current, fields, e.entity),
    previous,
  };
}

export function buildV1Payload(sub: Subscription, d: Delivery, attempt: number): Record<string, Json> {
  const e = d.event;
  const seconds = Math.floor(e.at / 1000);
  const meta: Record<string, Json> = {
    v: 1,
    action: V1_ACTION[e.action],
    object: e.entity,
    id: e.id,
    company_id: COMPANY_ID,
    user_id: e.userId,
    host: HOST,
    timestamp: seconds,
    timestamp_micro: e.at * 1000,
    permitted_user_ids: [API_USER_ID],
    trans_pending: false,
    is_bulk_update: false,
    pipedrive_service_name: false,
    change_source: e.changeSource,
    matches_filters: { current: [], previous: [] },
    webhook_id: String(sub.id),
  };
  return {
    v: 1,
    matches_filters: { current: [], previous: [] },
    meta,
    current: v1Record(e.current),
    previous: v1Record(e.previous),
    event: `${V1_ACTION[e.action]}.${e.entity}`,
    retry: attempt - 1,
  };
}

function matches(sub: Subscription, e: ChangeEvent): boolean {
  return (sub.event_action === '*' || sub.event_action === e.action) && (sub.event_object === '*' || sub.event_object === e.entity);
}

export interface WebhookHubOptions {
  fields: FieldCatalogue;
  retryDelayMs?: (attempt: number) => number;
  maxAttempts?: number;
  timeoutMs?: number;
}

/** Subscriptions and their dispatchers (one per subscription, one event per POST). */
export class WebhookHub {
  readonly subscriptions = new Map<number, Subscription>();
  private readonly dispatchers = new Map<number, WebhookDispatcher<Delivery>>();
  private nextId = 1;
  /** Deliveries per subscription, including retries (tests and stats). */
  readonly deliveries: { subscriptionId: number; status: number; attempt: number }[] = [];

  constructor(private readonly options: WebhookHubOptions) {}

  add(input: Omit<Subscription, 'id' | 'add_time' | 'last_delivery_time' | 'last_http_status'>): Subscription {
    const sub: Subscription = { ...input, id: this.nextId++, add_time: new Date().toISOString(), last_delivery_time: null, last_http_status: null };
    this.subscriptions.set(sub.id, sub);
    this.dispatchers.set(
      sub.id,
      new WebhookDispatcher<Delivery>({
        maxBatch: 1,
        lingerMs: 0,
        ...(this.options.retryDelayMs ? { retryDelayMs: this.options.retryDelayMs } : {}),
        ...(this.options.maxAttempts ? { maxAttempts: this.options.maxAttempts } : {}),
        send: (batch, attempt) => this.send(sub, batch, attempt),
      }),
    );
    return sub;
  }

  remove(id: number): boolean {
    this.dispatchers.get(id)?.close();
    this.dispatchers.delete(id);
    return this.subscriptions.delete(id);
  }

  publish(event: ChangeEvent): void {
    const base = { event, correlationId: randomUUID() };
    for (const sub of this.subscriptions.values()) {
      if (!matches(sub, event)) continue;
      this.dispatchers.get(sub.id)?.enqueue({ ...base, eventId: randomUUID() });
    }
  }

  async drain(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map((d) => d.drain(timeoutMs)));
  }

  stats(): { queued: number; delivered: number; attempts: number; failedAttempts: number; dropped: number } {
    const total = { queued: 0, delivered: 0, attempts: 0, failedAttempts: 0, dropped: 0 };
    for (const d of this.dispatchers.values()) {
      total.queued += d.stats.queued;
      total.delivered += d.stats.delivered;
      total.attempts += d.stats.attempts;
      total.failedAttempts += d.stats.failedAttempts;
      total.dropped += d.stats.dropped;
    }
    return total;
  }

  clearQueues(): void {
    for (const d of this.dispatchers.values()) d.clear();
  }

  close(): void {
    for (const d of this.dispatchers.values()) d.close();
  }

  private async send(sub: Subscription, batch: Delivery[], attempt: number): Promise<boolean> {
    const delivery = batch[0];
    if (!delivery) return true;
    const body = sub.version === '1.0' ? buildV1Payload(sub, delivery, attempt) : buildV2Payload(sub, delivery, attempt, this.options.fields);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'Pipedrive Webhooks' };
    if (sub.http_auth_user !== null) {
      headers['authorization'] = `Basic ${Buffer.from(`${sub.http_auth_user}:${sub.http_auth_password ?? ''}`).toString('base64')}`;
    }
    let status = 0;
    try {
      const res = await fetch(sub.subscription_url, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = 0;
    }
    sub.last_delivery_time = new Date().toISOString();
    sub.last_http_status = status;
    this.deliveries.push({ subscriptionId: sub.id, status, attempt });
    if (this.deliveries.length > 10_000) this.deliveries.splice(0, 5_000);
    return status >= 200 && status < 300;
  }
}
