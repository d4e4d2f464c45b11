/**
 * The Pipedrive sandbox's behaviour behind the control API (design.md §6): store, limits, webhook
 * subscriptions and the custom-field controls (`rename-field`, `delete-field`, `add-field`).
 */
import { z } from 'zod';
import type { SandboxBehaviour, SandboxConfig } from '../../../src/connector-kit/sandbox/sandbox-server.ts';
import { ENTITIES, FieldCatalogue, type FieldDefinition, type FieldType, type PipedriveEntity } from './fields.ts';
import { PipedriveLimits, type PipedriveLimitSettings } from './limits.ts';
import { entityFromObjectName, seedDeal, seedOrganization, seedPerson } from './seed-data.ts';
import { PipedriveStore, USERS, type Json, type StoreSnapshot } from './store.ts';
import { validateWrite } from './validation.ts';
import { WebhookHub, type Subscription } from './webhooks.ts';

/** A control-API request the sandbox refuses (answered 400/404 by the frame). */
export class SandboxInputError extends Error {
  override readonly name = 'SandboxInputError';
}

const pipedriveConfigSchema = z
  .object({
    rateLimit: z
      .strictObject({ burst: z.number().int().min(1).optional(), windowMs: z.number().int().min(1).optional(), searchBurst: z.number().int().min(1).optional() })
      .optional(),
    dailyQuota: z.number().int().min(0).optional(),
    webhookUrl: z.string().url().nullable().optional(),
    /** ms before a new or changed person is found by search (search index lag). */
    searchLagMs: z.number().int().min(0).optional(),
  })
  .passthrough();

export interface PipedriveSandboxOptions {
  apiToken: string;
  webhookUser: string;
  webhookPassword: string;
  /** Default subscription target (`${webhookTarget}/webhooks/pipedrive`). */
  webhookUrl?: string;
  limits?: Partial<PipedriveLimitSettings>;
  /** Webhook retry delay, ms per attempt; compressed by default. */
  webhookRetryDelayMs?: (attempt: number) => number;
  webhookMaxAttempts?: number;
}

interface PersistedState {
  store: StoreSnapshot;
  subscriptions: Subscription[];
}

export class PipedriveSandboxState implements SandboxBehaviour {
  readonly fields = new FieldCatalogue();
  private readonly pristineFields: string;
  readonly hub: WebhookHub;
  readonly store: PipedriveStore;
  readonly limits: PipedriveLimits;
  private muted = false;
  private defaultSubscriptionId: number | null = null;

  constructor(readonly options: PipedriveSandboxOptions) {
    this.pristineFields = JSON.stringify(this.fields.snapshot());
    this.hub = new WebhookHub({
      fields: this.fields,
      ...(options.webhookRetryDelayMs ? { retryDelayMs: options.webhookRetryDelayMs } : {}),
      ...(options.webhookMaxAttempts ? { maxAttempts: options.webhookMaxAttempts } : {}),
    });
    this.store = new PipedriveStore(this.fields, (event) => {
      if (!this.muted) this.hub.publish(event);
    });
    this.limits = new PipedriveLimits(options.limits);
    if (options.webhookUrl) this.setDefaultWebhook(options.webhookUrl);
  }

  private entity(object: string): PipedriveEntity {
    const entity = entityFromObjectName(object);
    if (!entity) throw new SandboxInputError(`unknown object '${object}' (persons, organizations, deals)`);
    return entity;
  }

  private setDefaultWebhook(url: string | null): void {
    if (this.defaultSubscriptionId !== null) this.hub.remove(this.defaultSubscriptionId);
    this.defaultSubscriptionId = null;
    if (url === null) return;
    const sub = this.hub.add({
      subscription_url: url,
      event_action: '*',
      event_object: '*',
      name: 'crmhub',
      version: '2.0',
      http_auth_user: this.options.webhookUser,
      http_auth_password: this.options.webhookPassword,
      user_id: USERS[0].id,
    });
    this.defaultSubscriptionId = sub.id;
  }

  /**
   * Translates a rep's edit: custom fields may be named by their field name (and enum/set values
   * by option label) for convenience; keys and option ids work too.
   */
  private translateEdit(entity: PipedriveEntity, fields: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const custom: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'custom_fields' && value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          const def = this.fields.custom(entity, k) ?? this.fields.customByName(entity, k);
          custom[def?.field_code ?? k] = def ? optionIds(def, v) : v;
        }
        continue;
      }
      const def = this.fields.get(entity, key) ? undefined : this.fields.customByName(entity, key);
      if (def) custom[def.field_code] = optionIds(def, value);
      else out[key] = value;
    }
    if (Object.keys(custom).length > 0) out['custom_fields'] = custom;
    return out;
  }

  edit(object: string, id: string, fields: Record<string, unknown>): unknown {
    const entity = this.entity(object);
    const body = this.translateEdit(entity, fields);
    const valid = validateWrite(entity, body, 'update', this.fields);
    if (!valid.ok) throw new SandboxInputError(valid.error);
    const refError = this.store.checkReferences(valid.body);
    if (refError) throw new SandboxInputError(refError);
    const current = this.store.get(entity, Number(id));
    if (!current) throw new SandboxInputError(`${entity} ${id} not found`);
    const owner = current.data['owner_id'];
    const rep = typeof owner === 'number' && owner !== USERS[0].id ? owner : USERS[1].id;
    const record = this.store.update(entity, Number(id), valid.body, 'app', rep);
    return record ? this.store.render(record) : null;
  }

  remove(object: string, id: string): unknown {
    const entity = this.entity(object);
    if (!this.store.remove(entity, Number(id), 'app', USERS[1].id)) throw new SandboxInputError(`${entity} ${id} not found`);
    return { id: Number(id) };
  }

  seed(object: string, count: number, seed?: number): string[] {
    const entity = this.entity(object);
    const ids: string[] = [];
    this.muted = true;
    try {
      const orgs = [...this.store.records.organization.values()].filter((r) => !r.deleted).map((r) => r.id);
      const persons = [...this.store.records.person.values()].filter((r) => !r.deleted);
      const base = seed ?? this.store.records[entity].size;
      for (let i = 0; i < count; i++) {
        const n = base + i;
        let body: Record<string, unknown>;
        if (entity === 'organization') body = seedOrganization(n);
        else if (entity === 'person') body = seedPerson(n, orgs.length > 0 ? (orgs[n % orgs.length] ?? null) : null);
        else {
          const person = persons.length > 0 ? persons[n % persons.length] : undefined;
          const org = person?.data['org_id'];
          body = seedDeal(n, person?.id ?? null, typeof org === 'number' ? org : null);
        }
        ids.push(String(this.store.create(entity, body, 'app', USERS[1].id).id));
      }
    } finally {
      this.muted = false;
    }
    return ids;
  }

  reset(): void {
    this.store.clear();
    this.fields.restore(JSON.parse(this.pristineFields) as ReturnType<FieldCatalogue['snapshot']>);
    this.limits.reset();
    this.hub.clearQueues();
    for (const id of [...this.hub.subscriptions.keys()]) if (id !== this.defaultSubscriptionId) this.hub.remove(id);
  }

  recordCounts(): Record<string, number> {
    return this.store.counts();
  }

  configure(config: SandboxConfig): void {
    const parsed = pipedriveConfigSchema.safeParse(config);
    if (!parsed.success) throw new SandboxInputError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const c = parsed.data;
    if (c.rateLimit) {
      const patch: Partial<PipedriveLimitSettings> = {};
      if (c.rateLimit.burst !== undefined) patch.burst = c.rateLimit.burst;
      if (c.rateLimit.windowMs !== undefined) patch.windowMs = c.rateLimit.windowMs;
      if (c.rateLimit.searchBurst !== undefined) patch.searchBurst = c.rateLimit.searchBurst;
      this.limits.configure(patch);
    }
    if (c.dailyQuota !== undefined) this.limits.configure({ dailyTokens: c.dailyQuota });
    if (c.webhookUrl !== undefined) this.setDefaultWebhook(c.webhookUrl);
    if (c.searchLagMs !== undefined) this.store.searchLagMs = c.searchLagMs;
  }

  renameField(object: string, key: string, name: string): FieldDefinition {
    const def = this.fields.rename(this.entity(object), key, name);
    if (!def) throw new SandboxInputError(`no custom field '${key}' on ${object}`);
    return def;
  }

  deleteField(object: string, key: string): void {
    const entity = this.entity(object);
    if (!this.fields.remove(entity, key)) throw new SandboxInputError(`no custom field '${key}' on ${object}`);
    this.store.dropCustomField(entity, key);
  }

  addField(object: string, name: string, type: FieldType, options?: string[]): FieldDefinition {
    return this.fields.addCustom(this.entity(object), name, type, options);
  }

  snapshot(): PersistedState {
    return { store: this.store.snapshot(), subscriptions: [...this.hub.subscriptions.values()].filter((s) => s.id !== this.defaultSubscriptionId) };
  }

  restore(state: unknown): void {
    const s = state as PersistedState;
    this.store.restore(s.store);
    for (const sub of s.subscriptions) {
      const { id: _id, add_time: _a, last_delivery_time: _l, last_http_status: _h, ...rest } = sub;
      this.hub.add(rest);
    }
  }

  async drainWebhooks(timeoutMs?: number): Promise<void> {
    await this.hub.drain(timeoutMs);
  }

  close(): void {
    this.hub.close();
  }

  /**
   * Extra figures for `GET /_sandbox/pipedrive`: writes per entity, webhook deliveries, budget, and
   * the burst window's accounting of the requests accepted since `since` (ms since the epoch; all kept when absent).
   */
  details(now: number, since = 0): Record<string, Json> {
    const accepted = this.limits.acceptedSince(since);
    return {
      burstWindow: { ...accepted },
      written: { ...this.store.written },
      webhooks: this.hub.stats(),
      deliveries: this.hub.deliveries.slice(-100),
      limits: { ...this.limits.settings },
      dailyTokensRemaining: this.limits.dailyRemaining(now),
      fields: Object.fromEntries(ENTITIES.map((e) => [e, this.fields.fields[e].filter((f) => f.is_custom_field).map((f) => ({ key: f.field_code, name: f.field_name }))])),
    };
  }
}

/** Maps option labels to ids for enum/set custom fields (rep edits name options by label). */
function optionIds(def: FieldDefinition, value: unknown): unknown {
  if (!def.options) return value;
  const one = (v: unknown): unknown => (typeof v === 'string' ? (def.options?.find((o) => o.label === v)?.id ?? v) : v);
  return Array.isArray(value) ? value.map(one) : one(value);
}
