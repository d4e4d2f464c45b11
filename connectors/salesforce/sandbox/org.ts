/**
 * The sandbox org's records: an in-memory table per sObject with unique/external-id indexes,
 * the write rules Salesforce applies (field checks, required fields, unique and external ids,
 * an optional duplicate rule on Email), soft deletes into a recycle bin, and a change feed that
 * the outbound-message and change-event notifiers read. Writes can run in a transaction so a
 * collection call with `allOrNone` rolls back as a whole.
 */
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import { IdFactory, normalizeId } from './ids.ts';
import { KEY_PREFIXES, SOBJECTS, findObject, type SfFieldDef, type SfObjectDef } from './schema.ts';
import { coerceValue, formatDateTime, type SfRecord, type SfSaveError, type SfValue } from './values.ts';

export type ChangeType = 'CREATE' | 'UPDATE' | 'DELETE' | 'UNDELETE';

/** Who made a write: the API (with the `Sforce-Call-Options` client) or a rep in the UI. */
export interface WriteContext {
  source: 'api' | 'ui';
  /** `client=` of `Sforce-Call-Options`; undefined when absent. */
  client?: string;
  /** `62.0`. */
  apiVersion?: string;
}

export interface ChangeRecord {
  object: string;
  id: string;
  changeType: ChangeType;
  changedFields: string[];
  nulledFields: string[];
  /** ms since epoch. */
  commitTimestamp: number;
  context: WriteContext;
  /** The record after the change (before, for DELETE). */
  record: SfRecord;
  transactionKey: string;
}

export type WriteOutcome =
  | { ok: true; id: string; created: boolean }
  | { ok: false; errors: SfSaveError[]; id?: string; multiple?: string[] };

/** Groups writes so they commit (and notify) or roll back together. */
export class OrgTransaction {
  readonly undo: (() => void)[] = [];
  readonly changes: ChangeRecord[] = [];
  readonly key = crypto.randomUUID();
}

export interface OrgOptions {
  orgId: string;
  /** The API (integration) user that tokens belong to. */
  userId: string;
  /** The sales rep whose UI edits the control API simulates (LastModifiedById of UI writes). */
  repUserId: string;
  /** Called with the changes of each committed transaction. */
  onCommit: (changes: ChangeRecord[]) => void;
  now?: () => number;
}

const INDEXED_EXTRA = new Set(['email']);

export function saveError(statusCode: string, message: string, fields: string[] = []): SfSaveError {
  return { statusCode, message, fields };
}

/** Thrown for request-level problems that Salesforce answers for the whole call (HTTP 4xx). */
export class SfRequestError extends CrmhubError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields?: string[],
  ) {
    super('payload', message, { code: errorCode, context: { status } });
  }
}

interface OrgState {
  tables: Record<string, SfRecord[]>;
  deletedAt: Record<string, number>;
  counters: Record<string, number>;
  lastStamp: number;
}

export class SalesforceOrg {
  readonly tables = new Map<string, Map<string, SfRecord>>();
  /** object → lower-case field → lower-case value → ids (live and deleted). */
  private readonly indexes = new Map<string, Map<string, Map<string, Set<string>>>>();
  /** id → ms the record went to the recycle bin. */
  readonly deletedAt = new Map<string, number>();
  private readonly ids = new Map<string, IdFactory>();
  readonly duplicateRule = new Set<string>();
  private lastStamp = 0;
  private readonly now: () => number;
  recordsWritten = 0;

  constructor(private readonly options: OrgOptions) {
    this.now = options.now ?? Date.now;
    this.clear();
  }

  clear(): void {
    this.tables.clear();
    this.indexes.clear();
    this.deletedAt.clear();
    this.ids.clear();
    this.recordsWritten = 0;
    for (const o of SOBJECTS.values()) {
      this.tables.set(o.name, new Map());
      const idx = new Map<string, Map<string, Set<string>>>();
      for (const f of o.fields) if (f.unique || f.externalId || INDEXED_EXTRA.has(f.name.toLowerCase())) idx.set(f.name.toLowerCase(), new Map());
      this.indexes.set(o.name, idx);
      this.ids.set(o.name, new IdFactory(o.keyPrefix));
    }
  }

  get orgId(): string {
    return this.options.orgId;
  }

  get userId(): string {
    return this.options.userId;
  }

  /** Who a write is attributed to: the integration user for API calls, the rep for UI edits. */
  actor(ctx: WriteContext): string {
    return ctx.source === 'ui' ? this.options.repUserId : this.options.userId;
  }

  /** A modstamp that never goes backwards, ms. */
  stamp(): number {
    this.lastStamp = Math.max(this.now(), this.lastStamp);
    return this.lastStamp;
  }

  object(name: string): SfObjectDef {
    const def = findObject(name);
    if (!def) throw new SfRequestError(404, 'NOT_FOUND', `The requested resource does not exist`);
    return def;
  }

  table(object: SfObjectDef): Map<string, SfRecord> {
    const t = this.tables.get(object.name);
    if (!t) throw new TypeError(`no table for ${object.name}`);
    return t;
  }

  /** A record by 15- or 18-character id, deleted ones included. */
  get(object: SfObjectDef, id: string): SfRecord | undefined {
    const id18 = normalizeId(id);
    return id18 ? this.table(object).get(id18) : undefined;
  }

  /** The object a 15/18-character id belongs to, by key prefix. */
  objectOfId(id: string): SfObjectDef | undefined {
    for (const o of SOBJECTS.values()) if (id.startsWith(o.keyPrefix)) return o;
    return undefined;
  }

  /** Ids of records whose indexed field equals `value` (case-insensitive). */
  lookup(object: SfObjectDef, field: SfFieldDef, value: string, includeDeleted = false): string[] {
    const idx = this.indexes.get(object.name)?.get(field.name.toLowerCase());
    let ids: string[];
    if (idx) ids = [...(idx.get(value.toLowerCase()) ?? [])];
    else {
      ids = [];
      for (const r of this.table(object).values()) {
        const v = r[field.name];
        if (typeof v === 'string' && v.toLowerCase() === value.toLowerCase()) ids.push(String(r.Id));
      }
    }
    return includeDeleted ? ids : ids.filter((id) => this.get(object, id)?.IsDeleted !== true);
  }

  keyPrefixOf = (object: string): string | undefined => (object === 'User' ? KEY_PREFIXES.user : findObject(object)?.keyPrefix);

  // ----- writes ---------------------------------------------------------------------------------

  /** Runs `fn` in a transaction; commits (and notifies) unless `rollback` is true afterwards. */
  transact<T>(fn: (tx: OrgTransaction) => T, shouldRollback: (result: T) => boolean = () => false): T {
    const tx = new OrgTransaction();
    const result = fn(tx);
    if (shouldRollback(result)) {
      for (let i = tx.undo.length - 1; i >= 0; i--) tx.undo[i]?.();
    } else if (tx.changes.length > 0) {
      this.options.onCommit(tx.changes);
    }
    return result;
  }

  create(objectName: string, fields: Record<string, unknown>, ctx: WriteContext, tx?: OrgTransaction): WriteOutcome {
    if (!tx) return this.transact((t) => this.create(objectName, fields, ctx, t));
    const object = this.object(objectName);
    const checked = this.checkFields(object, fields, 'create');
    if (!checked.ok) return { ok: false, errors: checked.errors };
    const now = this.stamp();
    const id = this.nextId(object);
    const record: SfRecord = {};
    for (const f of object.fields) record[f.name] = null;
    for (const f of object.fields) {
      if (f.defaultValue !== undefined) record[f.name] = f.defaultValue === 'owner' ? this.actor(ctx) : f.defaultValue;
    }
    Object.assign(record, checked.values);
    Object.assign(record, {
      Id: id,
      IsDeleted: false,
      CreatedDate: formatDateTime(now),
      CreatedById: this.actor(ctx),
      LastModifiedDate: formatDateTime(now),
      LastModifiedById: this.actor(ctx),
      SystemModstamp: formatDateTime(now),
    });
    this.derive(object, record);
    const missing = object.fields.filter((f) => f.required && (record[f.name] === null || record[f.name] === undefined)).map((f) => f.name);
    if (missing.length > 0) return { ok: false, errors: [saveError('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing)] };
    const conflict = this.checkUnique(object, record, undefined);
    if (conflict) return { ok: false, errors: [conflict] };
    this.insertRow(object, record, tx);
    this.recordsWritten++;
    tx.changes.push(this.change(object, record, 'CREATE', Object.keys(checked.values), [], now, ctx, tx));
    return { ok: true, id, created: true };
  }

  update(objectName: string, id: string, fields: Record<string, unknown>, ctx: WriteContext, tx?: OrgTransaction): WriteOutcome {
    if (!tx) return this.transact((t) => this.update(objectName, id, fields, ctx, t));
    const object = this.object(objectName);
    const existing = this.get(object, id);
    if (!existing) {
      const malformed = !normalizeId(id) || !id.startsWith(object.keyPrefix);
      return {
        ok: false,
        errors: [
          malformed
            ? saveError('MALFORMED_ID', `${object.label} ID: id value of incorrect type: ${id}`, ['Id'])
            : saveError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id'),
        ],
      };
    }
    if (existing.IsDeleted === true) return { ok: false, errors: [saveError('ENTITY_IS_DELETED', 'entity is deleted')] };
    if (existing.IsConverted === true) return { ok: false, errors: [saveError('CANNOT_UPDATE_CONVERTED_LEAD', 'cannot reference converted lead')] };
    const checked = this.checkFields(object, fields, 'update');
    if (!checked.ok) return { ok: false, errors: checked.errors };
    const next: SfRecord = { ...existing, ...checked.values };
    this.derive(object, next);
    const nulledRequired = object.fields.filter((f) => f.required && next[f.name] === null).map((f) => f.name);
    if (nulledRequired.length > 0) {
      return { ok: false, errors: [saveError('REQUIRED_FIELD_MISSING', `Required fields are missing: [${nulledRequired.join(', ')}]`, nulledRequired)] };
    }
    const conflict = this.checkUnique(object, next, String(existing.Id));
    if (conflict) return { ok: false, errors: [conflict] };
    const now = this.stamp();
    const changed: string[] = [];
    const nulled: string[] = [];
    for (const [k, v] of Object.entries(checked.values)) {
      if (existing[k] !== v) {
        changed.push(k);
        if (v === null) nulled.push(k);
      }
    }
    next.LastModifiedDate = formatDateTime(now);
    next.LastModifiedById = this.actor(ctx);
    next.SystemModstamp = formatDateTime(now);
    this.replaceRow(object, existing, next, tx);
    this.recordsWritten++;
    tx.changes.push(this.change(object, next, 'UPDATE', changed, nulled, now, ctx, tx));
    return { ok: true, id: String(existing.Id), created: false };
  }

  /**
   * Upsert on an external-id (or idLookup) field. Fails with `multiple` set when more than one
   * live record has the value (REST answers 300, collections `DUPLICATE_EXTERNAL_ID`).
   */
  upsert(objectName: string, fieldName: string, value: string, fields: Record<string, unknown>, ctx: WriteContext, tx?: OrgTransaction): WriteOutcome {
    if (!tx) return this.transact((t) => this.upsert(objectName, fieldName, value, fields, ctx, t));
    const object = this.object(objectName);
    const field = this.externalIdField(object, fieldName);
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) if (k.toLowerCase() !== field.name.toLowerCase() && k !== 'attributes') rest[k] = v;
    if (field.name === 'Id') {
      if (value === '' || value === 'null') return this.create(object.name, rest, ctx, tx);
      return this.update(object.name, value, rest, ctx, tx);
    }
    const matches = this.lookup(object, field, value);
    if (matches.length > 1) {
      return {
        ok: false,
        multiple: matches,
        errors: [saveError('DUPLICATE_EXTERNAL_ID', `${field.label}: more than one record found for external id field: [${matches.join(', ')}]`, [field.name])],
      };
    }
    const match = matches[0];
    if (match !== undefined) return this.update(object.name, match, rest, ctx, tx);
    return this.create(object.name, { ...rest, [field.name]: value }, ctx, tx);
  }

  /** The field an upsert keys on; throws the REST error for unknown or non-key fields. */
  externalIdField(object: SfObjectDef, fieldName: string): SfFieldDef {
    const field = object.byName.get(fieldName.toLowerCase());
    if (!field) throw new SfRequestError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${fieldName}`);
    if (!field.externalId && !field.idLookup) {
      throw new SfRequestError(400, 'INVALID_FIELD', `Field ${field.name} is not an External ID or Id field`, [field.name]);
    }
    return field;
  }

  remove(objectName: string, id: string, ctx: WriteContext, tx?: OrgTransaction): WriteOutcome {
    if (!tx) return this.transact((t) => this.remove(objectName, id, ctx, t));
    const object = this.object(objectName);
    const existing = this.get(object, id);
    if (!existing) {
      return {
        ok: false,
        errors: [
          normalizeId(id) && id.startsWith(object.keyPrefix)
            ? saveError('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id')
            : saveError('MALFORMED_ID', `malformed id ${id}`),
        ],
      };
    }
    if (existing.IsDeleted === true) return { ok: false, errors: [saveError('ENTITY_IS_DELETED', 'entity is deleted')] };
    const now = this.stamp();
    const next: SfRecord = { ...existing, IsDeleted: true, SystemModstamp: formatDateTime(now) };
    this.replaceRow(object, existing, next, tx);
    const rowId = String(existing.Id);
    this.deletedAt.set(rowId, now);
    tx.undo.push(() => this.deletedAt.delete(rowId));
    this.recordsWritten++;
    tx.changes.push(this.change(object, next, 'DELETE', [], [], now, ctx, tx));
    return { ok: true, id: rowId, created: false };
  }

  /** Lead conversion as the UI's Convert button does it: a new Account and Contact, Lead marked converted. */
  convertLead(leadId: string): { leadId: string; contactId: string; accountId: string } {
    const leadDef = this.object('Lead');
    const lead = this.get(leadDef, leadId);
    if (!lead || lead.IsDeleted === true) throw new SfRequestError(404, 'NOT_FOUND', `no Lead with id ${leadId}`);
    if (lead.IsConverted === true) throw new SfRequestError(400, 'CANNOT_UPDATE_CONVERTED_LEAD', 'cannot reference converted lead');
    const ctx: WriteContext = { source: 'ui' };
    return this.transact((tx) => {
      const account = this.create('Account', { Name: lead.Company ?? lead.LastName }, ctx, tx);
      if (!account.ok) throw new SfRequestError(400, account.errors[0]?.statusCode ?? 'UNKNOWN', account.errors[0]?.message ?? 'account not created');
      const contactFields: Record<string, unknown> = { AccountId: account.id };
      for (const f of ['FirstName', 'LastName', 'Email', 'Phone', 'Title', 'LeadSource', 'Plan__c', 'Product_Usage_Score__c', 'Engagement_Score__c', 'Churn_Risk__c', 'Audiences__c']) {
        contactFields[f] = lead[f] ?? null;
      }
      const contact = this.create('Contact', contactFields, ctx, tx);
      if (!contact.ok) throw new SfRequestError(400, contact.errors[0]?.statusCode ?? 'UNKNOWN', contact.errors[0]?.message ?? 'contact not created');
      const now = this.stamp();
      const next: SfRecord = {
        ...lead,
        IsConverted: true,
        ConvertedContactId: contact.id,
        ConvertedAccountId: account.id,
        ConvertedDate: formatDateTime(now).slice(0, 10),
        Status: 'Closed - Converted',
        LastModifiedDate: formatDateTime(now),
        LastModifiedById: this.actor(ctx),
        SystemModstamp: formatDateTime(now),
      };
      this.replaceRow(leadDef, lead, next, tx);
      tx.changes.push(
        this.change(leadDef, next, 'UPDATE', ['IsConverted', 'ConvertedContactId', 'ConvertedAccountId', 'ConvertedDate', 'Status'], [], now, ctx, tx),
      );
      return { leadId: String(lead.Id), contactId: contact.id, accountId: account.id };
    });
  }

  // ----- internals ------------------------------------------------------------------------------

  private nextId(object: SfObjectDef): string {
    const factory = this.ids.get(object.name);
    if (!factory) throw new TypeError(`no id factory for ${object.name}`);
    return factory.next();
  }

  private checkFields(
    object: SfObjectDef,
    fields: Record<string, unknown>,
    mode: 'create' | 'update',
  ): { ok: true; values: SfRecord } | { ok: false; errors: SfSaveError[] } {
    const values: SfRecord = {};
    const errors: SfSaveError[] = [];
    const readOnly: string[] = [];
    for (const [key, raw] of Object.entries(fields)) {
      if (key === 'attributes') continue;
      const field = object.byName.get(key.toLowerCase());
      if (!field) {
        errors.push(saveError('INVALID_FIELD', `No such column '${key}' on sobject of type ${object.name}`, [key]));
        continue;
      }
      if (mode === 'create' ? !field.createable : !field.updateable) {
        readOnly.push(field.name);
        continue;
      }
      const coerced = coerceValue(field, raw, this.keyPrefixOf);
      if (!coerced.ok) {
        errors.push(coerced.error);
        continue;
      }
      if (field.type === 'reference' && coerced.value !== null && field.referenceTo && field.referenceTo !== 'User') {
        const target = findObject(field.referenceTo);
        const row = target ? this.get(target, String(coerced.value)) : undefined;
        if (!row) {
          errors.push(saveError('INVALID_CROSS_REFERENCE_KEY', `${field.label}: id value of incorrect type: ${String(raw)}`, [field.name]));
          continue;
        }
        if (row.IsDeleted === true) {
          errors.push(saveError('ENTITY_IS_DELETED', 'entity is deleted', [field.name]));
          continue;
        }
      }
      values[field.name] = coerced.value;
    }
    if (readOnly.length > 0) {
      errors.unshift(
        saveError(
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${readOnly.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          readOnly,
        ),
      );
    }
    return errors.length > 0 ? { ok: false, errors } : { ok: true, values };
  }

  /** Formula-like fields: Name of people, IsClosed/IsWon of opportunities. */
  private derive(object: SfObjectDef, record: SfRecord): void {
    if (object.name === 'Contact' || object.name === 'Lead') {
      record.Name = [record.FirstName, record.LastName].filter((v) => typeof v === 'string' && v !== '').join(' ') || null;
    }
    if (object.name === 'Opportunity') {
      record.IsClosed = record.StageName === 'Closed Won' || record.StageName === 'Closed Lost';
      record.IsWon = record.StageName === 'Closed Won';
    }
  }

  private checkUnique(object: SfObjectDef, record: SfRecord, selfId: string | undefined): SfSaveError | null {
    for (const f of object.fields) {
      if (!f.unique) continue;
      const v = record[f.name];
      if (typeof v !== 'string') continue;
      const other = this.lookup(object, f, v).find((id) => id !== selfId);
      if (other) return saveError('DUPLICATE_VALUE', `duplicate value found: ${f.name} duplicates value on record with id: ${other}`);
    }
    if (this.duplicateRule.has(object.name) && typeof record.Email === 'string') {
      const email = object.byName.get('email');
      const prior = selfId ? this.get(object, selfId) : undefined;
      const emailChanged = !prior || String(prior.Email ?? '').toLowerCase() !== record.Email.toLowerCase();
      if (email && emailChanged && this.lookup(object, email, record.Email).some((id) => id !== selfId)) {
        return saveError('DUPLICATES_DETECTED', "You're creating a duplicate record. We recommend you use an existing record instead.");
      }
    }
    return null;
  }

  private indexRow(object: SfObjectDef, record: SfRecord, add: boolean): void {
    const idx = this.indexes.get(object.name);
    if (!idx) return;
    for (const [field, map] of idx) {
      const def = object.byName.get(field);
      const v = def ? record[def.name] : null;
      if (typeof v !== 'string') continue;
      const key = v.toLowerCase();
      let set = map.get(key);
      if (add) {
        if (!set) map.set(key, (set = new Set()));
        set.add(String(record.Id));
      } else if (set) {
        set.delete(String(record.Id));
        if (set.size === 0) map.delete(key);
      }
    }
  }

  private insertRow(object: SfObjectDef, record: SfRecord, tx: OrgTransaction): void {
    const id = String(record.Id);
    this.table(object).set(id, record);
    this.indexRow(object, record, true);
    tx.undo.push(() => {
      this.indexRow(object, record, false);
      this.table(object).delete(id);
    });
  }

  private replaceRow(object: SfObjectDef, before: SfRecord, after: SfRecord, tx: OrgTransaction): void {
    const id = String(before.Id);
    this.indexRow(object, before, false);
    this.table(object).set(id, after);
    this.indexRow(object, after, true);
    tx.undo.push(() => {
      this.indexRow(object, after, false);
      this.table(object).set(id, before);
      this.indexRow(object, before, true);
    });
  }

  private change(
    object: SfObjectDef,
    record: SfRecord,
    changeType: ChangeType,
    changed: string[],
    nulled: string[],
    now: number,
    context: WriteContext,
    tx: OrgTransaction,
  ): ChangeRecord {
    const changedFields = changeType === 'UPDATE' ? [...changed, 'LastModifiedDate'] : [];
    return { object: object.name, id: String(record.Id), changeType, changedFields, nulledFields: nulled, commitTimestamp: now, context, record, transactionKey: tx.key };
  }

  // ----- persistence ----------------------------------------------------------------------------

  snapshot(): OrgState {
    const tables: Record<string, SfRecord[]> = {};
    for (const [name, t] of this.tables) tables[name] = [...t.values()];
    const counters: Record<string, number> = {};
    for (const [name, f] of this.ids) counters[name] = f.issued;
    return { tables, deletedAt: Object.fromEntries(this.deletedAt), counters, lastStamp: this.lastStamp };
  }

  restore(state: OrgState): void {
    this.clear();
    for (const [name, rows] of Object.entries(state.tables)) {
      const object = findObject(name);
      if (!object) continue;
      for (const r of rows) {
        this.table(object).set(String(r.Id), r);
        this.indexRow(object, r, true);
      }
      const factory = this.ids.get(object.name);
      if (factory) factory.issued = state.counters[name] ?? rows.length;
    }
    for (const [id, at] of Object.entries(state.deletedAt)) this.deletedAt.set(id, at);
    this.lastStamp = state.lastStamp;
  }
}

export type { SfRecord, SfValue };
