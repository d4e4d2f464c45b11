/**
 * The HubSpot connector (issue 6): contacts (person), companies (account) and deals (linked to
 * both) with their associations. Outbound: batch upsert by a unique property, 100 per call, one
 * outcome per item matched by `objectWriteTraceId` (our `ref`), merged contacts followed to their
 * new id. Inbound: webhooks v3, and incremental pulls through search sorted by the modified-time
 * property, re-anchored before the 10,000-result cap, then archived records for deletes.
 */
import type {
  ChangePage,
  Connector,
  ConnectorDeclaration,
  ConnectorLimits,
  ObjectSchema,
  QuotaState,
  ReadOptions,
  RemoteRecord,
  WebhookRequest,
  WebhookResult,
  WriteItem,
  WriteOutcome,
} from '../../src/connector-kit/connector.ts';
import type { ConnectorLogger } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { HubSpotClient, type HsBatch, type HsObject, type HsWriteInput } from './client.ts';
import { HUBSPOT_OBJECTS, hubspotDeclaration, type HubSpotObjectInfo } from './declaration.ts';
import { classifyBatchError } from './errors.ts';
import {
  SEARCH_PAGE_MAX,
  SEARCH_RESULT_CAP,
  decodeCursor,
  encodeCursor,
  initialCursor,
  mergedIds,
  modifiedMs,
  pruneSeen,
  toHubSpotValue,
  toRemoteField,
  toRemoteRecord,
} from './objects.ts';
import { eventToChanges, parseHubSpotEvents, verifyHubSpotSignature } from './webhooks.ts';

export interface HubSpotConnectorOptions {
  accessToken: string;
  /** Verifies webhook signatures (the app's client secret). Webhooks are refused without it. */
  clientSecret?: string;
  /** Default https://api.hubapi.com. */
  baseUrl?: string;
  /** Our app's id: tells our own writes apart in property history (webhooks carry it themselves). */
  appId?: string;
  /** Overrides of the declared limits (e.g. 190 per 10 s for Professional/Enterprise). */
  limits?: Partial<ConnectorLimits>;
  /** How far back each incremental pull re-reads to cover search-index lag, ms. Default 2000. */
  lookbackMs?: number;
  logger?: ConnectorLogger;
}

/** Prefix of link fields (`associations.companies`) that map to HubSpot associations, not properties. */
const ASSOCIATION_PREFIX = 'associations.';
/** batch read with propertiesWithHistory takes at most 50 inputs (HubSpot API error text, reference §1.1). */
const HISTORY_BATCH = 50;
const BATCH = 100;

type WriteKind = 'create' | 'update' | 'upsert';

interface Pending {
  item: WriteItem;
  properties: Record<string, string>;
  links: { to: string; id: string }[];
}

export class HubSpotConnector implements Connector {
  readonly declaration: ConnectorDeclaration;
  readonly client: HubSpotClient;
  private readonly lookbackMs: number;
  private readonly propertyNames = new Map<string, Promise<string[]>>();

  constructor(private readonly options: HubSpotConnectorOptions) {
    this.declaration = hubspotDeclaration(options.limits);
    this.client = new HubSpotClient({ accessToken: options.accessToken, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
    this.lookbackMs = options.lookbackMs ?? 2_000;
  }

  private info(object: string): HubSpotObjectInfo {
    const info = HUBSPOT_OBJECTS[object];
    if (!info) throw new CrmhubError('config', `HubSpot connector has no object "${object}" (contacts, companies, deals)`, { code: 'HUBSPOT_UNKNOWN_OBJECT', context: { connector: 'hubspot', object } });
    return info;
  }

  quota(): QuotaState {
    return { ...this.client.quotaState };
  }

  // ---------------------------------------------------------------- schema

  async describe(object: string): Promise<ObjectSchema> {
    this.info(object);
    const properties = await this.client.getProperties(object);
    return { object, fields: properties.filter((p) => p.archived !== true).map(toRemoteField) };
  }

  /** Creates the crmhub-owned custom properties (notes/custom-fields.md) that are missing. Returns their names. */
  async ensureCustomProperties(object: string): Promise<string[]> {
    const info = this.info(object);
    const existing = new Set((await this.client.getProperties(object)).map((p) => p.name));
    const created: string[] = [];
    for (const spec of info.customProperties) {
      if (existing.has(spec.name)) continue;
      await this.client.createProperty(object, {
        name: spec.name,
        label: spec.label,
        type: spec.type,
        fieldType: spec.fieldType,
        groupName: object === 'contacts' ? 'contactinformation' : object === 'companies' ? 'companyinformation' : 'dealinformation',
        ...(spec.hasUniqueValue ? { hasUniqueValue: true } : {}),
        ...(spec.options ? { options: spec.options.map((value, i) => ({ label: value, value, displayOrder: i })) } : {}),
      });
      created.push(spec.name);
    }
    this.propertyNames.delete(object);
    return created;
  }

  private async allProperties(object: string): Promise<string[]> {
    let names = this.propertyNames.get(object);
    if (!names) {
      names = this.client.getProperties(object).then((ps) => ps.filter((p) => p.archived !== true).map((p) => p.name));
      this.propertyNames.set(object, names);
      names.catch(() => this.propertyNames.delete(object));
    }
    return names;
  }

  private async readProperties(object: string, info: HubSpotObjectInfo, fields: string[] | undefined): Promise<{ properties: string[]; links: string[] }> {
    const wanted = fields ?? (await this.allProperties(object));
    const links = (fields ?? (info.declaration.links ?? []).map((l) => l.field)).filter((f) => f.startsWith(ASSOCIATION_PREFIX)).map((f) => f.slice(ASSOCIATION_PREFIX.length));
    const properties = new Set(wanted.filter((f) => !f.startsWith(ASSOCIATION_PREFIX)));
    properties.add(info.modifiedProperty);
    properties.add('hs_merged_object_ids');
    return { properties: [...properties], links };
  }

  /** Fills `associations.<object>` link fields (primary association first) for a page of records. */
  private async addLinks(object: string, records: RemoteRecord[], links: string[]): Promise<void> {
    const ids = records.filter((r) => !r.deleted && !r.mergedIntoId).map((r) => r.id);
    if (ids.length === 0) return;
    for (const to of links) {
      const found = await this.client.readAssociations(object, to, ids);
      for (const r of records) {
        if (r.deleted || r.mergedIntoId) continue;
        const targets = found.get(r.id) ?? [];
        // Primary labels (contact→company 1, deal→company 5) win over unlabelled ones.
        const primary = targets.find((t) => t.typeIds.includes(1) || t.typeIds.includes(5)) ?? targets[0];
        r.fields[`${ASSOCIATION_PREFIX}${to}`] = primary?.id ?? null;
      }
    }
  }

  private toRecords(object: string, info: HubSpotObjectInfo, objects: HsObject[]): RemoteRecord[] {
    const out: RemoteRecord[] = [];
    for (const o of objects) {
      const record = toRemoteRecord(object, o, info.modifiedProperty, this.options.appId);
      out.push(record);
      // A survivor of a merge announces the ids it absorbed, so the engine moves their links.
      for (const old of mergedIds(o)) out.push({ object, id: old, fields: {}, modifiedAt: record.modifiedAt, mergedIntoId: o.id });
    }
    return out;
  }

  // ---------------------------------------------------------------- reads

  async readChanges(object: string, cursor: string | null, options: ReadOptions = {}): Promise<ChangePage> {
    const info = this.info(object);
    // A full read starts over only on its first page: the engine passes `full` with every page of
    // the pass, each with the cursor the previous page returned (restarting there loops forever).
    const c = cursor === null ? initialCursor() : decodeCursor(cursor);
    const { properties, links } = await this.readProperties(object, info, options.fields);
    const records: RemoteRecord[] = [];

    if (c.phase === 'live') {
      const limit = Math.max(1, Math.min(options.pageSize ?? SEARCH_PAGE_MAX, SEARCH_PAGE_MAX));
      const page = await this.client.search(object, {
        filterGroups: [{ filters: [{ propertyName: info.modifiedProperty, operator: 'GTE', value: String(c.anchor) }] }],
        sorts: [{ propertyName: info.modifiedProperty, direction: 'ASCENDING' }],
        properties,
        limit,
        after: c.after ?? '0',
      });
      const fresh: HsObject[] = [];
      for (const o of page.results) {
        const ms = modifiedMs(o, info.modifiedProperty);
        if (c.seen[o.id] === ms) continue;
        c.seen[o.id] = ms;
        if (ms > c.maxTs) c.maxTs = ms;
        fresh.push(o);
      }
      records.push(...this.toRecords(object, info, fresh));
      if (page.nextAfter !== undefined) {
        const next = Number(page.nextAfter);
        // Re-anchor before the 10,000-result cap: a new query from the last timestamp seen, offset 0;
        // `seen` skips what was already returned at that timestamp.
        if (!Number.isFinite(next) || next + limit > SEARCH_RESULT_CAP) {
          c.anchor = c.maxTs;
          c.after = null;
          pruneSeen(c, c.anchor);
        } else {
          c.after = page.nextAfter;
          // Sorted ascending: only ids near the newest timestamp can come back (re-anchor, look-back).
          pruneSeen(c, c.maxTs - this.lookbackMs);
        }
        await this.addLinks(object, records, links);
        return { records, nextCursor: encodeCursor(c), done: false };
      }
      // Live records done. Search results may lag writes by a few seconds, so the next pull starts
      // early enough to catch records changed within `lookbackMs` of now that were not indexed yet
      // (never after the newest change seen); `seen` skips the ones already returned.
      c.phase = 'archived';
      c.after = null;
      // The look-back never reaches below what `seen` still covers (a re-anchor mid-read dropped
      // older entries), or it would hand back records already returned.
      c.anchor = pruneSeen(c, Math.max(c.seenFrom, Math.min(c.maxTs, Date.now() - this.lookbackMs)));
      await this.addLinks(object, records, links);
      if (records.length > 0) return { records, nextCursor: encodeCursor(c), done: false };
    }

    // Archived records (HubSpot keeps them 90 days) become deletes; only those archived since last time.
    const archived = await this.client.listArchived(object, c.archivedAfter ?? undefined, 100, [info.modifiedProperty]);
    for (const o of archived.results) {
      const at = Date.parse(o.archivedAt ?? o.updatedAt);
      if (at <= c.archivedSince) continue;
      if (at > c.archivedMax) c.archivedMax = at;
      records.push(toRemoteRecord(object, { ...o, archived: true }, info.modifiedProperty, this.options.appId));
    }
    if (archived.nextAfter !== undefined) {
      c.archivedAfter = archived.nextAfter;
      return { records, nextCursor: encodeCursor(c), done: false };
    }
    c.phase = 'live';
    c.archivedAfter = null;
    c.archivedSince = Math.max(c.archivedSince, c.archivedMax);
    return { records, nextCursor: encodeCursor(c), done: true };
  }

  async readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]> {
    const info = this.info(object);
    const { properties, links } = await this.readProperties(object, info, fields);
    // Property history gives per-field change times for latest_wins; cheap only for named fields.
    const history = fields ? properties.filter((p) => p !== 'hs_merged_object_ids') : [];
    const chunk = history.length > 0 ? HISTORY_BATCH : BATCH;
    const out: RemoteRecord[] = [];
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += chunk) {
      const part = unique.slice(i, i + chunk);
      const batch = await this.client.batchRead(object, part, properties, history).catch((error: unknown) => {
        // Missing ids come back as a 207 error entry; should HubSpot answer 404 for an all-missing batch, that is "none found".
        if (error instanceof CrmhubError && error.code === 'HUBSPOT_OBJECT_NOT_FOUND') return { results: [], errors: [] };
        throw error;
      });
      const records = this.toRecords(object, info, batch.results);
      await this.addLinks(object, records, links);
      const asked = new Set(part);
      out.push(...records.filter((r) => asked.has(r.id) || r.mergedIntoId === undefined));
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  async write(object: string, items: WriteItem[]): Promise<WriteOutcome[]> {
    const info = this.info(object);
    if (items.length > info.declaration.maxBatchSize) {
      throw new CrmhubError('internal', `write got ${items.length} items; HubSpot batches take at most ${info.declaration.maxBatchSize}`, { code: 'HUBSPOT_BATCH_TOO_LARGE', context: { connector: 'hubspot', object } });
    }
    const outcomes = new Map<string, WriteOutcome>();
    const pending = items.map((item) => this.prepare(item));

    const deletes = pending.filter((p) => p.item.delete);
    const live = pending.filter((p) => !p.item.delete);
    if (deletes.length > 0) await this.archive(object, deletes, outcomes);

    const updates = live.filter((p) => p.item.remoteId !== undefined);
    const upserts = live.filter((p) => p.item.remoteId === undefined && p.item.upsertKey !== undefined);
    const creates = live.filter((p) => p.item.remoteId === undefined && p.item.upsertKey === undefined);

    // Nothing changed on a linked record: no call needed.
    for (const p of updates.filter((u) => Object.keys(u.properties).length === 0 && u.links.length === 0)) {
      outcomes.set(p.item.ref, { ref: p.item.ref, ok: true, remoteId: p.item.remoteId ?? '', created: false });
    }
    await this.run(object, 'update', updates.filter((u) => Object.keys(u.properties).length > 0 || u.links.length > 0), outcomes);
    // Upsert needs one idProperty per call: group by key field.
    const byKey = new Map<string, Pending[]>();
    for (const p of upserts) {
      const field = p.item.upsertKey?.field ?? '';
      byKey.set(field, [...(byKey.get(field) ?? []), p]);
    }
    for (const group of byKey.values()) await this.run(object, 'upsert', group, outcomes);
    await this.run(object, 'create', creates, outcomes);
    await this.writeLinks(object, pending, outcomes);

    return items.map(
      (item) =>
        outcomes.get(item.ref) ?? {
          ref: item.ref,
          ok: false,
          error: new CrmhubError('transient', 'HubSpot returned no result for this input', { code: 'HUBSPOT_RESULT_MISSING', context: { connector: 'hubspot', object, record: item.ref } }),
        },
    );
  }

  private prepare(item: WriteItem): Pending {
    const properties: Record<string, string> = {};
    const links: { to: string; id: string }[] = [];
    for (const [name, value] of Object.entries(item.fields)) {
      if (name.startsWith(ASSOCIATION_PREFIX)) {
        const to = name.slice(ASSOCIATION_PREFIX.length);
        for (const id of Array.isArray(value) ? value : [value]) if (typeof id === 'string' || typeof id === 'number') links.push({ to, id: String(id) });
        continue;
      }
      properties[name] = toHubSpotValue(value);
    }
    return { item, properties, links };
  }

  private async archive(object: string, deletes: Pending[], outcomes: Map<string, WriteOutcome>): Promise<void> {
    const ids: string[] = [];
    for (const p of deletes) {
      if (p.item.remoteId === undefined) {
        outcomes.set(p.item.ref, { ref: p.item.ref, ok: false, error: new CrmhubError('payload', 'cannot archive a HubSpot record without its id', { code: 'HUBSPOT_DELETE_WITHOUT_ID', context: { connector: 'hubspot', object, record: p.item.ref } }) });
        continue;
      }
      ids.push(p.item.remoteId);
    }
    if (ids.length === 0) return;
    // batch/archive answers 204 for all inputs (unknown ids included): archiving is idempotent.
    await this.client.batchArchive(object, ids);
    for (const p of deletes) if (p.item.remoteId !== undefined) outcomes.set(p.item.ref, { ref: p.item.ref, ok: true, remoteId: p.item.remoteId, created: false });
  }

  private input(kind: WriteKind, p: Pending): HsWriteInput {
    const base: HsWriteInput = { properties: p.properties, objectWriteTraceId: p.item.ref };
    if (kind === 'update') return { ...base, id: p.item.remoteId ?? '' };
    if (kind === 'upsert') return { ...base, id: p.item.upsertKey?.value ?? '', idProperty: p.item.upsertKey?.field ?? '' };
    return base;
  }

  private async call(kind: WriteKind, object: string, inputs: HsWriteInput[]): Promise<HsBatch> {
    if (kind === 'update') return this.client.batchUpdate(object, inputs);
    if (kind === 'upsert') return this.client.batchUpsert(object, inputs);
    return this.client.batchCreate(object, inputs);
  }

  /**
   * One batch call. A whole-call 400/409 (HubSpot sometimes rejects a batch for one input rather
   * than answering 207) is bisected until the bad input stands alone; other failures reject.
   */
  private async run(object: string, kind: WriteKind, group: Pending[], outcomes: Map<string, WriteOutcome>): Promise<void> {
    if (group.length === 0) return;
    let batch: HsBatch;
    try {
      batch = await this.call(kind, object, group.map((p) => this.input(kind, p)));
    } catch (error) {
      if (!(error instanceof CrmhubError) || error.kind !== 'payload') throw error;
      if (group.length > 1) {
        const mid = Math.ceil(group.length / 2);
        await this.run(object, kind, group.slice(0, mid), outcomes);
        await this.run(object, kind, group.slice(mid), outcomes);
        return;
      }
      const only = group[0];
      if (only) await this.failed(object, kind, only, error, outcomes);
      return;
    }
    this.matchResults(object, kind, group, batch, outcomes);
    const retry: { p: Pending; error: CrmhubError }[] = [];
    for (const e of batch.errors) {
      const error = classifyBatchError(e, { object });
      for (const p of this.matchError(kind, group, e.context ?? {})) {
        if (outcomes.has(p.item.ref)) continue;
        retry.push({ p, error });
      }
    }
    for (const { p, error } of retry) await this.failed(object, kind, p, error, outcomes);
  }

  /** Follows a failed input where HubSpot tells us where the record went; otherwise records the failure. */
  private async failed(object: string, kind: WriteKind, p: Pending, error: CrmhubError, outcomes: Map<string, WriteOutcome>): Promise<void> {
    const ref = p.item.ref;
    // Update of an id HubSpot no longer has: it may have been merged away (the old id resolves to
    // the survivor on reads) — follow it; or deleted — then upsert by key when we have one.
    if (kind === 'update' && error.code === 'HUBSPOT_OBJECT_NOT_FOUND' && p.item.remoteId !== undefined) {
      const read = await this.client.batchRead(object, [p.item.remoteId], ['hs_merged_object_ids']);
      const survivor = read.results.find((r) => r.id !== p.item.remoteId);
      if (survivor) {
        const moved = await this.client.batchUpdate(object, [{ id: survivor.id, properties: p.properties, objectWriteTraceId: ref }]);
        const r = moved.results[0];
        if (r) {
          outcomes.set(ref, { ref, ok: true, remoteId: r.id, created: false, modifiedAt: r.updatedAt, movedFrom: p.item.remoteId });
          return;
        }
      } else if (p.item.upsertKey) {
        const { remoteId: _gone, ...rest } = p.item;
        await this.run(object, 'upsert', [{ ...p, item: rest }], outcomes);
        return;
      }
    }
    // Create hit an existing unique value: "Contact already exists. Existing ID: 512" — update that record.
    const existing = kind === 'create' && error.code === 'HUBSPOT_CONFLICT' ? /Existing ID: (\d+)/.exec(error.message)?.[1] : undefined;
    if (existing) {
      await this.run(object, 'update', [{ ...p, item: { ...p.item, remoteId: existing } }], outcomes);
      const o = outcomes.get(ref);
      if (o?.ok) outcomes.set(ref, { ...o, created: false });
      return;
    }
    outcomes.set(ref, { ref, ok: false, error: new CrmhubError(error.kind, error.message, { code: error.code, cause: error.cause, context: { ...error.context, record: ref } }) });
  }

  private matchResults(object: string, kind: WriteKind, group: Pending[], batch: HsBatch, outcomes: Map<string, WriteOutcome>): void {
    const byRef = new Map(group.map((p) => [p.item.ref, p]));
    const byKey = new Map(group.filter((p) => p.item.upsertKey).map((p) => [(p.item.upsertKey?.value ?? '').toLowerCase(), p]));
    const byId = new Map(group.filter((p) => p.item.remoteId).map((p) => [p.item.remoteId ?? '', p]));
    for (const r of batch.results) {
      let p = r.objectWriteTraceId ? byRef.get(r.objectWriteTraceId) : undefined;
      if (!p && kind === 'upsert') {
        const field = group[0]?.item.upsertKey?.field ?? '';
        p = byKey.get((r.properties[field] ?? '').toLowerCase());
      }
      if (!p && kind === 'update') p = byId.get(r.id);
      if (!p) continue;
      const ref = p.item.ref;
      const movedFrom = p.item.remoteId !== undefined && p.item.remoteId !== r.id ? p.item.remoteId : undefined;
      outcomes.set(ref, {
        ref,
        ok: true,
        remoteId: r.id,
        created: kind === 'create' ? true : kind === 'upsert' ? r._new === true : false,
        modifiedAt: r.updatedAt,
        ...(movedFrom ? { movedFrom } : {}),
      });
      void object;
    }
  }

  private matchError(kind: WriteKind, group: Pending[], context: Record<string, string[]>): Pending[] {
    const traces = new Set(context.objectWriteTraceId ?? []);
    if (traces.size > 0) return group.filter((p) => traces.has(p.item.ref));
    const ids = new Set((context.ids ?? []).map((i) => i.toLowerCase()));
    if (ids.size === 0) return group.length === 1 ? group : [];
    if (kind === 'upsert') return group.filter((p) => ids.has((p.item.upsertKey?.value ?? '').toLowerCase()));
    if (kind === 'update') return group.filter((p) => ids.has((p.item.remoteId ?? '').toLowerCase()));
    return [];
  }

  /** Adds default associations for `associations.<object>` link fields of written records. */
  private async writeLinks(object: string, pending: Pending[], outcomes: Map<string, WriteOutcome>): Promise<void> {
    const byTarget = new Map<string, { from: string; to: string; ref: string }[]>();
    for (const p of pending) {
      const o = outcomes.get(p.item.ref);
      if (!o?.ok || p.item.delete) continue;
      for (const link of p.links) byTarget.set(link.to, [...(byTarget.get(link.to) ?? []), { from: o.remoteId, to: link.id, ref: p.item.ref }]);
    }
    for (const [to, pairs] of byTarget) {
      try {
        await this.client.associateDefault(object, to, pairs);
      } catch (error) {
        if (!(error instanceof CrmhubError) || error.kind !== 'payload') throw error;
        for (const pair of pairs) outcomes.set(pair.ref, { ref: pair.ref, ok: false, error });
      }
    }
  }

  // ---------------------------------------------------------------- webhooks

  handleWebhook(request: WebhookRequest): Promise<WebhookResult> {
    try {
      if (!this.options.clientSecret) {
        throw new CrmhubError('config', 'HUBSPOT_CLIENT_SECRET is not set: webhook signatures cannot be checked', { code: 'HUBSPOT_NO_CLIENT_SECRET', context: { connector: 'hubspot' } });
      }
      verifyHubSpotSignature(request, this.options.clientSecret);
      const events = parseHubSpotEvents(request.rawBody);
      const seen = new Set<string>();
      const changes = events.flatMap((e) => eventToChanges(e, this.options.appId)).filter((c) => {
        if (seen.has(c.deliveryId)) return false;
        seen.add(c.deliveryId);
        return true;
      });
      return Promise.resolve({ changes });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new CrmhubError('internal', String(error), { code: 'HUBSPOT_INTERNAL' }));
    }
  }
}
