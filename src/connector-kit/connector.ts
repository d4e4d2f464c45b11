/**
 * The contract every connector implements (design.md §2, §4). A connector is a typed declaration
 * plus a little behaviour: read changes since a cursor in pages, write a batch and return one outcome
 * per record, parse a webhook into changes, describe its schema. It knows its CRM's URLs (only in its
 * `client.ts`) and its errors (only in its `errors.ts`); it knows nothing of the store or the engine.
 *
 * Owned by the sync engine (issue 5); connectors (issues 6–8) implement it and pass
 * `test/connector-kit/contract-suite.ts`.
 */
import type { ConnectorSlug, FieldValues, JsonValue, ProfileKind } from '../core/types.ts';
import type { CrmhubError } from './errors.ts';

/** Connector calls the engine makes that may run a CRM search (and so spend the search budget). */
export type SearchCall = 'readChanges' | 'readByIds' | 'write';

/** A CRM's search budget, separate from its general one. */
export interface SearchLimits {
  /** Search requests allowed per window (HubSpot 5 per 1 000 ms). */
  requestsPerWindow: number;
  /** Window length in ms. */
  windowMs: number;
  /**
   * Which of the connector's calls run searches and must stay within this budget (HubSpot:
   * `readChanges`, its incremental pulls are searches). Default none: a connector that paces its
   * own searches inside the call (Pipedrive's client) leaves it empty.
   */
  usedBy?: readonly SearchCall[];
}

/** Declared rate limits. The engine builds one bottleneck limiter per connection from these. */
export interface ConnectorLimits {
  /** Requests allowed per window (e.g. HubSpot 100 per 10 s, Pipedrive burst per 2 s). */
  requestsPerWindow: number;
  /** Window length in ms. */
  windowMs: number;
  /** Max requests in flight at once. */
  maxConcurrent: number;
  /**
   * Separate search budget, where the CRM has one (HubSpot ~5/s, Pipedrive 10 per 2 s). The engine
   * sends the calls named in `usedBy` through a second limiter built from it, in addition to the
   * general one; calls not named there are not slowed by it.
   */
  search?: SearchLimits;
  /** Daily budget, where known ahead of reading headers. */
  dailyQuota?: number;
}

/** One CRM object a connector syncs. */
export interface ObjectDeclaration {
  /** Vendor object name verbatim as used in mapping files: `contacts`, `Contact`, `persons`. */
  name: string;
  /** Which profile kind its records become; `null` for objects that link profiles (deals). */
  profileKind: ProfileKind | null;
  /** Identifier type of its record ids: `hubspot.contact`, `salesforce.lead`, `pipedrive.person`. */
  identifierType: string;
  /** Largest batch one write call takes (HubSpot 100, Salesforce 200, Pipedrive 1). */
  maxBatchSize: number;
  /**
   * Where the connector has a bulk path for large loads (Salesforce Bulk API 2.0): the most items
   * one `write()` takes. The connector chooses bulk or regular batches by size itself; the engine
   * hands it batches this large only when more than `maxBatchSize` writes are pending at once.
   */
  bulkBatchSize?: number;
  /** Remote fields that can serve as a native upsert key (unique in the CRM). */
  upsertKeys: string[];
  /** Field holding the record's modified time (used by `latest_wins` and cursors). */
  modifiedField: string;
  /** Links to other objects kept in step, e.g. Contact.AccountId → Account. */
  links?: { field: string; object: string }[];
}

export interface ConnectorCapabilities {
  /** Native batch upsert by a unique key (no lookup-then-create). */
  batchUpsert: boolean;
  /** A bulk path for large loads (Salesforce Bulk API 2.0). */
  bulk: boolean;
  /** Signed/authenticated webhooks the connector can parse. */
  webhooks: boolean;
  /** Reads report deletions (archived, IsDeleted, delete events). */
  deletes: boolean;
  /** Per-field change times are available for `latest_wins`. */
  fieldChangeTimes: boolean;
}

export interface ConnectorDeclaration {
  slug: ConnectorSlug;
  displayName: string;
  objects: ObjectDeclaration[];
  limits: ConnectorLimits;
  capabilities: ConnectorCapabilities;
}

/** A record as read from the CRM, in vendor field names verbatim. */
export interface RemoteRecord {
  object: string;
  id: string;
  fields: FieldValues;
  /** ISO-8601 record modified time at the CRM. */
  modifiedAt: string;
  /** Per-field change times (ISO-8601) where the CRM gives them. */
  fieldChangedAt?: Record<string, string>;
  /** The record was deleted/archived at the CRM. */
  deleted?: boolean;
  /** The CRM merged this record into another (HubSpot merge, Lead conversion, Pipedrive merge). */
  mergedIntoId?: string;
  /**
   * Whether this change was made by crmhub itself (change-source markers: HubSpot `changeSource`
   * with our app id, Salesforce `changeOrigin` client, Pipedrive `change_source`). `unknown` when the
   * CRM says nothing; the shadow comparison still stops echoes then.
   */
  origin?: 'self' | 'other' | 'unknown';
}

/** A page of changes read since a cursor. The engine saves `nextCursor` only after applying the page. */
export interface ChangePage {
  records: RemoteRecord[];
  /** Opaque cursor to resume after this page; the engine stores it verbatim. */
  nextCursor: string | null;
  /** No more pages right now. */
  done: boolean;
}

export interface ReadOptions {
  /** Records per page; the connector caps it at its CRM's maximum. */
  pageSize?: number;
  /** Only these remote fields (the mapping's fields); all readable fields when absent. */
  fields?: string[];
  /** Read everything from the start (full/reconciliation sync) rather than since the cursor. */
  full?: boolean;
  signal?: AbortSignal;
}

/** One record to write. `ref` ties the outcome back to the engine's outbox row. */
export interface WriteItem {
  ref: string;
  /** Known remote id (update costs one call and no lookup). */
  remoteId?: string;
  /** Native upsert key for records never linked: `{ field: 'email', value: 'ada@example.com' }`. */
  upsertKey?: { field: string; value: string };
  /** Only the fields that changed (the engine diffs against the shadow). */
  fields: FieldValues;
  /** Delete/archive the remote record instead of writing fields. */
  delete?: boolean;
}

export type WriteOutcome =
  | {
      ref: string;
      ok: true;
      remoteId: string;
      created: boolean;
      /** The record's modified time after the write, when the response tells. */
      modifiedAt?: string;
      /** The remote id moved (HubSpot merged the contact, a Lead was converted). */
      movedFrom?: string;
    }
  | { ref: string; ok: false; error: CrmhubError };

/** A webhook request as received, with the raw body bytes (signatures are over raw bytes). */
export interface WebhookRequest {
  method: string;
  /** Full URL as the sender signed it (scheme, host, path and query). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
  /** Current time in ms (injectable for tests of timestamp windows). */
  now: number;
}

/** One change announced by a webhook. Thin payloads carry only the id; the engine then reads it. */
export interface WebhookChange {
  object: string;
  id: string;
  /** Delivery id for dedupe (`eventId`, Notification Id, `meta.id`). */
  deliveryId: string;
  /** ISO-8601 change time at the CRM, used to order out-of-order deliveries. */
  changedAt: string;
  kind: 'upsert' | 'delete' | 'merge' | 'association';
  /** Field values carried in the payload, if any (else read the record). */
  fields?: FieldValues;
  /** Fields the CRM says changed (HubSpot `propertyName`, CDC `changedFields`, Pipedrive `previous`). */
  changedFields?: string[];
  mergedIntoId?: string;
  origin?: 'self' | 'other' | 'unknown';
}

export interface WebhookResult {
  changes: WebhookChange[];
  /** The exact reply the CRM expects (Salesforce wants a SOAP Ack); 200 `{}` when absent. */
  reply?: { status: number; contentType: string; body: string };
}

/** A remote field as the CRM's schema describes it (HubSpot properties, describe, Pipedrive fields). */
export interface RemoteField {
  /** Vendor key verbatim (for Pipedrive custom fields, the 40-character hash). */
  name: string;
  label: string;
  type: 'string' | 'number' | 'boolean' | 'date' | 'datetime' | 'enum' | 'set' | 'reference' | 'other';
  readOnly: boolean;
  unique: boolean;
  required: boolean;
  custom: boolean;
  options?: { value: string; label: string }[];
}

export interface ObjectSchema {
  object: string;
  fields: RemoteField[];
}

/** What the connector knows of its quota from the CRM's headers (design.md §4, "daily quotas"). */
export interface QuotaState {
  /** Requests left in the current window, if the CRM says. */
  windowRemaining?: number;
  /** ms until the window resets, if the CRM says. */
  windowResetMs?: number;
  dailyRemaining?: number;
  dailyLimit?: number;
  /** ms until the daily quota resets, if the CRM says (else the engine assumes the next UTC midnight). */
  dailyResetMs?: number;
}

export interface Connector {
  readonly declaration: ConnectorDeclaration;

  /** Changes since `cursor` (null = from the start), one page per call. */
  readChanges(object: string, cursor: string | null, options?: ReadOptions): Promise<ChangePage>;

  /** Current state of these records (after a thin webhook). Missing ids are simply absent. */
  readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]>;

  /**
   * Writes a batch of at most `maxBatchSize` items (`bulkBatchSize` where declared). Resolves with exactly one outcome per item, in
   * any order, matched by `ref`; never rejects because of one bad record. Rejects only when the
   * whole call failed (auth, rate limit, network), with a `CrmhubError`.
   */
  write(object: string, items: WriteItem[]): Promise<WriteOutcome[]>;

  /**
   * Verifies (signature, Basic auth, org id/token) and parses a webhook. Rejects with a
   * `CrmhubError` of kind `auth` when verification fails and `payload` when the body is malformed.
   */
  handleWebhook(request: WebhookRequest): Promise<WebhookResult>;

  /** The object's fields from the live schema. */
  describe(object: string): Promise<ObjectSchema>;

  /** Latest quota figures read from response headers. */
  quota?(): QuotaState;

  /** Releases sockets and timers. */
  close?(): Promise<void>;
}

/** A JSON-serialisable cursor helper type for connectors that keep structured cursors. */
export type CursorValue = { [key: string]: JsonValue };
