/**
 * Turns request bodies into validated {@link IngestEvent}s. Expected failures are returned as issue
 * lists (never thrown) so the route can answer 400 naming every problem, and a batch can keep its
 * good items while naming the bad ones.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { JsonObject } from '../core/types.ts';
import {
  EVENT_TYPES,
  MAX_EVENT_BYTES,
  SCHEMA_BY_TYPE,
  batchEnvelopeSchema,
  eventSchema,
  type EventType,
  type SegmentEvent,
} from './event-schemas.ts';
import { fastParseBatchEnvelope, fastParseEvent } from './fast-validate.ts';

/** A validated event, normalised for the ingest pipeline. */
export interface IngestEvent {
  type: EventType;
  /** The client's messageId, or a generated `gen-<uuid>` when it sent none. */
  messageId: string;
  /** True when crmhub generated `messageId` (unique by construction: no dedupe lookup needed). */
  messageIdGenerated: boolean;
  userId: string | null;
  anonymousId: string | null;
  /** `track` event name, `page`/`screen` name, else null. */
  name: string | null;
  /** What goes to `events.properties`: properties (track/page/screen), traits (identify), `{groupId, traits}` (group), `{previousId}` (alias). */
  properties: JsonObject;
  /** identify/group traits (null when absent). */
  traits: JsonObject | null;
  groupId: string | null;
  previousId: string | null;
  /** `context` as sent (batch-level context merged under it), or null. */
  context: JsonObject | null;
  /** Client times as sent (ISO-8601), used for skew correction. */
  timestamp: string | null;
  sentAt: string | null;
}

/** One problem with a request body. `index` is the batch item (null for a single call or the envelope). */
export interface EventIssue {
  index: number | null;
  /** Dotted path inside the event, e.g. `traits.email`, or `` for the whole event. */
  path: string;
  message: string;
}

export type EventResult = { ok: true; event: IngestEvent } | { ok: false; issues: EventIssue[] };

/** Validates the body of `POST /v1/<type>`. A missing `type` is taken from the route. */
export function validateEvent(body: unknown, routeType: EventType, index: number | null = null, inherited?: BatchDefaults): EventResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, issues: [{ index, path: '', message: 'the body must be a JSON object' }] };
  }
  const record = body as Record<string, unknown>;
  if (record.type !== undefined && record.type !== routeType) {
    return { ok: false, issues: [{ index, path: 'type', message: `must be "${routeType}" on /v1/${routeType} (got ${JSON.stringify(record.type)})` }] };
  }
  const input = { ...withDefaults(record, inherited), type: routeType };
  const fast = fastParseEvent(input, routeType);
  if (fast !== null) return { ok: true, event: normalise(fast) };
  const parsed = SCHEMA_BY_TYPE[routeType].safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error, index) };
  return { ok: true, event: normalise(parsed.data) };
}

/** Fields of the batch envelope that apply to every item that lacks them. */
export interface BatchDefaults {
  sentAt?: string | null | undefined;
  context?: Record<string, unknown> | null | undefined;
  integrations?: Record<string, unknown> | null | undefined;
}

export interface BatchResult {
  /** Valid items with their index in the batch. */
  events: { index: number; event: IngestEvent }[];
  /** Problems of invalid items (and of the envelope, with index null). */
  issues: EventIssue[];
  /** Indexes of invalid items. */
  rejected: number[];
}

/**
 * Validates `POST /v1/batch`. Each item is validated alone: a bad item is named in `issues` and does
 * not invalidate the others. Items larger than {@link MAX_EVENT_BYTES} are rejected (`checkItemSize`
 * is skipped by the caller when the whole body is already smaller than that).
 */
export function validateBatch(body: unknown, checkItemSize: boolean): BatchResult {
  let batch: unknown[];
  let defaults: BatchDefaults;
  const fast = fastParseBatchEnvelope(body);
  if (fast !== null) {
    batch = fast.batch;
    defaults = { sentAt: fast.sentAt, context: undefined, integrations: fast.integrations };
  } else {
    const envelope = batchEnvelopeSchema.safeParse(body);
    if (!envelope.success) return { events: [], issues: toIssues(envelope.error, null), rejected: [] };
    batch = envelope.data.batch;
    defaults = { sentAt: envelope.data.sentAt, context: envelope.data.context, integrations: envelope.data.integrations };
  }
  const result: BatchResult = { events: [], issues: [], rejected: [] };
  batch.forEach((item, index) => {
    const checked = validateBatchItem(item, index, defaults, checkItemSize);
    if (checked.ok) result.events.push({ index, event: checked.event });
    else {
      result.rejected.push(index);
      result.issues.push(...checked.issues);
    }
  });
  return result;
}

function validateBatchItem(item: unknown, index: number, defaults: BatchDefaults, checkItemSize: boolean): EventResult {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return { ok: false, issues: [{ index, path: '', message: 'each batch item must be a JSON object' }] };
  }
  if (checkItemSize) {
    const bytes = Buffer.byteLength(JSON.stringify(item));
    if (bytes > MAX_EVENT_BYTES) {
      return { ok: false, issues: [{ index, path: '', message: `event is ${bytes} bytes; the limit is ${MAX_EVENT_BYTES} bytes (32 KB) per event` }] };
    }
  }
  const type = (item as Record<string, unknown>).type;
  if (typeof type !== 'string' || !(EVENT_TYPES as readonly string[]).includes(type)) {
    return { ok: false, issues: [{ index, path: 'type', message: `must be one of ${EVENT_TYPES.join(', ')} (got ${JSON.stringify(type) ?? 'nothing'})` }] };
  }
  const record = item as Record<string, unknown>;
  // Without an envelope context to merge, the fast path reads the other defaults in place: no copy of the item.
  if (defaults.context == null) {
    const fast = fastParseEvent(record, type as EventType, defaults);
    if (fast !== null) return { ok: true, event: normalise(fast) };
  }
  const input = withDefaults(record, defaults);
  if (defaults.context != null) {
    const fast = fastParseEvent(input, type as EventType);
    if (fast !== null) return { ok: true, event: normalise(fast) };
  }
  const parsed = eventSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error, index) };
  return { ok: true, event: normalise(parsed.data) };
}

function withDefaults(item: Record<string, unknown>, defaults: BatchDefaults | undefined): Record<string, unknown> {
  if (defaults === undefined) return item;
  const out = { ...item };
  if (out.sentAt == null && defaults.sentAt != null) out.sentAt = defaults.sentAt;
  if (defaults.context != null) {
    const own = out.context;
    out.context = typeof own === 'object' && own !== null && !Array.isArray(own) ? { ...defaults.context, ...own } : (own ?? defaults.context);
  }
  if (out.integrations == null && defaults.integrations != null) out.integrations = defaults.integrations;
  return out;
}

function toIssues(error: z.ZodError, index: number | null): EventIssue[] {
  return error.issues.map((issue) => ({ index, path: issue.path.map(String).join('.'), message: issue.message }));
}

const blankToNull = (v: string | null | undefined): string | null => (v === undefined || v === null || v === '' ? null : v);

function normalise(e: SegmentEvent): IngestEvent {
  // Built as one literal with every field (no object spreads): this runs per event, and spreading
  // into differently shaped literals was measured at several µs per event.
  let name: string | null = null;
  let properties: JsonObject;
  let traits: JsonObject | null = null;
  let groupId: string | null = null;
  let previousId: string | null = null;
  let userId = blankToNull(e.userId);
  switch (e.type) {
    case 'identify':
      traits = (e.traits ?? {}) as JsonObject;
      properties = traits;
      break;
    case 'track':
      name = e.event;
      properties = (e.properties ?? {}) as JsonObject;
      break;
    case 'page':
    case 'screen':
      name = e.name ?? null;
      properties = (e.properties ?? {}) as JsonObject;
      // A copy only when the category is added: the event's own object is not changed.
      if (e.category != null && properties.category === undefined) properties = { ...properties, category: e.category };
      break;
    case 'group':
      traits = (e.traits ?? {}) as JsonObject;
      groupId = e.groupId;
      properties = { groupId: e.groupId, traits };
      break;
    case 'alias':
      userId = e.userId;
      previousId = e.previousId;
      properties = { previousId: e.previousId };
      break;
  }
  return {
    type: e.type,
    messageId: e.messageId ?? `gen-${randomUUID()}`,
    messageIdGenerated: e.messageId === undefined,
    userId,
    anonymousId: blankToNull(e.anonymousId),
    name,
    properties,
    traits,
    groupId,
    previousId,
    context: (e.context ?? null) as JsonObject | null,
    // Segment's libraries send `timestamp`; `originalTimestamp` is what Segment itself stores the
    // client time under, and some pipelines replay events with it.
    timestamp: e.timestamp ?? e.originalTimestamp ?? null,
    sentAt: e.sentAt ?? null,
  };
}
