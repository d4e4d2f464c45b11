/**
 * zod schemas of the Segment HTTP tracking API (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/):
 * `identify`, `track`, `page`, `screen`, `group`, `alias` and `batch`. Objects are loose (unknown
 * keys are kept and ignored) because Segment libraries add fields over time (`_metadata`,
 * `channel`, …) and a drop-in replacement must not reject them.
 *
 * Ids (`userId`, `anonymousId`, `groupId`, `previousId`) are accepted as strings or finite numbers
 * (several Segment clients send numeric ids) and turned into trimmed strings; a blank id counts as
 * absent. Every call except `alias` needs `userId` or `anonymousId`; `alias` needs `userId` and
 * `previousId`; `track` needs `event`; `group` needs `groupId`.
 */
import { z } from 'zod';

export const EVENT_TYPES = ['identify', 'track', 'page', 'screen', 'group', 'alias'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Most bytes of one event (Segment: 32 KB per call). */
export const MAX_EVENT_BYTES = 32 * 1024;
/** Most bytes of one batch request (Segment: 500 KB per batch request). */
export const MAX_BATCH_BYTES = 500 * 1024;

const idSchema = z
  .union([z.string(), z.number().finite()], { error: 'must be a string' })
  .transform((v) => String(v).trim())
  .refine((v) => v.length <= 1024, 'must be at most 1024 characters');

const isoTime = z
  .string({ error: 'must be an ISO-8601 date-time string' })
  .refine((s) => /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(s.trim()) && !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 date-time string');

const jsonObject = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' });

const externalIdSchema = z.looseObject({
  id: idSchema,
  type: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty'),
  collection: z.string().optional(),
  encoding: z.string().optional(),
});

const contextSchema = z.looseObject({
  traits: jsonObject.optional(),
  externalIds: z.array(externalIdSchema, { error: 'must be an array' }).optional(),
});

/** Fields every call may carry. */
const common = {
  userId: idSchema.nullish(),
  anonymousId: idSchema.nullish(),
  messageId: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
  timestamp: isoTime.nullish(),
  originalTimestamp: isoTime.nullish(),
  sentAt: isoTime.nullish(),
  context: contextSchema.nullish(),
  integrations: jsonObject.nullish(),
};

const needsUser = (e: { userId?: string | null | undefined; anonymousId?: string | null | undefined }): boolean =>
  (e.userId ?? '') !== '' || (e.anonymousId ?? '') !== '';
const userMessage = { message: 'userId or anonymousId is required', path: ['userId'] };

export const identifySchema = z
  .looseObject({ ...common, type: z.literal('identify'), traits: jsonObject.nullish() })
  .refine(needsUser, userMessage);

export const trackSchema = z
  .looseObject({
    ...common,
    type: z.literal('track'),
    event: z.string({ error: 'is required (the event name)' }).trim().min(1, 'must not be empty').max(1024),
    properties: jsonObject.nullish(),
  })
  .refine(needsUser, userMessage);

/** `page` and `screen` share a shape: a view with an optional name and category. */
const viewSchema = <T extends 'page' | 'screen'>(type: T) =>
  z
    .looseObject({
      ...common,
      type: z.literal(type),
      name: z.string({ error: 'must be a string' }).nullish(),
      category: z.string({ error: 'must be a string' }).nullish(),
      properties: jsonObject.nullish(),
    })
    .refine(needsUser, userMessage);

export const pageSchema = viewSchema('page');
export const screenSchema = viewSchema('screen');

export const groupSchema = z
  .looseObject({
    ...common,
    type: z.literal('group'),
    groupId: idSchema.refine((v) => v !== '', 'must not be empty'),
    traits: jsonObject.nullish(),
  })
  .refine(needsUser, userMessage);

export const aliasSchema = z.looseObject({
  ...common,
  type: z.literal('alias'),
  userId: idSchema.refine((v) => v !== '', 'must not be empty'),
  previousId: idSchema.refine((v) => v !== '', 'must not be empty'),
});

/** One event of any type; `type` selects the schema. */
export const eventSchema = z.discriminatedUnion('type', [identifySchema, trackSchema, pageSchema, screenSchema, groupSchema, aliasSchema], {
  error: `type must be one of ${EVENT_TYPES.join(', ')}`,
});

export type SegmentEvent = z.infer<typeof eventSchema>;

/** The envelope of `POST /v1/batch`; items are validated one by one (see `validateBatch`). */
export const batchEnvelopeSchema = z.looseObject({
  batch: z.array(z.unknown(), { error: 'batch must be an array of events' }).min(1, 'batch must hold at least one event'),
  sentAt: isoTime.nullish(),
  context: contextSchema.nullish(),
  integrations: jsonObject.nullish(),
  writeKey: z.string().optional(),
});

/** Schemas of the single-event routes, by the route's type. */
export const SCHEMA_BY_TYPE = {
  identify: identifySchema,
  track: trackSchema,
  page: pageSchema,
  screen: screenSchema,
  group: groupSchema,
  alias: aliasSchema,
} as const;
