/**
 * A fast path in front of the zod schemas of `event-schemas.ts`, for the event shapes that make up
 * nearly all traffic (`identify`, `track`, `page`, `screen` with string ids, ISO times, plain-object
 * `traits`/`properties`/`context`). It either returns exactly what the zod schema would return for
 * the fields the pipeline reads, or `null` — "not sure": then the caller runs the zod schema,
 * which also produces the error messages. So it can only speed up accepting; it never accepts what
 * zod would refuse (test/ingest/fast-validate.test.ts checks both against each other).
 *
 * Why: zod's object/record parsing copies every object and runs a check chain per field, about
 * 15–20 µs per event — as much as storing it (see bench/ingest-bench.ts).
 */
import type { EventType, SegmentEvent } from './event-schemas.ts';

/** Same pattern as `isoTime` in event-schemas.ts. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const MAX_ID = 1024;
const MAX_MESSAGE_ID = 256;
const MAX_EVENT_NAME = 1024;

/** Marker for "fall back to zod". */
const UNSURE = Symbol('unsure');
type Unsure = typeof UNSURE;

/**
 * What zod's `z.record()` accepts as an object (its `isPlainObject`): a JSON object whose
 * `constructor` is `Object` — an own `constructor` key makes zod refuse it, so those go to zod.
 */
function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype && (v as { constructor?: unknown }).constructor === Object;
}

/** `idSchema.nullish()`. */
function id(v: unknown): string | null | undefined | Unsure {
  if (v === undefined || v === null) return v;
  let s: string;
  if (typeof v === 'string') s = v.trim();
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v).trim();
  else return UNSURE;
  return s.length <= MAX_ID ? s : UNSURE;
}

/**
 * The last two time strings that passed (a batch's items mostly repeat the same `timestamp` and
 * inherit one `sentAt`): the check is a pure function of the string, so a repeat skips the regex
 * and the `Date.parse`.
 */
let lastTimeA = '';
let lastTimeB = '';

/** `isoTime.nullish()`. */
function time(v: unknown): string | null | undefined | Unsure {
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string') return UNSURE;
  if (v === lastTimeA || v === lastTimeB) return v;
  if (!ISO_TIME.test(v.trim()) || Number.isNaN(Date.parse(v))) return UNSURE;
  lastTimeB = lastTimeA;
  lastTimeA = v;
  return v;
}

/** `jsonObject.nullish()` (the object itself is returned: zod's copy has the same entries). */
function object(v: unknown): Record<string, unknown> | null | undefined | Unsure {
  if (v === undefined || v === null) return v;
  return plainObject(v) ? v : UNSURE;
}

/** `z.string().nullish()`. */
function optionalString(v: unknown): string | null | undefined | Unsure {
  return v === undefined || v === null || typeof v === 'string' ? v : UNSURE;
}

/** Envelope fields a batch item inherits when it lacks them (`context` is merged by the caller, not here). */
export interface FastDefaults {
  sentAt?: string | null | undefined;
  integrations?: Record<string, unknown> | null | undefined;
}

/**
 * Parses `item` of type `type` if it is one of the plain shapes; null when unsure (run the zod
 * schema instead). `defaults` are read as if copied into the item first (an item's `sentAt` or
 * `integrations` that is null or absent takes the envelope's), without copying it.
 */
export function fastParseEvent(item: Record<string, unknown>, type: EventType, defaults?: FastDefaults): SegmentEvent | null {
  if (type === 'group' || type === 'alias') return null;
  const userId = id(item.userId);
  const anonymousId = id(item.anonymousId);
  const timestamp = time(item.timestamp);
  const originalTimestamp = time(item.originalTimestamp);
  const sentAt = time(item.sentAt == null && defaults?.sentAt != null ? defaults.sentAt : item.sentAt);
  const integrations = object(item.integrations == null && defaults?.integrations != null ? defaults.integrations : item.integrations);
  if (userId === UNSURE || anonymousId === UNSURE || timestamp === UNSURE || originalTimestamp === UNSURE || sentAt === UNSURE || integrations === UNSURE) {
    return null;
  }
  let messageId: string | undefined;
  if (item.messageId !== undefined) {
    if (typeof item.messageId !== 'string') return null;
    messageId = item.messageId.trim();
    if (messageId.length === 0 || messageId.length > MAX_MESSAGE_ID) return null;
  }
  const context = item.context;
  if (context !== undefined && context !== null) {
    // externalIds need the element schema: leave them to zod.
    // `context.traits` is optional but not nullable in the schema.
    if (!plainObject(context) || context.externalIds !== undefined || (context.traits !== undefined && !plainObject(context.traits))) return null;
  }
  // needsUser: a blank id counts as absent.
  if ((userId ?? '') === '' && (anonymousId ?? '') === '') return null;
  // One object shape for every type (fields a type lacks stay undefined): keeps the caller monomorphic.
  let traits: Record<string, unknown> | null | undefined;
  let event: string | undefined;
  let properties: Record<string, unknown> | null | undefined;
  let name: string | null | undefined;
  let category: string | null | undefined;
  if (type === 'identify') {
    const t = object(item.traits);
    if (t === UNSURE) return null;
    traits = t;
  } else {
    const p = object(item.properties);
    if (p === UNSURE) return null;
    properties = p;
    if (type === 'track') {
      if (typeof item.event !== 'string') return null;
      event = item.event.trim();
      if (event.length === 0 || event.length > MAX_EVENT_NAME) return null;
    } else {
      const n = optionalString(item.name);
      const c = optionalString(item.category);
      if (n === UNSURE || c === UNSURE) return null;
      name = n;
      category = c;
    }
  }
  const parsed = { type, userId, anonymousId, messageId, timestamp, originalTimestamp, sentAt, context, integrations, traits, event, properties, name, category };
  return parsed as SegmentEvent;
}

/** The batch envelope fields the pipeline reads (see {@link fastParseBatchEnvelope}). */
export interface FastEnvelope {
  batch: unknown[];
  sentAt: string | null | undefined;
  integrations: Record<string, unknown> | null | undefined;
}

/**
 * `batchEnvelopeSchema` for the plain case — a JSON object with a non-empty `batch` array, a valid
 * or absent `sentAt`, no envelope `context` (that one goes to zod), `integrations` a plain object
 * or absent, `writeKey` a string or absent — or null: run the schema (which words the errors).
 */
export function fastParseBatchEnvelope(body: unknown): FastEnvelope | null {
  if (!plainObject(body)) return null;
  const batch = body.batch;
  if (!Array.isArray(batch) || batch.length === 0) return null;
  if (body.context !== undefined && body.context !== null) return null;
  if (body.writeKey !== undefined && typeof body.writeKey !== 'string') return null;
  const sentAt = time(body.sentAt);
  const integrations = object(body.integrations);
  if (sentAt === UNSURE || integrations === UNSURE) return null;
  return { batch, sentAt, integrations };
}
