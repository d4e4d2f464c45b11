/**
 * The Pipedrive connector (issue 8): persons ↔ person profiles, organizations ↔ account profiles,
 * deals linking them, on API v2 through the official SDK (client.ts).
 *
 * Outbound: no batch writes exist, so `write()` sends one call per record, paced to the burst
 * limit. A linked record (known id) costs exactly one PATCH and no lookup. A record never seen is
 * searched for once (exact email for persons, else the upsert key) and then updated or created; a
 * failed search fails that record — it is never taken for "not found" (design.md §8.1).
 *
 * Inbound: incremental pulls with `updated_since` + `sort_by=update_time` + Pipedrive's cursor.
 * `update_time` has one-second resolution, so our cursor keeps the last second and a content hash
 * of each record delivered at it: records re-read at that second are skipped unless they changed.
 * Deletes come from webhooks and from full passes (the engine's reconciliation).
 */
import type {
  ChangePage,
  Connector,
  ObjectSchema,
  QuotaState,
  ReadOptions,
  RemoteRecord,
  WebhookChange,
  WebhookRequest,
  WebhookResult,
  WriteItem,
  WriteOutcome,
} from '../../src/connector-kit/connector.ts';
import type { ConnectorLogger } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError, toCrmhubError } from '../../src/connector-kit/errors.ts';
import type { FieldValues } from '../../src/core/types.ts';
import { PipedriveClient, type PipedriveClientOptions, type PipedriveEntity, type V2Record } from './client.ts';
import { decodePullCursor, encodePullCursor, type PullCursor } from './cursor.ts';
import { ENTITY_BY_OBJECT, OBJECT_BY_ENTITY, PIPEDRIVE_BATCH, pipedriveDeclaration } from './declaration.ts';
import { FieldResolver, type FieldCatalogue } from './field-resolver.ts';
import { CUSTOM_KEY, describeFields, isStandardField, memoOf, recordHash, toFields, toWriteBody, type ContactMemo } from './objects.ts';
import { parsePipedriveWebhook, verifyBasicAuth } from './webhooks.ts';

export interface PipedriveConnectorOptions extends PipedriveClientOptions {
  /** HTTP Basic credentials Pipedrive sends with webhooks (set on the subscription). */
  webhookUser?: string;
  webhookPassword?: string;
  logger?: ConnectorLogger;
  /** How long the custom-field catalogue is trusted, ms. Default 60 000. */
  fieldsTtlMs?: number;
}

/** Memo entries kept (persons' names, emails, phones) so partial writes keep the other values. */
const MEMO_CAP = 200_000;
/** Page size when the engine does not say; Pipedrive's maximum is 500. */
const DEFAULT_PAGE = 100;

function iso(time: unknown): string {
  const ms = typeof time === 'string' ? Date.parse(time.includes('T') ? time : `${time.replace(' ', 'T')}Z`) : NaN;
  return Number.isNaN(ms) ? new Date(0).toISOString() : new Date(ms).toISOString();
}

export class PipedriveConnector implements Connector {
  readonly declaration = pipedriveDeclaration;
  readonly client: PipedriveClient;
  readonly fields: FieldResolver;
  private readonly memos = new Map<string, ContactMemo>();
  private selfUser: Promise<string> | null = null;
  private readonly now: () => number;

  constructor(private readonly options: PipedriveConnectorOptions) {
    this.now = options.now ?? Date.now;
    this.client = new PipedriveClient(options);
    this.fields = new FieldResolver(this.client, this.now, options.fieldsTtlMs ?? 60_000);
  }

  private entity(object: string): PipedriveEntity {
    const entity = ENTITY_BY_OBJECT[object];
    if (!entity) {
      throw new CrmhubError('config', `Pipedrive has no object "${object}" here (persons, organizations, deals)`, {
        code: 'PIPEDRIVE_UNKNOWN_OBJECT',
        context: { connector: 'pipedrive', object },
      });
    }
    return entity;
  }

  private remember(entity: PipedriveEntity, record: V2Record): void {
    if (entity !== 'person') return;
    const key = String(record.id);
    this.memos.delete(key);
    this.memos.set(key, memoOf(record));
    if (this.memos.size > MEMO_CAP) {
      const oldest = this.memos.keys().next().value;
      if (oldest !== undefined) this.memos.delete(oldest);
    }
  }

  private async catalogueOrUndefined(entity: PipedriveEntity): Promise<FieldCatalogue | undefined> {
    try {
      return await this.fields.catalogue(entity);
    } catch (error) {
      this.options.logger?.warn({ err: toCrmhubError(error).toJSON() }, 'pipedrive fields unavailable; custom fields left out');
      return undefined;
    }
  }

  private toRemote(entity: PipedriveEntity, record: V2Record, catalogue: FieldCatalogue | undefined, only?: string[]): RemoteRecord {
    this.remember(entity, record);
    let fields: FieldValues = toFields(entity, record, catalogue);
    if (only) {
      const keep = new Set(only);
      const byKey: FieldValues = {};
      // Fields asked for by 40-character key (a mapping resolved against describe()) come by key.
      for (const k of keep) {
        const def = CUSTOM_KEY.test(k) ? catalogue?.byKey.get(k) : undefined;
        if (def && def.field_name in fields) byKey[k] = fields[def.field_name] ?? null;
      }
      fields = { ...Object.fromEntries(Object.entries(fields).filter(([k]) => keep.has(k))), ...byKey };
    }
    return {
      object: OBJECT_BY_ENTITY[entity],
      id: String(record.id),
      fields,
      modifiedAt: iso(record.update_time),
      ...((record as { is_deleted?: unknown }).is_deleted === true ? { deleted: true } : {}),
    };
  }

  async readChanges(object: string, cursor: string | null, options: ReadOptions = {}): Promise<ChangePage> {
    const entity = this.entity(object);
    const limit = Math.min(500, Math.max(1, options.pageSize ?? DEFAULT_PAGE));
    const previous = cursor === null ? null : decodePullCursor(cursor);
    let state: PullCursor;
    if (options.full) {
      // A full pass pages by id; afterwards pulls go on from when it started (minus clock skew).
      state = previous?.full ? previous : { full: true, since: null, seen: {}, page: null, startedAt: new Date(this.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z') };
    } else {
      state = previous && !previous.full ? previous : { since: null, seen: {}, page: null };
    }
    // Field names first: a page must never go out with its custom fields silently missing.
    const catalogue = await this.fields.catalogue(entity);
    const { data, nextCursor } = await this.client.list(entity, {
      ...(state.full ? { sort_by: 'id' as const } : { sort_by: 'update_time' as const, ...(state.since ? { updated_since: state.since } : {}) }),
      sort_direction: 'asc',
      limit,
      ...(state.page ? { cursor: state.page } : {}),
    });
    const records: RemoteRecord[] = [];
    let hw = state.hw ?? state.since ?? null;
    let hwSeen: Record<string, string> = { ...(state.hwSeen ?? state.seen) };
    for (const r of data) {
      const ut = typeof r.update_time === 'string' ? r.update_time : null;
      const hash = recordHash(r);
      const id = String(r.id);
      const skip = !state.full && ut !== null && ut === state.since && state.seen[id] === hash;
      if (!skip) records.push(this.toRemote(entity, r, catalogue, options.fields));
      if (!state.full && ut !== null) {
        if (hw === null || ut > hw) {
          hw = ut;
          hwSeen = { [id]: hash };
        } else if (ut === hw) hwSeen[id] = hash;
      }
    }
    if (nextCursor) {
      return { records, nextCursor: encodePullCursor({ ...state, page: nextCursor, ...(hw ? { hw } : {}), hwSeen }), done: false };
    }
    const next: PullCursor = state.full ? { since: state.startedAt ?? null, seen: {}, page: null } : { since: hw, seen: hwSeen, page: null };
    return { records, nextCursor: encodePullCursor(next), done: true };
  }

  async readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]> {
    const entity = this.entity(object);
    const numeric = [...new Set(ids.filter((id) => /^\d+$/.test(id)).map(Number))];
    if (numeric.length === 0) return [];
    const catalogue = await this.fields.catalogue(entity);
    const out: RemoteRecord[] = [];
    for (let i = 0; i < numeric.length; i += PIPEDRIVE_BATCH) {
      const chunk = numeric.slice(i, i + PIPEDRIVE_BATCH);
      // One `GET …?ids=` call reads up to 100 records (the `ids` filter cap).
      const { data } = await this.client.list(entity, { ids: chunk, limit: PIPEDRIVE_BATCH });
      for (const r of data) out.push(this.toRemote(entity, r, catalogue, fields));
    }
    return out;
  }

  async write(object: string, items: WriteItem[]): Promise<WriteOutcome[]> {
    const entity = this.entity(object);
    if (items.length > PIPEDRIVE_BATCH) throw new TypeError(`at most ${PIPEDRIVE_BATCH} items per write`);
    const outcomes = await Promise.all(
      items.map(async (item): Promise<WriteOutcome> => {
        try {
          return await this.writeOne(entity, item);
        } catch (error) {
          const e = toCrmhubError(error, { connector: 'pipedrive', object, record: item.remoteId ?? item.ref });
          return { ref: item.ref, ok: false, error: e };
        }
      }),
    );
    // The whole call failed (auth, limits) when every item failed the same way: the engine then
    // pauses the connection rather than re-queueing each record.
    const failures = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
    const first = failures[0];
    if (first && failures.length === outcomes.length && (first.kind === 'auth' || first.kind === 'rate_limited') && failures.every((e) => e.kind === first.kind)) throw first;
    return outcomes;
  }

  private needsMemo(fields: FieldValues): boolean {
    const has = (k: string) => k in fields;
    return ((has('first_name') || has('last_name')) && !has('name') && !(has('first_name') && has('last_name'))) || (has('email') && !has('emails')) || (has('phone') && !has('phones'));
  }

  private async writeOne(entity: PipedriveEntity, item: WriteItem): Promise<WriteOutcome> {
    if (item.delete) {
      if (!item.remoteId) throw new CrmhubError('payload', 'Pipedrive: delete without a record id', { code: 'PIPEDRIVE_DELETE_WITHOUT_ID' });
      try {
        await this.client.remove(entity, Number(item.remoteId));
      } catch (error) {
        // Already gone is what a delete wants.
        if (!(error instanceof CrmhubError && error.code === 'PIPEDRIVE_NOT_FOUND')) throw error;
      }
      this.memos.delete(item.remoteId);
      return { ref: item.ref, ok: true, remoteId: item.remoteId, created: false };
    }
    const fields: FieldValues = { ...item.fields };
    let remoteId = item.remoteId;
    let created = false;
    if (remoteId === undefined) {
      const found = await this.lookup(entity, item, fields);
      remoteId = found?.id;
      // The upsert key is written too (the engine records it in the shadow) — unless the record
      // was found by that very value (an exact email match already holds it).
      if (item.upsertKey && !(item.upsertKey.field in fields) && !(found && found.by === item.upsertKey.field)) fields[item.upsertKey.field] = item.upsertKey.value;
    }
    if (remoteId === undefined) {
      const record = await this.withFieldRetry(entity, async () => this.client.create(entity, await this.createBody(entity, fields)));
      this.remember(entity, record);
      created = true;
      return { ref: item.ref, ok: true, remoteId: String(record.id), created, modifiedAt: iso(record.update_time) };
    }
    const id = Number(remoteId);
    if (entity === 'person' && this.needsMemo(fields) && !this.memos.has(remoteId)) {
      // Names and contact lists are written whole: read the person once when we know nothing of it.
      this.remember(entity, await this.client.get(entity, id));
    }
    const record = await this.withFieldRetry(entity, async () => {
      const body = await toWriteBody(entity, fields, this.fields, entity === 'person' ? (this.memos.get(String(id)) ?? null) : null);
      return Object.keys(body).length === 0 ? null : this.client.update(entity, id, body);
    });
    if (record) this.remember(entity, record);
    return { ref: item.ref, ok: true, remoteId: String(id), created, ...(record ? { modifiedAt: iso(record.update_time) } : {}) };
  }

  /** A write refused for an unknown custom key (field deleted since cached) is retried once with a fresh catalogue. */
  private async withFieldRetry<T>(entity: PipedriveEntity, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof CrmhubError && error.code === 'PIPEDRIVE_UNKNOWN_CUSTOM_FIELD')) throw error;
      this.fields.invalidate(entity);
      return run();
    }
  }

  private async createBody(entity: PipedriveEntity, fields: FieldValues): Promise<Record<string, unknown>> {
    const body = await toWriteBody(entity, fields, this.fields, null);
    if (entity === 'person' && typeof body['name'] !== 'string') {
      // Pipedrive requires a name; a person known only by email is named by it until a rep fixes it.
      const email = typeof fields['email'] === 'string' ? fields['email'] : undefined;
      body['name'] = email ?? 'Unknown';
    }
    const required = entity === 'deal' ? 'title' : 'name';
    if (typeof body[required] !== 'string' || body[required] === '') {
      throw new CrmhubError('payload', `Pipedrive ${OBJECT_BY_ENTITY[entity]} need a ${required} to be created`, {
        code: 'PIPEDRIVE_MISSING_REQUIRED',
        context: { connector: 'pipedrive', object: OBJECT_BY_ENTITY[entity], field: required },
      });
    }
    return body;
  }

  /**
   * Finds a record never linked before: one exact search (email for persons, else the upsert key).
   * Resolves undefined only when the search succeeded and found nothing; several hits are a
   * `conflict` (ambiguous identity, parked for a person).
   */
  private async lookup(entity: PipedriveEntity, item: WriteItem, fields: FieldValues): Promise<{ id: string; by: string } | undefined> {
    let term: string | undefined;
    let searchIn: string | undefined;
    const email = item.upsertKey?.field === 'email' ? item.upsertKey.value : typeof fields['email'] === 'string' ? fields['email'] : undefined;
    if (entity === 'person' && email) {
      term = email.trim();
      searchIn = 'email';
    } else if (item.upsertKey) {
      term = item.upsertKey.value;
      const field = item.upsertKey.field;
      searchIn = isStandardField(entity, field) ? (field === 'title' ? 'title' : field === 'email' ? 'email' : 'name') : 'custom_fields';
      // A config error when the key's custom field is gone.
      if (searchIn === 'custom_fields') await (CUSTOM_KEY.test(field) ? this.fields.customByKey(entity, field) : this.fields.customField(entity, field));
    }
    if (!term || !searchIn) return undefined;
    const ids = await this.client.search(entity, term, searchIn);
    if (ids.length > 1) {
      throw new CrmhubError('conflict', `Pipedrive has ${ids.length} ${OBJECT_BY_ENTITY[entity]} matching ${searchIn} "${term}"`, {
        code: 'PIPEDRIVE_AMBIGUOUS_MATCH',
        context: { connector: 'pipedrive', object: OBJECT_BY_ENTITY[entity], ids: ids.slice(0, 10).join(',') },
      });
    }
    return ids.length === 1 ? { id: String(ids[0]), by: searchIn === 'custom_fields' && item.upsertKey ? item.upsertKey.field : searchIn } : undefined;
  }

  async handleWebhook(request: WebhookRequest): Promise<WebhookResult> {
    verifyBasicAuth(request, this.options.webhookUser, this.options.webhookPassword);
    const parsed = parsePipedriveWebhook(request.rawBody);
    if (!parsed) return { changes: [] };
    const catalogue = await this.catalogueOrUndefined(parsed.entity);
    const changedFields = new Set<string>();
    for (const key of parsed.changedKeys) {
      if (key === 'emails') ['email', 'emails'].forEach((k) => changedFields.add(k));
      else if (key === 'phones') ['phone', 'phones'].forEach((k) => changedFields.add(k));
      else changedFields.add(key);
    }
    for (const key of parsed.changedCustomKeys) {
      const def = catalogue?.byKey.get(key);
      if (def) changedFields.add(def.field_name);
    }
    const change: WebhookChange = {
      ...parsed.change,
      ...(parsed.data ? { fields: toFields(parsed.entity, parsed.data, catalogue) } : {}),
      ...(changedFields.size > 0 ? { changedFields: [...changedFields] } : {}),
      origin: await this.originOf(parsed.changeSource, parsed.userId),
    };
    return { changes: [change] };
  }

  /** `api` writes by the token's own user are ours; `app` (UI) and other users' API writes are not. */
  private async originOf(changeSource: string | null, userId: string | null): Promise<'self' | 'other' | 'unknown'> {
    if (changeSource === null) return 'unknown';
    if (changeSource !== 'api') return 'other';
    if (userId === null) return 'unknown';
    this.selfUser ??= this.client.me().then((me) => String(me.id));
    try {
      return (await this.selfUser) === userId ? 'self' : 'other';
    } catch {
      this.selfUser = null;
      return 'unknown';
    }
  }

  async describe(object: string): Promise<ObjectSchema> {
    const entity = this.entity(object);
    const catalogue = await this.fields.catalogue(entity, true);
    return { object, fields: describeFields(entity, catalogue) };
  }

  quota(): QuotaState {
    return this.client.quota();
  }
}
