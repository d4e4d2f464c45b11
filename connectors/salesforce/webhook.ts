/**
 * `POST /webhooks/salesforce?token=…`: verifies the shared token (and, for Outbound Messages, the
 * organization id) with constant-time comparisons, then parses SOAP Outbound Messages (answered
 * with the Ack) or CDC-shaped JSON change events.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { WebhookChange, WebhookRequest, WebhookResult } from '../../src/connector-kit/connector.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { parseChangeEvents } from './change-event.ts';
import { OUTBOUND_MESSAGE_ACK, parseOutboundMessage } from './outbound-message.ts';
import { normaliseSalesforceDate } from './soql.ts';

export interface WebhookSettings {
  /** Shared secret expected in the `token` query parameter. Without one every delivery is refused. */
  token: string | undefined;
  /** Expected organization id (15 or 18 characters); checked when set. */
  orgId: string | undefined;
  /** Our `Sforce-Call-Options` client name: change events carrying it are our own writes. */
  clientName: string;
}

/** Constant-time equality on raw bytes; hashing first makes the lengths equal. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** Org ids come as 15 (case-sensitive) or 18 characters; the first 15 identify the org. */
function sameOrg(received: string, expected: string): boolean {
  return constantTimeEqual(received.slice(0, 15), expected.slice(0, 15));
}

function header(request: WebhookRequest, name: string): string {
  const value = request.headers[name] ?? request.headers[name.toLowerCase()];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

function tokenOf(request: WebhookRequest): string | null {
  try {
    return new URL(request.url, 'http://localhost').searchParams.get('token');
  } catch {
    return null;
  }
}

function authError(message: string, code: string): CrmhubError {
  return new CrmhubError('auth', message, { code, context: { connector: 'salesforce' } });
}

export function handleSalesforceWebhook(request: WebhookRequest, settings: WebhookSettings): WebhookResult {
  const token = tokenOf(request);
  if (settings.token === undefined || settings.token === '') {
    throw authError('SALESFORCE_WEBHOOK_TOKEN is not set; Salesforce webhooks are refused', 'WEBHOOK_TOKEN_NOT_SET');
  }
  if (token === null || !constantTimeEqual(token, settings.token)) {
    throw authError('Salesforce webhook token missing or wrong', 'WEBHOOK_TOKEN_MISMATCH');
  }
  const contentType = header(request, 'content-type').toLowerCase();
  const text = request.rawBody.toString('utf8');
  const looksXml = contentType.includes('xml') || text.trimStart().startsWith('<');
  if (looksXml) {
    const message = parseOutboundMessage(text);
    if (settings.orgId !== undefined && settings.orgId !== '' && !sameOrg(message.organizationId, settings.orgId)) {
      throw authError('Outbound Message from an unexpected organization', 'ORG_ID_MISMATCH');
    }
    const changes = message.notifications.map((n): WebhookChange => {
      const modified = n.fields['SystemModstamp'] ?? n.fields['LastModifiedDate'];
      const ms = typeof modified === 'string' ? Date.parse(normaliseSalesforceDate(modified)) : Number.NaN;
      const changedAt = new Date(Number.isNaN(ms) ? request.now : ms).toISOString();
      const converted = n.object === 'Lead' && n.fields['IsConverted'] === 'true' && typeof n.fields['ConvertedContactId'] === 'string';
      return {
        object: n.object,
        id: n.id,
        deliveryId: n.notificationId,
        changedAt,
        kind: converted ? 'merge' : 'upsert',
        fields: n.fields,
        ...(converted ? { mergedIntoId: n.fields['ConvertedContactId'] as string } : {}),
        // Outbound Messages say nothing about who made the change; the shadow stops echoes.
        origin: 'unknown',
      };
    });
    return { changes, reply: { status: 200, contentType: 'text/xml; charset=utf-8', body: OUTBOUND_MESSAGE_ACK } };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new CrmhubError('payload', 'Salesforce webhook body is neither SOAP nor JSON', { code: 'WEBHOOK_MALFORMED', cause });
  }
  return { changes: parseChangeEvents(body, settings.clientName) };
}
