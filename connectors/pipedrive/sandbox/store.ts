/**
 * In-memory records of the Pipedrive sandbox, kept in API v2 shape (fixtures `v2.persons.*.json`,
 * `v2.organizations.list.200.json`, `v2.deals.list.200.json`). Times are RFC 3339 with second
 * resolution, as Pipedrive returns them — so many records share one `update_time`, which is what
 * makes incremental cursors need a tie-breaker.
 */
import type { FieldCatalogue} from './fields.ts';
import { type PipedriveEntity } from './fields.ts';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface StoredRecord {
  id: number;
  entity: PipedriveEntity;
  /** Standard attributes in v2 shape, `custom_fields` excluded. */
  data: Record<string, Json>;
  /** Custom field values by 40-character key, in v2 value shape (enum: option id, set: ids). */
  custom: Record<string, Json>;
  deleted: boolean;
  /** ms; search finds the record only after this (search index lag). */
  searchableAfter: number;
}

/** A change the store made; the webhook side turns it into v1/v2 payloads. */
export interface ChangeEvent {
  action: 'create' | 'change' | 'delete';
  entity: PipedriveEntity;
  id: number;
  /** v2 view after the change; null on delete. */
  current: Record<string, Json> | null;
  /** v2 view before the change; null on create. */
  previous: Record<string, Json> | null;
  changeSource: 'app' | 'api';
  userId: number;
  /** ms */
  at: number;
}

/** Users of the sandbox company. The API token belongs to user 1; reps edit through the UI. */
export const USERS = [
  { id: 1, name: 'Sandbox Admin', email: 'admin@sandbox.pipedrive.test' },
  { id: 2, name: 'Riley Rep', email: 'riley@sandbox.pipedrive.test' },
  { id: 3, name: 'Morgan Seller', email: 'morgan@sandbox.pipedrive.test' },
  { id: 4, name: 'Jordan Closer', email: 'jordan@sandbox.pipedrive.test' },
] as const;
export const API_USER_ID = 1;
export const COMPANY_ID = 7_700_001;

/** One pipeline with Pipedrive's default stages. */
export const STAGES = [
  { id: 1, name: 'Qualified', pipeline_id: 1, order_nr: 1, deal_probability: 100 },
  { id: 2, name: 'Contact Made', pipeline_id: 1, order_nr: 2, deal_probability: 100 },
  { id: 3, name: 'Demo Scheduled', pipeline_id: 1, order_nr: 3, deal_probability: 100 },
  { id: 4, name: 'Proposal Made', pipeline_id: 1, order_nr: 4, deal_probability: 100 },
  { id: 5, name: 'Negotiations Started', pipeline_id: 1, order_nr: 5, deal_probability: 100 },
] as const;

/** RFC 3339 with second resolution, `2025-01-01T10:20:00Z`. */
export function pipedriveTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function defaults(entity: PipedriveEntity, id: number, now: string): Record<string, Json> {
  switch (entity) {
    case 'person':
      return {
        id, name: '', first_name: '', last_name: '', owner_id: API_USER_ID, org_id: null, add_time: now, update_time: now,
        emails: [], phones: [], is_deleted: false, visible_to: 3, label_ids: [], picture_id: null,
      };
    case 'organization':
      return {
        id, name: '', owner_id: API_USER_ID, add_time: now, update_time: now, is_deleted: false, visible_to: 3, address: null,
        label_ids: [], website: null, linkedin: null, industry: null, annual_revenue: null, employee_count: null,
      };
    case 'deal':
      return {
        id, title: '', creator_user_id: API_USER_ID, owner_id: API_USER_ID, value: 0, person_id: null, org_id: null, stage_id: 1,
        pipeline_id: 1, currency: 'USD', add_time: now, update_time: now, stage_change_time: null, is_deleted: false,
        is_archived: false, archive_time: null, status: 'open', probability: null, lost_reason: null, visible_to: 3, close_time: null,
        won_time: null, lost_time: null, expected_close_date: null, label_ids: [], origin: 'API', origin_id: null, channel: null,
        channel_id: null, source_lead_id: null, arr: null, mrr: null, acv: null,
      };
  }
}

function splitName(name: string): { first_name: string; last_name: string } {
  const parts = name.trim().split(/\s+/);
  const first = parts.shift() ?? '';
  return { first_name: first, last_name: parts.join(' ') };
}

function normaliseContacts(value: Json | undefined): Json {
  if (!Array.isArray(value)) return [];
  return value.map((c, i) => {
    const o = (c ?? {}) as Record<string, Json>;
    return { value: o['value'] ?? '', primary: o['primary'] ?? i === 0, label: o['label'] ?? 'work' };
  });
}

function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export interface StoreSnapshot {
  records: StoredRecord[];
  nextId: Record<PipedriveEntity, number>;
  fields: ReturnType<FieldCatalogue['snapshot']>;
}

export class PipedriveStore {
  readonly records: Record<PipedriveEntity, Map<number, StoredRecord>> = { person: new Map(), organization: new Map(), deal: new Map() };
  private nextId: Record<PipedriveEntity, number> = { person: 1, organization: 1, deal: 1 };
  /** Lower-cased email → person ids (exact-match search by email is the hot path). */
  private readonly emailIndex = new Map<string, Set<number>>();
  /** Records written through the API (not the control API), per entity. */
  readonly written: Record<PipedriveEntity, number> = { person: 0, organization: 0, deal: 0 };
  searchLagMs = 0;

  constructor(
    readonly fields: FieldCatalogue,
    private readonly emit: (event: ChangeEvent) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  get(entity: PipedriveEntity, id: number): StoredRecord | undefined {
    const r = this.records[entity].get(id);
    return r && !r.deleted ? r : undefined;
  }

  /** v2 view; `onlyCustom` limits `custom_fields` to those keys (the `custom_fields` query parameter). */
  render(record: StoredRecord, onlyCustom?: Set<string>): Record<string, Json> {
    const custom: Record<string, Json> = {};
    for (const def of this.fields.fields[record.entity]) {
      if (!def.is_custom_field) continue;
      if (onlyCustom && !onlyCustom.has(def.field_code)) continue;
      custom[def.field_code] = record.custom[def.field_code] ?? null;
    }
    return { ...record.data, is_deleted: record.deleted, custom_fields: custom };
  }

  /** Checks references (org, person, owner, stage) of a validated body; returns an error text or null. */
  checkReferences(body: Record<string, unknown>): string | null {
    const org = body['org_id'];
    if (typeof org === 'number' && !this.get('organization', org)) return `Organization with id ${org} was not found`;
    const person = body['person_id'];
    if (typeof person === 'number' && !this.get('person', person)) return `Person with id ${person} was not found`;
    const owner = body['owner_id'];
    if (typeof owner === 'number' && !USERS.some((u) => u.id === owner)) return `User with id ${owner} was not found`;
    const stage = body['stage_id'];
    if (typeof stage === 'number' && !STAGES.some((s) => s.id === stage)) return `Stage with id ${stage} was not found`;
    return null;
  }

  create(entity: PipedriveEntity, body: Record<string, unknown>, source: 'app' | 'api', userId: number): StoredRecord {
    const now = this.clock();
    const id = this.nextId[entity]++;
    const record: StoredRecord = { id, entity, data: defaults(entity, id, pipedriveTime(now)), custom: {}, deleted: false, searchableAfter: now + this.searchLagMs };
    this.apply(record, body, now);
    this.records[entity].set(id, record);
    this.index(record, true);
    if (source === 'api') this.written[entity]++;
    this.emit({ action: 'create', entity, id, current: this.render(record), previous: null, changeSource: source, userId, at: now });
    return record;
  }

  /** Applies a validated body; returns the record, or null when nothing changed. */
  update(entity: PipedriveEntity, id: number, body: Record<string, unknown>, source: 'app' | 'api', userId: number): StoredRecord | undefined {
    const record = this.get(entity, id);
    if (!record) return undefined;
    const before = this.render(record);
    const now = this.clock();
    this.index(record, false);
    this.apply(record, body, now);
    const after = this.render(record);
    const changed = Object.keys(after).some((k) => k !== 'update_time' && !sameJson(after[k], before[k]));
    if (!changed) {
      record.data['update_time'] = before['update_time'] ?? null;
      this.index(record, true);
      return record;
    }
    this.index(record, true);
    if (source === 'api') this.written[entity]++;
    this.emit({ action: 'change', entity, id, current: this.render(record), previous: before, changeSource: source, userId, at: now });
    return record;
  }

  remove(entity: PipedriveEntity, id: number, source: 'app' | 'api', userId: number): boolean {
    const record = this.get(entity, id);
    if (!record) return false;
    const before = this.render(record);
    const now = this.clock();
    record.deleted = true;
    record.data['update_time'] = pipedriveTime(now);
    this.index(record, false);
    if (source === 'api') this.written[entity]++;
    this.emit({ action: 'delete', entity, id, current: null, previous: before, changeSource: source, userId, at: now });
    return true;
  }

  private apply(record: StoredRecord, body: Record<string, unknown>, now: number): void {
    for (const [key, raw] of Object.entries(body)) {
      const value = raw as Json;
      if (key === 'custom_fields') {
        for (const [k, v] of Object.entries((value ?? {}) as Record<string, Json>)) {
          if (v === null) delete record.custom[k];
          else record.custom[k] = v;
        }
        continue;
      }
      if (key === 'emails' || key === 'phones' || key === 'im') {
        record.data[key] = normaliseContacts(value);
        continue;
      }
      if (key === 'stage_id' && record.data['stage_id'] !== value) {
        record.data['stage_change_time'] = pipedriveTime(now);
        const stage = STAGES.find((s) => s.id === value);
        if (stage) record.data['pipeline_id'] = stage.pipeline_id;
      }
      if (key === 'status' && record.data['status'] !== value) {
        const t = pipedriveTime(now);
        if (value === 'won') record.data['won_time'] = t;
        if (value === 'lost') record.data['lost_time'] = t;
        record.data['close_time'] = value === 'open' ? null : t;
      }
      record.data[key] = value;
      if (key === 'name' && record.entity === 'person' && typeof value === 'string') Object.assign(record.data, splitName(value));
    }
    record.data['update_time'] = pipedriveTime(now);
  }

  private index(record: StoredRecord, add: boolean): void {
    if (record.entity !== 'person') return;
    const emails = Array.isArray(record.data['emails']) ? record.data['emails'] : [];
    for (const e of emails) {
      const v = (e as Record<string, Json>)['value'];
      if (typeof v !== 'string') continue;
      const key = v.trim().toLowerCase();
      let set = this.emailIndex.get(key);
      if (add) {
        if (!set) this.emailIndex.set(key, (set = new Set()));
        set.add(record.id);
      } else {
        set?.delete(record.id);
        if (set?.size === 0) this.emailIndex.delete(key);
      }
    }
  }

  /** Ids of live persons holding exactly this email (case-insensitive). */
  personsByEmail(email: string): number[] {
    return [...(this.emailIndex.get(email.trim().toLowerCase()) ?? [])];
  }

  /** Removes a deleted custom field's values from every record, as Pipedrive does. */
  dropCustomField(entity: PipedriveEntity, key: string): void {
    for (const r of this.records[entity].values()) delete r.custom[key];
  }

  counts(): Record<string, number> {
    const live = (e: PipedriveEntity) => [...this.records[e].values()].filter((r) => !r.deleted).length;
    return { persons: live('person'), organizations: live('organization'), deals: live('deal') };
  }

  clear(): void {
    for (const map of Object.values(this.records)) map.clear();
    this.emailIndex.clear();
    this.nextId = { person: 1, organization: 1, deal: 1 };
    for (const k of Object.keys(this.written) as PipedriveEntity[]) this.written[k] = 0;
  }

  snapshot(): StoreSnapshot {
    return {
      records: Object.values(this.records).flatMap((m) => [...m.values()]),
      nextId: this.nextId,
      fields: this.fields.snapshot(),
    };
  }

  restore(state: StoreSnapshot): void {
    this.clear();
    this.fields.restore(state.fields);
    this.nextId = { ...state.nextId };
    for (const r of state.records) {
      this.records[r.entity].set(r.id, r);
      if (!r.deleted) this.index(r, true);
    }
  }
}
