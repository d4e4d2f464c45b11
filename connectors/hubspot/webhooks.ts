/**
 * Inbound HubSpot webhooks v3 (reference README §1.8; HubSpot "Validating requests"):
 * `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(clientSecret, method + uri + rawBody + timestamp)),
 * with `X-HubSpot-Request-Timestamp` (ms) no older than 5 minutes. The signature is checked on the
 * raw body bytes with a constant-time compare; the body is a JSON array of up to 100 events,
 * each turned into a `WebhookChange` whose `deliveryId` dedupes retries.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { WebhookChange, WebhookRequest } from '../../src/connector-kit/connector.ts';
import { objectForSingular } from './declaration.ts';

/** HubSpot rejects requests whose timestamp is older than this (5 minutes). */
export const MAX_WEBHOOK_AGE_MS = 300_000;

const idValue = z.union([z.number(), z.string()]).transform(String);

export const webhookEventSchema = z
  .object({
    eventId: idValue,
    subscriptionId: idValue.optional(),
    portalId: idValue.optional(),
    appId: idValue.optional(),
    occurredAt: z.number(),
    subscriptionType: z.string().optional(),
    eventType: z.string().optional(),
    attemptNumber: z.number().optional(),
    objectId: idValue,
    propertyName: z.string().optional(),
    propertyValue: z.string().optional(),
    changeSource: z.string().optional(),
    sourceId: z.string().optional(),
    changeFlag: z.string().optional(),
    primaryObjectId: idValue.optional(),
    mergedObjectIds: z.array(idValue).optional(),
    newObjectId: idValue.optional(),
    associationType: z.string().optional(),
    fromObjectId: idValue.optional(),
    toObjectId: idValue.optional(),
    associationRemoved: z.boolean().optional(),
  })
  .loose();
export type WebhookEvent = z.infer<typeof webhookEventSchema>;

function header(headers: WebhookRequest['headers'], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== lower) continue;
    return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * HubSpot decodes these percent-encoded characters of the URI before signing (validating
 * requests guide, v3: ":", "/", "?", "@", "!", "$", "'", "(", ")", "*", ",", ";").
 */
export function normaliseSignedUri(uri: string): string {
  const decode: Record<string, string> = { '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';' };
  return uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => decode[m.toUpperCase()] ?? m);
}

function authError(message: string, code: string): CrmhubError {
  return new CrmhubError('auth', message, { code, context: { connector: 'hubspot' } });
}

/** Throws `auth` unless the request carries a valid, fresh v3 signature. */
export function verifyHubSpotSignature(request: WebhookRequest, clientSecret: string): void {
  const signature = header(request.headers, 'x-hubspot-signature-v3');
  const timestampRaw = header(request.headers, 'x-hubspot-request-timestamp');
  if (!signature || !timestampRaw) throw authError('HubSpot webhook without X-HubSpot-Signature-v3 / X-HubSpot-Request-Timestamp', 'HUBSPOT_WEBHOOK_UNSIGNED');
  const timestamp = Number(timestampRaw);
  if (!Number.isFinite(timestamp)) throw authError('HubSpot webhook timestamp is not a number', 'HUBSPOT_WEBHOOK_BAD_TIMESTAMP');
  // Old requests are replays (HubSpot: reject if older than 5 minutes); far-future ones are forged.
  if (request.now - timestamp > MAX_WEBHOOK_AGE_MS || timestamp - request.now > MAX_WEBHOOK_AGE_MS) {
    throw authError('HubSpot webhook timestamp is outside the 5-minute window', 'HUBSPOT_WEBHOOK_STALE');
  }
  const expected = createHmac('sha256', clientSecret)
    .update(Buffer.from(`${request.method.toUpperCase()}${normaliseSignedUri(request.url)}`, 'utf8'))
    .update(request.rawBody)
    .update(Buffer.from(timestampRaw, 'utf8'))
    .digest();
  const given = Buffer.from(signature, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw authError('HubSpot webhook signature does not match', 'HUBSPOT_WEBHOOK_BAD_SIGNATURE');
  }
}

/** Parses the verified body into events; malformed bodies are `payload` errors. */
export function parseHubSpotEvents(rawBody: Buffer): WebhookEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new CrmhubError('payload', 'HubSpot webhook body is not JSON', { code: 'HUBSPOT_WEBHOOK_MALFORMED', context: { connector: 'hubspot' } });
  }
  const parsed = z.union([z.array(webhookEventSchema), webhookEventSchema.transform((e) => [e])]).safeParse(json);
  if (!parsed.success) {
    throw new CrmhubError('payload', `HubSpot webhook body is not an event array: ${parsed.error.issues[0]?.message ?? ''}`, { code: 'HUBSPOT_WEBHOOK_MALFORMED', context: { connector: 'hubspot' } });
  }
  return parsed.data;
}

/**
 * One event → changes. `origin` is `self` when the change came from our own app: HubSpot marks an
 * integration's API writes with `changeSource` INTEGRATION/API and the app id in `sourceId`, and
 * `appId` of the event is the subscribing app — ours.
 */
export function eventToChanges(event: WebhookEvent, selfAppId?: string): WebhookChange[] {
  const type = event.subscriptionType ?? event.eventType ?? '';
  const [singular = '', action = ''] = type.split('.');
  const object = objectForSingular(singular);
  if (!object) return [];
  const appId = selfAppId ?? event.appId;
  const self = (event.changeSource === 'INTEGRATION' || event.changeSource === 'API') && appId !== undefined && event.sourceId === appId;
  const origin: WebhookChange['origin'] = event.changeSource ? (self ? 'self' : 'other') : 'unknown';
  // eventId is "not guaranteed unique" (HubSpot docs): scope it by subscription, time and object.
  const deliveryId = `${event.subscriptionId ?? ''}:${event.eventId}:${event.occurredAt}:${event.objectId}`;
  const base = { object, deliveryId, changedAt: new Date(event.occurredAt).toISOString(), origin };
  switch (action) {
    case 'creation':
    case 'restore':
      return [{ ...base, id: event.objectId, kind: 'upsert' }];
    case 'propertyChange':
      return [
        {
          ...base,
          id: event.objectId,
          kind: 'upsert',
          ...(event.propertyName ? { changedFields: [event.propertyName], fields: { [event.propertyName]: event.propertyValue ?? null } } : {}),
        },
      ];
    case 'deletion':
    case 'privacyDeletion':
      return [{ ...base, id: event.objectId, kind: 'delete' }];
    case 'merge': {
      const into = event.newObjectId ?? event.primaryObjectId ?? event.objectId;
      const gone = new Set([...(event.mergedObjectIds ?? []), ...(event.primaryObjectId ? [event.primaryObjectId] : [])]);
      gone.delete(into);
      const changes: WebhookChange[] = [...gone].map((id) => ({ ...base, deliveryId: `${deliveryId}:${id}`, id, kind: 'merge', mergedIntoId: into }));
      changes.push({ ...base, deliveryId: `${deliveryId}:${into}`, id: into, kind: 'upsert' });
      return changes;
    }
    case 'associationChange': {
      const to = event.associationType?.split('_TO_')[1]?.toLowerCase();
      const toObject = to ? objectForSingular(to) : undefined;
      return [{ ...base, id: event.fromObjectId ?? event.objectId, kind: 'association', ...(toObject ? { changedFields: [`associations.${toObject}`] } : {}) }];
    }
    default:
      return [];
  }
}
