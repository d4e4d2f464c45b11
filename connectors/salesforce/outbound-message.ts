/**
 * Outbound Messages (workflow / flow SOAP notifications). Format: the Outbound Messaging WSDL
 * (namespace `http://soap.sforce.com/2005/09/outbound`), 1..100 `Notification`s each holding one
 * `sObject` whose `xsi:type` names the object (crm-reference README §2.9, verbatim fixture
 * `outbound-message.contact-notifications.xml`). Salesforce treats anything but the SOAP Ack as a
 * failure and redelivers for about 24 h, so dedupe is on `Notification/Id`.
 */
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import type { FieldValues, JsonValue } from '../../src/core/types.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';

/** The exact Ack Salesforce expects (fixture `outbound-message.ack-response.xml`). */
export const OUTBOUND_MESSAGE_ACK =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' +
  ' <soapenv:Body>\n' +
  '  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n' +
  '   <Ack>true</Ack>\n' +
  '  </notificationsResponse>\n' +
  ' </soapenv:Body>\n' +
  '</soapenv:Envelope>\n';

export interface OutboundNotification {
  /** Notification id: stable across redeliveries, used for dedupe. */
  notificationId: string;
  object: string;
  id: string;
  /** Field values as sent (strings; `xsi:nil` as null). */
  fields: FieldValues;
}

export interface OutboundMessage {
  organizationId: string;
  actionId: string;
  notifications: OutboundNotification[];
}

const textSchema = z.union([z.string(), z.number()]).transform(String);
const sObjectSchema = z.record(z.string(), z.unknown());
const envelopeSchema = z.object({
  Envelope: z.object({
    Body: z.object({
      notifications: z.object({
        OrganizationId: textSchema,
        ActionId: textSchema,
        Notification: z.array(z.object({ Id: textSchema, sObject: sObjectSchema })).min(1),
      }),
    }),
  }),
});

const parser = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: false,
  // Keep values as text: ids like `0031I…` or zip codes must not turn into numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => name === 'Notification',
});

function fieldValue(value: unknown): JsonValue {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (v['@_nil'] === 'true') return null;
    if (typeof v['#text'] === 'string') return v['#text'];
  }
  return value === undefined ? null : JSON.stringify(value);
}

/** Parses the SOAP body. Rejects with `payload` when it is not an Outbound Message. */
export function parseOutboundMessage(xml: string): OutboundMessage {
  // A DOCTYPE has no place in a notification and is the door to entity-expansion attacks.
  if (/<!DOCTYPE/i.test(xml)) {
    throw new CrmhubError('payload', 'Outbound Message with a DOCTYPE refused', { code: 'SOAP_DOCTYPE' });
  }
  let parsed: unknown;
  try {
    parsed = parser.parse(xml, true);
  } catch (cause) {
    throw new CrmhubError('payload', 'Outbound Message is not well-formed XML', { code: 'SOAP_MALFORMED', cause });
  }
  const result = envelopeSchema.safeParse(parsed);
  if (!result.success) {
    throw new CrmhubError('payload', 'not a Salesforce Outbound Message', { code: 'SOAP_UNEXPECTED_SHAPE', cause: result.error });
  }
  const body = result.data.Envelope.Body.notifications;
  const notifications = body.Notification.map((n): OutboundNotification => {
    const typeAttr = n.sObject['@_type'];
    const object = typeof typeAttr === 'string' ? typeAttr.replace(/^.*:/, '') : '';
    const fields: FieldValues = {};
    for (const [key, value] of Object.entries(n.sObject)) {
      if (key.startsWith('@_')) continue;
      fields[key] = fieldValue(value);
    }
    const id = fields['Id'];
    if (object === '' || typeof id !== 'string' || id === '') {
      throw new CrmhubError('payload', 'Outbound Message notification without sObject type or Id', {
        code: 'SOAP_UNEXPECTED_SHAPE',
        context: { delivery: n.Id },
      });
    }
    return { notificationId: n.Id, object, id, fields };
  });
  return { organizationId: body.OrganizationId, actionId: body.ActionId, notifications };
}
