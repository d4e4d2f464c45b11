/**
 * JSON change events shaped like Change Data Capture (CometD message form; CDC Developer Guide,
 * "Change Event Message Structure"; crm-reference README §2.8). `changedFields` comes only with
 * UPDATE; `recordIds` may hold several ids; `changeOrigin` carries `client=<name>` when the change
 * was made through the API with `Sforce-Call-Options: client=<name>` — that is how our own writes
 * are recognised when they come back.
 */
import { z } from 'zod';
import type { WebhookChange } from '../../src/connector-kit/connector.ts';
import type { FieldValues } from '../../src/core/types.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';

const headerSchema = z.object({
  entityName: z.string().min(1),
  recordIds: z.array(z.string()).min(1),
  changeType: z.string(),
  changeOrigin: z.string().default(''),
  transactionKey: z.string().default(''),
  sequenceNumber: z.number().default(0),
  commitTimestamp: z.number(),
  changedFields: z.array(z.string()).default([]),
  nulledFields: z.array(z.string()).default([]),
});

const payloadSchema = z.object({ ChangeEventHeader: headerSchema }).catchall(z.json());

const messageSchema = z.object({
  data: z.object({
    payload: payloadSchema,
    event: z.object({ replayId: z.number().optional() }).optional(),
  }),
  channel: z.string().optional(),
});

/** One message or an array of them (a relay may batch CometD deliveries). */
const bodySchema = z.union([messageSchema, z.array(messageSchema).min(1)]);

/** `com/salesforce/api/rest/62.0;client=crmhub` → `crmhub`; `''` when the change had no client. */
export function clientOfChangeOrigin(changeOrigin: string): string {
  const match = /(?:^|;)\s*client=([^;]*)/.exec(changeOrigin);
  return match?.[1]?.trim() ?? '';
}

function kindOf(changeType: string): WebhookChange['kind'] {
  // GAP_DELETE also means the record is gone; the other GAP_* events only say "re-read it".
  return changeType === 'DELETE' || changeType === 'GAP_DELETE' ? 'delete' : 'upsert';
}

/** Parses a CDC-shaped JSON body into changes, one per record id. */
export function parseChangeEvents(body: unknown, clientName: string): WebhookChange[] {
  const result = bodySchema.safeParse(body);
  if (!result.success) {
    throw new CrmhubError('payload', 'not a Salesforce change event', { code: 'CDC_UNEXPECTED_SHAPE', cause: result.error });
  }
  const messages = Array.isArray(result.data) ? result.data : [result.data];
  const changes: WebhookChange[] = [];
  for (const message of messages) {
    const { ChangeEventHeader: header, ...rest } = message.data.payload;
    const client = clientOfChangeOrigin(header.changeOrigin);
    const origin: WebhookChange['origin'] = client === '' ? 'other' : client === clientName ? 'self' : 'other';
    const isGap = header.changeType.startsWith('GAP_');
    const kind = kindOf(header.changeType);
    // Only CREATE/UPDATE/UNDELETE bodies hold field values; GAP events carry none (re-read instead).
    let fields: FieldValues | undefined;
    if (!isGap && kind === 'upsert') {
      fields = {};
      for (const [key, value] of Object.entries(rest)) {
        // Compound fields (Name, MailingAddress) arrive as nested objects; keep their parts flat.
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          for (const [inner, innerValue] of Object.entries(value)) fields[inner] = innerValue ?? null;
        } else {
          fields[key] = value ?? null;
        }
      }
      for (const nulled of header.nulledFields) fields[nulled] = null;
    }
    const changedAt = new Date(header.commitTimestamp).toISOString();
    const replay = message.data.event?.replayId;
    for (const id of header.recordIds) {
      const deliveryId =
        header.transactionKey !== ''
          ? `${header.transactionKey}:${header.sequenceNumber}:${id}`
          : `${header.entityName}:${id}:${replay ?? header.commitTimestamp}`;
      changes.push({
        object: header.entityName,
        id,
        deliveryId,
        changedAt,
        kind,
        ...(fields === undefined ? {} : { fields }),
        ...(header.changeType === 'UPDATE' && header.changedFields.length > 0 ? { changedFields: header.changedFields } : {}),
        origin,
      });
    }
  }
  return changes;
}
