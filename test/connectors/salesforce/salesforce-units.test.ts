/**
 * Pure parts of the Salesforce connector: error classification, SOQL escaping and splitting,
 * Outbound Message (SOAP) and CDC parsing, webhook verification, env parsing, describe mapping.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientOfChangeOrigin, parseChangeEvents } from '../../../connectors/salesforce/change-event.ts';
import { salesforceFromEnv } from '../../../connectors/salesforce/env.ts';
import { classifyRecordError, classifyRequestError } from '../../../connectors/salesforce/errors.ts';
import { OUTBOUND_MESSAGE_ACK, parseOutboundMessage } from '../../../connectors/salesforce/outbound-message.ts';
import { toRemoteField, toSalesforceValue } from '../../../connectors/salesforce/schema.ts';
import { encodedLength, escapeSoqlLike, escapeSoqlString, keysetWhere, soqlLiteral, soqlName, splitFieldList } from '../../../connectors/salesforce/soql.ts';
import { handleSalesforceWebhook } from '../../../connectors/salesforce/webhook.ts';
import { CrmhubError } from '../../../src/connector-kit/errors.ts';
import { fixture } from './helpers.ts';

class FakeHttpApiError extends Error {
  constructor(
    message: string,
    readonly errorCode: string,
  ) {
    super(message);
    this.name = errorCode;
  }
}

describe('classifyRequestError', () => {
  const cases: [string, string][] = [
    ['INVALID_SESSION_ID', 'auth'],
    ['REQUEST_LIMIT_EXCEEDED', 'rate_limited'],
    ['INVALID_FIELD', 'config'],
    ['INVALID_TYPE', 'config'],
    ['MALFORMED_QUERY', 'config'],
    ['SERVER_UNAVAILABLE', 'transient'],
    ['UNABLE_TO_LOCK_ROW', 'transient'],
    ['ERROR_HTTP_502', 'transient'],
    ['ERROR_HTTP_401', 'auth'],
    ['ERROR_HTTP_429', 'rate_limited'],
    ['ERROR_HTTP_404', 'config'],
    ['MULTIPLE_CHOICES', 'conflict'],
  ];
  for (const [code, kind] of cases) {
    it(`${code} → ${kind}`, () => {
      const error = classifyRequestError(new FakeHttpApiError('x', code));
      expect(error).toBeInstanceOf(CrmhubError);
      expect(error.kind).toBe(kind);
      expect(error.code).toBe(code);
    });
  }
  it('network failures are transient', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', name: 'FetchError' });
    expect(classifyRequestError(err).kind).toBe('transient');
  });
  it('rate_limited errors carry a pause', () => {
    expect(classifyRequestError(new FakeHttpApiError('TotalRequests Limit exceeded.', 'REQUEST_LIMIT_EXCEEDED')).retryAfterMs).toBeGreaterThan(0);
  });
  it('the concurrent-request flavour of REQUEST_LIMIT_EXCEEDED pauses briefly, the daily one long', () => {
    const concurrent = classifyRequestError(new FakeHttpApiError('ConcurrentRequests (Concurrent API Requests) Limit exceeded.', 'REQUEST_LIMIT_EXCEEDED'));
    const daily = classifyRequestError(new FakeHttpApiError('TotalRequests Limit exceeded.', 'REQUEST_LIMIT_EXCEEDED'));
    expect(concurrent.kind).toBe('rate_limited');
    expect(concurrent.retryAfterMs).toBeLessThan(daily.retryAfterMs ?? 0);
  });
  it('MULTIPLE_API_ERRORS is classified by the first error', () => {
    const err = Object.assign(new FakeHttpApiError('Multiple errors', 'MULTIPLE_API_ERRORS'), {
      data: [{ errorCode: 'INVALID_FIELD', message: 'a' }, { errorCode: 'INVALID_FIELD', message: 'b' }],
    });
    expect(classifyRequestError(err).kind).toBe('config');
  });
});

describe('classifyRecordError', () => {
  for (const code of ['DUPLICATES_DETECTED', 'FIELD_CUSTOM_VALIDATION_EXCEPTION', 'REQUIRED_FIELD_MISSING', 'INVALID_EMAIL_ADDRESS', 'STRING_TOO_LONG', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST']) {
    it(`${code} is a payload error for that record only`, () => {
      const error = classifyRecordError([{ statusCode: code, message: 'no', fields: ['Email'] }], { object: 'Contact', record: 'r1' });
      expect(error.kind).toBe('payload');
      expect(error.code).toBe(code);
      expect(error.context).toMatchObject({ object: 'Contact', record: 'r1', field: 'Email' });
    });
  }
  it('UNABLE_TO_LOCK_ROW is transient', () => {
    expect(classifyRecordError([{ statusCode: 'UNABLE_TO_LOCK_ROW', message: 'locked' }]).kind).toBe('transient');
  });
});

describe('SOQL', () => {
  it('escapes quotes, backslashes and control characters', () => {
    expect(escapeSoqlString("o'brien@example.com")).toBe("o\\'brien@example.com");
    expect(escapeSoqlString('Back\\slash')).toBe('Back\\\\slash');
    expect(escapeSoqlString('a"b\nc\td')).toBe('a\\"b\\nc\\td');
    expect(escapeSoqlLike('50%_off')).toBe('50\\%\\_off');
    expect(soqlLiteral("it's")).toBe("'it\\'s'");
    expect(soqlLiteral(null)).toBe('null');
    expect(soqlLiteral(3)).toBe('3');
  });

  it('never lets a string value end its literal early (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const literal = soqlLiteral(s);
        // Walk the literal as SOQL would: an unescaped quote may only appear at the very end.
        let i = 1;
        while (i < literal.length - 1) {
          if (literal[i] === '\\') i += 2;
          else if (literal[i] === "'") return false;
          else i += 1;
        }
        return i === literal.length - 1 && literal.endsWith("'");
      }),
    );
  });

  it('refuses API names that are not names', () => {
    expect(soqlName('Crmhub_Id__c')).toBe('Crmhub_Id__c');
    expect(() => soqlName('Id FROM User --')).toThrow(CrmhubError);
  });

  it('builds the keyset condition with Id as tie breaker', () => {
    expect(keysetWhere({ ts: '2024-05-02T11:22:33.000+0000', id: '003D000000QV9n2IAD' })).toBe(
      "(SystemModstamp > 2024-05-02T11:22:33Z OR (SystemModstamp = 2024-05-02T11:22:33Z AND Id > '003D000000QV9n2IAD'))",
    );
    expect(keysetWhere(null)).toBe('');
  });

  it('splits field lists so every query fits the budget and all fields appear once', () => {
    const fields = Array.from({ length: 500 }, (_, i) => `Field_${i}__c`);
    const rest = encodedLength('FROM Contact ORDER BY SystemModstamp, Id');
    const groups = splitFieldList(['Id', 'SystemModstamp'], fields, rest, 2_000);
    expect(groups.length).toBeGreaterThan(1);
    expect(groups.flat()).toEqual(fields);
    for (const g of groups) expect(encodedLength(`SELECT Id, SystemModstamp , ${g.join(', ')}`) + rest).toBeLessThanOrEqual(2_000);
    expect(splitFieldList(['Id'], ['Email'], 10)).toEqual([['Email']]);
  });
});

describe('Outbound Messages', () => {
  it('parses the two Contact notifications of the fixture', () => {
    const message = parseOutboundMessage(fixture('outbound-message.contact-notifications.xml'));
    expect(message.organizationId).toBe('012345678901234');
    expect(message.notifications).toEqual([
      {
        notificationId: '04l1I000000fztEQAQ',
        object: 'Contact',
        id: '0031I0000081tbPQAQ',
        fields: { Id: '0031I0000081tbPQAQ', CreatedDate: '2017-12-11T21:49:24.000Z', FirstName: 'Jeraldine', LastName: 'Black', Title: 'White' },
      },
      {
        notificationId: '04l1I000000fzt9QAA',
        object: 'Contact',
        id: '0031I0000081tb0QAA',
        fields: { Id: '0031I0000081tb0QAA', CreatedDate: '2017-12-11T21:44:55.000Z', Email: 'doug@example.com', FirstName: 'Doug', LastName: 'Bunting', Title: 'Supreme Being' },
      },
    ]);
  });

  it('refuses DOCTYPEs and non-notifications as payload errors', () => {
    expect(() => parseOutboundMessage('<!DOCTYPE x [<!ENTITY a "b">]><x/>')).toThrow(expect.objectContaining({ kind: 'payload' }) as Error);
    expect(() => parseOutboundMessage('<a>b</a>')).toThrow(expect.objectContaining({ kind: 'payload' }) as Error);
  });

  const settings = { token: 'hook-secret', orgId: '012345678901234AAA', clientName: 'crmhub' };
  const request = (url: string, body: string, contentType = 'text/xml; charset=utf-8') => ({
    method: 'POST',
    url,
    headers: { 'content-type': contentType },
    rawBody: Buffer.from(body),
    now: Date.parse('2024-05-02T12:00:00Z'),
  });

  it('answers with the SOAP Ack and dedupes on the Notification Id', () => {
    const result = handleSalesforceWebhook(request('https://hub.example.com/webhooks/salesforce?token=hook-secret', fixture('outbound-message.contact-notifications.xml')), settings);
    expect(result.reply).toEqual({ status: 200, contentType: 'text/xml; charset=utf-8', body: OUTBOUND_MESSAGE_ACK });
    expect(OUTBOUND_MESSAGE_ACK).toContain('<Ack>true</Ack>');
    expect(result.changes.map((c) => [c.deliveryId, c.id, c.kind])).toEqual([
      ['04l1I000000fztEQAQ', '0031I0000081tbPQAQ', 'upsert'],
      ['04l1I000000fzt9QAA', '0031I0000081tb0QAA', 'upsert'],
    ]);
  });

  it('rejects a wrong token or another organization with kind auth', () => {
    const xml = fixture('outbound-message.contact-notifications.xml');
    expect(() => handleSalesforceWebhook(request('https://hub/webhooks/salesforce?token=nope', xml), settings)).toThrow(expect.objectContaining({ kind: 'auth' }) as Error);
    expect(() => handleSalesforceWebhook(request('https://hub/webhooks/salesforce', xml), settings)).toThrow(expect.objectContaining({ kind: 'auth' }) as Error);
    expect(() => handleSalesforceWebhook(request('https://hub/webhooks/salesforce?token=hook-secret', xml), { ...settings, orgId: '00D000000000999' })).toThrow(
      expect.objectContaining({ kind: 'auth', code: 'ORG_ID_MISMATCH' }) as Error,
    );
    expect(() => handleSalesforceWebhook(request('https://hub/webhooks/salesforce?token=x', xml), { ...settings, token: undefined })).toThrow(expect.objectContaining({ kind: 'auth' }) as Error);
  });

  it('reports a converted Lead as a merge into its Contact', () => {
    const xml = fixture('outbound-message.contact-notifications.xml')
      .replace('xsi:type="sf:Contact"', 'xsi:type="sf:Lead"')
      .replace('<sf:Title>White</sf:Title>', '<sf:IsConverted>true</sf:IsConverted><sf:ConvertedContactId>003000000000009AAA</sf:ConvertedContactId>');
    const [first] = handleSalesforceWebhook(request('https://hub/webhooks/salesforce?token=hook-secret', xml), settings).changes;
    expect(first).toMatchObject({ object: 'Lead', kind: 'merge', mergedIntoId: '003000000000009AAA' });
  });
});

describe('CDC-shaped change events', () => {
  const event = JSON.parse(fixture('cdc.contact-change-event.update.constructed.json')) as unknown;

  it('parses the fixture: changedFields, commitTimestamp, and another client as origin other', () => {
    const [change] = parseChangeEvents(event, 'crmhub');
    expect(change).toEqual({
      object: 'Contact',
      id: '003D000000QV9n2IAD',
      deliveryId: '0002343d-9d90-e395-ed20-cf416ba652ad:1:003D000000QV9n2IAD',
      changedAt: '2024-05-02T11:40:00.000Z',
      kind: 'upsert',
      fields: { Email: 'ada.l@example.com', LastModifiedDate: '2024-05-02T11:40:00.000Z' },
      changedFields: ['Email', 'LastModifiedDate'],
      origin: 'other',
    });
  });

  it('recognises our own writes by changeOrigin client', () => {
    const [change] = parseChangeEvents(event, 'crm-sync-hub');
    expect(change?.origin).toBe('self');
    expect(clientOfChangeOrigin('com/salesforce/api/rest/62.0;client=crmhub')).toBe('crmhub');
    expect(clientOfChangeOrigin('')).toBe('');
  });

  it('turns DELETE into delete changes, one per record id, and GAP events into thin upserts', () => {
    const base = event as { data: { payload: { ChangeEventHeader: Record<string, unknown> } } };
    const del = structuredClone(base);
    del.data.payload.ChangeEventHeader['changeType'] = 'DELETE';
    del.data.payload.ChangeEventHeader['recordIds'] = ['003000000000001AAA', '003000000000002AAA'];
    const changes = parseChangeEvents(del, 'crmhub');
    expect(changes.map((c) => [c.id, c.kind])).toEqual([
      ['003000000000001AAA', 'delete'],
      ['003000000000002AAA', 'delete'],
    ]);
    const gap = structuredClone(base);
    gap.data.payload.ChangeEventHeader['changeType'] = 'GAP_UPDATE';
    const [g] = parseChangeEvents(gap, 'crmhub');
    expect(g?.kind).toBe('upsert');
    expect(g?.fields).toBeUndefined();
  });

  it('rejects malformed bodies as payload errors', () => {
    expect(() => parseChangeEvents({ nope: true }, 'crmhub')).toThrow(expect.objectContaining({ kind: 'payload' }) as Error);
  });
});

describe('schema and env', () => {
  it('maps describe fields to RemoteFields', () => {
    const field = toRemoteField({
      name: 'Plan__c', label: 'Plan', type: 'picklist', custom: true, externalId: false, unique: false, nillable: true, createable: true, updateable: true,
      defaultedOnCreate: false, calculated: false, referenceTo: [], picklistValues: [{ value: 'free', label: 'Free', active: true }, { value: 'old', label: 'Old', active: false }],
    });
    expect(field).toEqual({ name: 'Plan__c', label: 'Plan', type: 'enum', readOnly: false, unique: false, required: false, custom: true, options: [{ value: 'free', label: 'Free' }] });
  });

  it('converts values by field type for writes', () => {
    const base = { label: 'x', custom: false, externalId: false, unique: false, nillable: true, createable: true, updateable: true, defaultedOnCreate: false, calculated: false, referenceTo: [], picklistValues: [] };
    expect(toSalesforceValue('2024-05-02T11:22:33Z', { ...base, name: 'CloseDate', type: 'date' })).toBe('2024-05-02');
    expect(toSalesforceValue('42.5', { ...base, name: 'Amount', type: 'currency' })).toBe(42.5);
    expect(toSalesforceValue(['a', 'b'], undefined)).toBe('a;b');
  });

  it('builds from env only when credentials are set, and never echoes secret values on bad settings', () => {
    expect(salesforceFromEnv({})).toBeNull();
    expect(salesforceFromEnv({ SALESFORCE_INSTANCE_URL: 'https://acme.my.salesforce.com', SALESFORCE_ACCESS_TOKEN: 't' })).not.toBeNull();
    expect(salesforceFromEnv({ SALESFORCE_CLIENT_ID: 'c', SALESFORCE_CLIENT_SECRET: 's', SALESFORCE_LOGIN_URL: 'https://acme.my.salesforce.com' })).not.toBeNull();
    const error = (() => {
      try {
        salesforceFromEnv({ SALESFORCE_INSTANCE_URL: 'not a url super-secret', SALESFORCE_ACCESS_TOKEN: 't' });
        return null;
      } catch (e) {
        return e as CrmhubError;
      }
    })();
    expect(error?.kind).toBe('config');
    expect(error?.message).not.toContain('super-secret');
  });
});
