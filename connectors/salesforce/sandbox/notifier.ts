/**
 * Pushes the org's changes out the two ways Salesforce does:
 *
 * - Outbound Messages (workflow SOAP): one SOAP 1.1 `notifications` message per sObject type with
 *   up to 100 `Notification` elements, retried until the receiver answers with
 *   `<notificationsResponse><Ack>true</Ack></notificationsResponse>` (Salesforce's outbound
 *   messaging WSDL; fixture `outbound-message.contact-notifications.xml`). Sent for creates and
 *   updates, as a workflow rule "created, and every time it's edited" would.
 * - JSON change events shaped like Change Data Capture CometD messages (`ChangeEventHeader` with
 *   entityName, recordIds, changeType, changeOrigin, commitTimestamp, changedFields), posted as a
 *   JSON array when `changeEvents` is on (fixture `cdc.contact-change-event.update.constructed.json`).
 */
import { XMLParser } from 'fast-xml-parser';
import { WebhookDispatcher, type WebhookDispatcherStats } from '../../../src/connector-kit/sandbox/webhook-dispatcher.ts';
import { IdFactory } from './ids.ts';
import { KEY_PREFIXES, findObject } from './schema.ts';
import type { ChangeRecord } from './org.ts';
import { valueToText, type SfRecord } from './values.ts';

export const OUTBOUND_NS = 'http://soap.sforce.com/2005/09/outbound';

export interface NotifierOptions {
  orgId: string;
  /** Base URL of the sandbox (EnterpriseUrl/PartnerUrl point at it). */
  baseUrl: () => string;
  apiVersion: string;
  /** Delay before retry n, ms; default 200·2ⁿ⁻¹ capped at 5 s (Salesforce: up to 24 h). */
  retryDelayMs?: (attempt: number) => number;
  /** Attempts before a message is dropped; default 100. */
  maxAttempts?: number;
  lingerMs?: number;
}

export interface DeliveryLogEntry {
  kind: 'outbound' | 'change-event';
  attempt: number;
  status: number | null;
  acked: boolean;
  notifications: number;
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** `2024-05-02T11:22:33.000+0000` → `2024-05-02T11:22:33.000Z` (SOAP and CDC form). */
const isoZ = (value: string): string => value.replace(/\+0000$/, 'Z');

const ackParser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: true, parseTagValue: false });

/** True when a body is a SOAP envelope holding `notificationsResponse/Ack` = true. */
export function isOutboundAck(body: string): boolean {
  try {
    const doc = ackParser.parse(body) as Record<string, unknown>;
    const env = doc.Envelope as Record<string, unknown> | undefined;
    const bodyEl = env?.Body as Record<string, unknown> | undefined;
    const resp = bodyEl?.notificationsResponse as Record<string, unknown> | undefined;
    const ackValue = resp?.Ack;
    return (typeof ackValue === 'string' || typeof ackValue === 'boolean') && String(ackValue).trim().toLowerCase() === 'true';
  } catch {
    return false;
  }
}

interface OutboundItem {
  notificationId: string;
  record: SfRecord;
}

export class SalesforceNotifier {
  webhookUrl: string | null = null;
  changeEvents = false;
  readonly log: DeliveryLogEntry[] = [];
  private readonly outbound = new Map<string, WebhookDispatcher<OutboundItem>>();
  private readonly cdc: WebhookDispatcher<Record<string, unknown>>;
  private readonly notificationIds = new IdFactory(KEY_PREFIXES.outboundNotification);
  private readonly actionIds = new Map<string, string>();
  private replayId = 0;

  constructor(private readonly options: NotifierOptions) {
    this.cdc = new WebhookDispatcher({
      maxBatch: 100,
      ...this.dispatcherTiming(),
      send: (batch, attempt) => this.sendChangeEvents(batch, attempt),
    });
    const actions = new IdFactory(KEY_PREFIXES.outboundAction);
    for (const name of ['Account', 'Contact', 'Lead', 'Opportunity']) this.actionIds.set(name, actions.next());
  }

  private dispatcherTiming(): { retryDelayMs?: (n: number) => number; maxAttempts: number; lingerMs?: number } {
    return {
      maxAttempts: this.options.maxAttempts ?? 100,
      ...(this.options.retryDelayMs ? { retryDelayMs: this.options.retryDelayMs } : {}),
      ...(this.options.lingerMs === undefined ? {} : { lingerMs: this.options.lingerMs }),
    };
  }

  /** Queues notifications for committed changes. */
  publish(changes: ChangeRecord[]): void {
    if (!this.webhookUrl) return;
    for (const c of changes) {
      if (c.changeType === 'CREATE' || c.changeType === 'UPDATE') {
        this.dispatcherFor(c.object).enqueue({ notificationId: this.notificationIds.next(), record: c.record });
      }
      if (this.changeEvents) this.cdc.enqueue(this.changeEvent(c));
    }
  }

  stats(): { outbound: WebhookDispatcherStats; changeEvents: WebhookDispatcherStats } {
    const outbound: WebhookDispatcherStats = { queued: 0, delivered: 0, attempts: 0, failedAttempts: 0, dropped: 0 };
    for (const d of this.outbound.values()) {
      for (const k of Object.keys(outbound) as (keyof WebhookDispatcherStats)[]) outbound[k] += d.stats[k];
    }
    return { outbound, changeEvents: { ...this.cdc.stats } };
  }

  async drain(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.outbound.values(), this.cdc].map((d) => d.drain(timeoutMs)));
  }

  clear(): void {
    for (const d of this.outbound.values()) d.clear();
    this.cdc.clear();
    this.log.length = 0;
  }

  close(): void {
    for (const d of this.outbound.values()) d.close();
    this.cdc.close();
  }

  private dispatcherFor(object: string): WebhookDispatcher<OutboundItem> {
    let d = this.outbound.get(object);
    if (!d) {
      d = new WebhookDispatcher<OutboundItem>({
        maxBatch: 100,
        ...this.dispatcherTiming(),
        send: (batch, attempt) => this.sendOutbound(object, batch, attempt),
      });
      this.outbound.set(object, d);
    }
    return d;
  }

  /** The SOAP envelope of one outbound message. */
  outboundXml(object: string, batch: OutboundItem[]): string {
    const base = this.options.baseUrl();
    const org15 = this.options.orgId.slice(0, 15);
    const v = this.options.apiVersion;
    const def = findObject(object);
    const notifications = batch
      .map(({ notificationId, record }) => {
        const fields = (def?.fields ?? [])
          .filter((f) => record[f.name] !== null && record[f.name] !== undefined)
          .map((f) => {
            const text = valueToText(record[f.name] ?? null);
            // SOAP xsd:dateTime is ISO 8601 with Z, not the REST "+0000" form.
            return `     <sf:${f.name}>${escapeXml(f.type === 'datetime' ? isoZ(text) : text)}</sf:${f.name}>`;
          })
          .join('\n');
        return `   <Notification>\n    <Id>${notificationId}</Id>\n    <sObject xsi:type="sf:${object}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n${fields}\n    </sObject>\n   </Notification>`;
      })
      .join('\n');
    return [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
      ' <soapenv:Body>',
      `  <notifications xmlns="${OUTBOUND_NS}">`,
      `   <OrganizationId>${this.options.orgId}</OrganizationId>`,
      `   <ActionId>${this.actionIds.get(object) ?? ''}</ActionId>`,
      '   <SessionId xsi:nil="true"/>',
      `   <EnterpriseUrl>${escapeXml(`${base}/services/Soap/c/${v}/${org15}`)}</EnterpriseUrl>`,
      `   <PartnerUrl>${escapeXml(`${base}/services/Soap/u/${v}/${org15}`)}</PartnerUrl>`,
      notifications,
      '  </notifications>',
      ' </soapenv:Body>',
      '</soapenv:Envelope>',
      '',
    ].join('\n');
  }

  private async sendOutbound(object: string, batch: OutboundItem[], attempt: number): Promise<boolean> {
    const url = this.webhookUrl;
    if (!url) return true;
    let status: number | null = null;
    let acked = false;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', SOAPAction: '""', 'user-agent': 'Salesforce' },
        body: this.outboundXml(object, batch),
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      const text = await res.text();
      acked = res.status === 200 && isOutboundAck(text);
    } catch {
      acked = false;
    }
    this.record({ kind: 'outbound', attempt, status, acked, notifications: batch.length });
    return acked;
  }

  private changeEvent(c: ChangeRecord): Record<string, unknown> {
    const changeOrigin =
      c.context.source === 'api' ? `com/salesforce/api/rest/${c.context.apiVersion ?? this.options.apiVersion}${c.context.client ? `;client=${c.context.client}` : ''}` : '';
    const payload: Record<string, unknown> = {
      ChangeEventHeader: {
        entityName: c.object,
        recordIds: [c.id],
        changeType: c.changeType,
        changeOrigin,
        transactionKey: c.transactionKey,
        sequenceNumber: 1,
        commitTimestamp: c.commitTimestamp,
        commitNumber: c.commitTimestamp * 1000,
        commitUser: c.record.LastModifiedById ?? null,
        changedFields: c.changedFields,
        diffFields: [],
        nulledFields: c.nulledFields,
      },
    };
    const def = findObject(c.object);
    const put = (k: string) => {
      const v = c.record[k] ?? null;
      payload[k] = typeof v === 'string' && def?.byName.get(k.toLowerCase())?.type === 'datetime' ? isoZ(v) : v;
    };
    if (c.changeType === 'CREATE') {
      for (const [k, v] of Object.entries(c.record)) if (v !== null && k !== 'Id' && k !== 'IsDeleted' && k !== 'SystemModstamp') put(k);
    } else if (c.changeType === 'UPDATE') {
      for (const k of c.changedFields) put(k);
    }
    this.replayId++;
    return { data: { schema: `crmhub-sandbox-${c.object}`, payload, event: { replayId: this.replayId } }, channel: `/data/${c.object}ChangeEvent` };
  }

  private async sendChangeEvents(batch: Record<string, unknown>[], attempt: number): Promise<boolean> {
    const url = this.webhookUrl;
    if (!url) return true;
    let status: number | null = null;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch),
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = null;
    }
    const acked = status !== null && status >= 200 && status < 300;
    this.record({ kind: 'change-event', attempt, status, acked, notifications: batch.length });
    return acked;
  }

  private record(entry: DeliveryLogEntry): void {
    this.log.push(entry);
    if (this.log.length > 1000) this.log.splice(0, this.log.length - 1000);
  }
}
