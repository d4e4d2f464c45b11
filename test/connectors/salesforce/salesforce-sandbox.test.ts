/**
 * End to end against the Salesforce sandbox: rep edits arrive by Outbound Message and by pull, our
 * own writes are recognised when they come back, a 10,000-record load goes through Bulk API 2.0,
 * converted Leads are followed, deletes are seen, and the quota reserve is respected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteRecord } from '../../../src/connector-kit/connector.ts';
import { startHarness, type SalesforceSandboxHarness } from './sandbox-harness.ts';

let h: SalesforceSandboxHarness;

beforeAll(async () => {
  h = await startHarness({ SALESFORCE_BULK_THRESHOLD: '2000' });
});
afterAll(async () => {
  await h.close();
});

async function pullAll(object: string, cursor: string | null): Promise<{ records: RemoteRecord[]; cursor: string | null }> {
  const records: RemoteRecord[] = [];
  for (let i = 0; i < 100; i++) {
    const page = await h.connector.readChanges(object, cursor);
    records.push(...page.records);
    cursor = page.nextCursor ?? cursor;
    if (page.done) return { records, cursor };
  }
  throw new TypeError('never done');
}

describe('Salesforce connector against the sandbox', () => {
  it("a rep's edit reaches crmhub by Outbound Message (acknowledged) and by pull", async () => {
    const id = await h.createAsRep('Contact', { LastName: 'Rep', Email: 'rep.one@example.com' });
    const start = await pullAll('Contact', null);
    expect(start.records.map((r) => r.id)).toContain(id);
    await h.control('/_sandbox/edit', { object: 'Contact', id, fields: { Title: 'VP Sales' } });
    const hook = await h.waitForWebhook((w) => w.text.includes(id) && w.text.includes('VP Sales'));
    const result = await h.connector.handleWebhook(hook);
    expect(result.reply?.body).toContain('<Ack>true</Ack>');
    const change = result.changes.find((c) => c.id === id);
    expect(change?.fields?.['Title']).toBe('VP Sales');
    const pulled = await pullAll('Contact', start.cursor);
    const record = pulled.records.find((r) => r.id === id);
    expect(record?.fields['Title']).toBe('VP Sales');
    // Webhook values (SOAP text) and pulled values (REST JSON) take the same form, so the engine's
    // shadow comparison sees no spurious differences.
    const shared = Object.keys(change?.fields ?? {}).filter((k) => record !== undefined && k in record.fields);
    expect(shared.length).toBeGreaterThan(3);
    for (const key of shared) expect([key, change?.fields?.[key]]).toEqual([key, record?.fields[key]]);
  });

  it('our own writes come back marked as ours (changeOrigin client=crmhub)', async () => {
    await h.control('/_sandbox/config', { changeEvents: true });
    const [outcome] = await h.connector.write('Contact', [
      { ref: 'self', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_self_1' }, fields: { LastName: 'Self', Email: 'self@example.com' } },
    ]);
    expect(outcome?.ok).toBe(true);
    const id = outcome?.ok ? outcome.remoteId : '';
    const hook = await h.waitForWebhook((w) => w.text.includes('ChangeEventHeader') && w.text.includes(id));
    const result = await h.connector.handleWebhook(hook);
    const change = result.changes.find((c) => c.id === id);
    expect(change?.origin).toBe('self');
    await h.control('/_sandbox/config', { changeEvents: false });
  });

  it("an email with a quote and a name with a backslash round-trip through writes and SOQL", async () => {
    const email = "o'brien@example.com";
    const name = 'Back\\slash';
    const [outcome] = await h.connector.write('Contact', [{ ref: 'ob', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_ob' }, fields: { Email: email, LastName: name } }]);
    expect(outcome?.ok).toBe(true);
    const found = await h.connector.findByFields('Contact', { Email: [email] }, ['Email', 'LastName']);
    expect(found.map((r) => [r.fields['Email'], r.fields['LastName']])).toEqual([[email, name]]);
  });

  it('a Lead converted into a Contact is followed to the Contact, not recreated', async () => {
    const [created] = await h.connector.write('Lead', [
      { ref: 'lead', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_lead_1' }, fields: { LastName: 'Lead', Company: 'Acme', Email: 'lead.one@example.com' } },
    ]);
    expect(created?.ok).toBe(true);
    const leadId = created?.ok ? created.remoteId : '';
    const converted = (await h.control('/_sandbox/convert-lead', { id: leadId })) as { contactId?: string };
    const contactId = converted.contactId ?? '';
    expect(contactId).not.toBe('');
    // Reads report the conversion so the engine links the profile to the Contact. (Writes to a
    // converted Lead are refused by Salesforce with CANNOT_UPDATE_CONVERTED_LEAD and followed to the
    // Contact: pinned in salesforce-nock.test.ts; the sandbox still accepts such writes.)
    const [lead] = await h.connector.readByIds('Lead', [leadId]);
    expect(lead?.mergedIntoId).toBe(contactId);
    const pulled = await pullAll('Lead', null);
    expect(pulled.records.find((r) => r.id === leadId)?.mergedIntoId).toBe(contactId);
    const [contact] = await h.connector.readByIds('Contact', [contactId], ['Email']);
    expect(contact?.fields['Email']).toBe('lead.one@example.com');
  });

  it('writes Accounts, then Contacts and Opportunities linked to them by AccountId', async () => {
    const [account] = await h.connector.write('Account', [{ ref: 'acc', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_acc_1' }, fields: { Name: 'Linked Ltd', Seats__c: 12 } }]);
    expect(account?.ok).toBe(true);
    const accountId = account?.ok ? account.remoteId : '';
    await h.connector.describe('Opportunity');
    const [contact] = await h.connector.write('Contact', [{ ref: 'c', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_linked_c' }, fields: { LastName: 'Linked', AccountId: accountId } }]);
    const [opp] = await h.connector.write('Opportunity', [
      // A datetime for a date field is cut to the date once describe is known.
      { ref: 'o', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_opp_1' }, fields: { Name: 'Big deal', StageName: 'Prospecting', CloseDate: '2026-12-31T10:00:00Z', Amount: '1200.50', AccountId: accountId } },
    ]);
    expect(contact?.ok && opp?.ok).toBe(true);
    const [readContact] = await h.connector.readByIds('Contact', [contact?.ok ? contact.remoteId : ''], ['AccountId']);
    const [readOpp] = await h.connector.readByIds('Opportunity', [opp?.ok ? opp.remoteId : ''], ['AccountId', 'CloseDate', 'Amount']);
    expect(readContact?.fields['AccountId']).toBe(accountId);
    expect(readOpp?.fields).toMatchObject({ AccountId: accountId, CloseDate: '2026-12-31', Amount: 1200.5 });
  });

  it('a rep delete shows up as a deleted record in the next pull', async () => {
    const id = await h.createAsRep('Account', { Name: 'Doomed Ltd' });
    const first = await pullAll('Account', null);
    expect(first.records.map((r) => r.id)).toContain(id);
    await h.control('/_sandbox/delete', { object: 'Account', id });
    const next = await pullAll('Account', first.cursor);
    expect(next.records.find((r) => r.id === id)?.deleted).toBe(true);
  });

  it('a 10,000-record initial load goes through Bulk API 2.0, with each record matched back', async () => {
    const before = await h.stats();
    const items = Array.from({ length: 10_000 }, (_, i) => ({
      ref: `bulk-${i}`,
      upsertKey: { field: 'Crmhub_Id__c', value: `prf_bulk_${i}` },
      fields: { LastName: `Bulk${i}`, Email: i === 7 ? 'broken-email' : `bulk.${i}@example.com` },
    }));
    const outcomes = await h.connector.write('Contact', items);
    const after = await h.stats();
    expect(outcomes).toHaveLength(10_000);
    expect(new Set(outcomes.map((o) => o.ref)).size).toBe(10_000);
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed.map((o) => o.ref)).toEqual(['bulk-7']);
    const delta = (key: string): number => (after.calls[key] ?? 0) - (before.calls[key] ?? 0);
    const collectionCalls = Object.keys(after.calls).filter((k) => k.includes('/composite/sobjects')).reduce((n, k) => n + delta(k), 0);
    expect(collectionCalls).toBe(0);
    const jobCreates = Object.keys(after.calls).filter((k) => k.startsWith('POST') && k.includes('/jobs/ingest')).reduce((n, k) => n + delta(k), 0);
    expect(jobCreates).toBe(1);
    expect(after.totalCalls - before.totalCalls).toBeLessThan(20);
  }, 60_000);

  it('authenticates by client credentials and gets a new token when the session expires', async () => {
    const h3 = await startHarness({}, { SALESFORCE_ACCESS_TOKEN: undefined, SALESFORCE_INSTANCE_URL: undefined });
    try {
      const first = await h3.connector.describe('Account');
      expect(first.fields.map((f) => f.name)).toContain('Crmhub_Id__c');
      await h3.control('/_sandbox/config', { expireTokens: true });
      const records = await h3.connector.readByIds('Account', ['001000000000001AAA'], ['Name']);
      expect(records).toEqual([]);
      const stats = await h3.stats();
      const tokenCalls = Object.entries(stats.calls).filter(([k]) => k.includes('/services/oauth2/token')).reduce((n, [, v]) => n + v, 0);
      expect(tokenCalls).toBe(2);
    } finally {
      await h3.close();
    }
  });

  it('stops before the quota reserve and reports rate_limited', async () => {
    const h2 = await startHarness({ SALESFORCE_QUOTA_RESERVE: '0.5' });
    try {
      await h2.control('/_sandbox/config', { dailyQuota: 10 });
      let error: unknown = null;
      for (let i = 0; i < 10 && error === null; i++) {
        error = await h2.connector.readByIds('Contact', ['003000000000001AAA'], ['LastName']).then(
          () => null,
          (e: unknown) => e,
        );
      }
      expect(error).toMatchObject({ kind: 'rate_limited', code: 'QUOTA_RESERVE_REACHED' });
      const stats = await h2.stats();
      // Half the allocation is left for other integrations.
      expect(stats.totalCalls).toBeLessThanOrEqual(6);
      expect(h2.connector.quota().dailyLimit).toBe(10);
    } finally {
      await h2.close();
    }
  });
});
