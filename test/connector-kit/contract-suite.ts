/**
 * The connector contract suite (issue 5): every connector must pass it. A connector's test file
 * calls `describeConnectorContract('hubspot', async () => harness)`; the harness gives the
 * connector plus ways to act as a rep on the remote side and to build a valid webhook request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldValues } from '../../src/core/types.ts';
import type { Connector, RemoteRecord, WebhookRequest, WriteItem } from '../../src/connector-kit/connector.ts';
import { CrmhubError, ERROR_KINDS } from '../../src/connector-kit/errors.ts';

export interface ContractHarness {
  connector: Connector;
  /** The object the suite exercises (e.g. `contacts`, `Contact`, `persons`). */
  object: string;
  /** Valid fields for a new record; `n` makes unique values (e.g. the email). */
  validFields(n: number): FieldValues;
  /** Fields the CRM rejects for this one record (an invalid email, an unknown picklist value). */
  invalidFields(n: number): FieldValues;
  /** A native upsert key for record `n` (a unique field and its value); omit when the object has none. */
  upsertKey?(n: number): { field: string; value: string };
  /** A field the suite changes on updates, with a value for version `v`. */
  updateField(v: number): FieldValues;
  /** A rep creates (id undefined) or edits a record on the CRM side; resolves with the id. */
  repEdit(id: string | undefined, fields: FieldValues): Promise<string>;
  /** A correctly signed/authenticated webhook request announcing a change to record `id`. */
  buildWebhook(id: string): Promise<WebhookRequest>;
  /** Records created by the rep for paging (`count` at least 3); default uses `repEdit`. */
  seed?(count: number): Promise<string[]>;
  /** Page size the suite passes to `readChanges` to force several pages. Default 2. */
  pageSize?: number;
  cleanup?(): Promise<void>;
  /**
   * Tampers with the webhook's credential, for CRMs that do not sign bodies (Salesforce Outbound
   * Messages carry only a URL token and the org id). Default: flip one byte of the body.
   */
  tamper?(request: WebhookRequest): WebhookRequest;
}

function tamper(request: WebhookRequest): WebhookRequest {
  const body = Buffer.from(request.rawBody);
  // Flip one byte in the middle of the body: any signature over raw bytes must now fail.
  const at = Math.floor(body.length / 2);
  body[at] = (body[at] ?? 0) ^ 0x01;
  return { ...request, rawBody: body };
}

async function readAll(connector: Connector, object: string, cursor: string | null, pageSize: number): Promise<{ records: RemoteRecord[]; cursor: string | null; pages: number }> {
  const records: RemoteRecord[] = [];
  let pages = 0;
  for (;;) {
    const page = await connector.readChanges(object, cursor, { pageSize });
    pages++;
    records.push(...page.records);
    if (page.nextCursor !== null) cursor = page.nextCursor;
    if (page.done) return { records, cursor, pages };
    if (pages > 1000) throw new TypeError('readChanges never reported done');
  }
}

export function describeConnectorContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`connector contract: ${name}`, () => {
    let h: ContractHarness;
    let serial = Math.floor(Math.random() * 1e6);
    const next = (): number => ++serial;

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h.cleanup?.();
    });

    it('declares sane limits, objects and batch sizes', () => {
      const d = h.connector.declaration;
      expect(d.slug).toMatch(/^[a-z][a-z0-9_-]*$/);
      expect(d.limits.requestsPerWindow).toBeGreaterThan(0);
      expect(d.limits.windowMs).toBeGreaterThan(0);
      expect(d.limits.maxConcurrent).toBeGreaterThan(0);
      expect(d.objects.length).toBeGreaterThan(0);
      const names = new Set<string>();
      for (const o of d.objects) {
        expect(names.has(o.name), `object ${o.name} declared twice`).toBe(false);
        names.add(o.name);
        expect(Number.isInteger(o.maxBatchSize) && o.maxBatchSize >= 1).toBe(true);
        expect(o.identifierType).toBe(`${d.slug}.${o.identifierType.split('.')[1] ?? ''}`);
        expect(o.modifiedField.length).toBeGreaterThan(0);
      }
      expect(names.has(h.object)).toBe(true);
    });

    it('pages through changes until done with a stable cursor', async () => {
      const pageSize = h.pageSize ?? 2;
      const seeded = h.seed ? await h.seed(5) : await Promise.all([1, 2, 3, 4, 5].map(() => h.repEdit(undefined, h.validFields(next()))));
      const first = await readAll(h.connector, h.object, null, pageSize);
      const ids = new Set(first.records.map((r) => r.id));
      for (const id of seeded) expect(ids.has(id), `seeded ${id} read`).toBe(true);
      expect(first.pages).toBeGreaterThan(1);
      for (const r of first.records) {
        expect(Number.isNaN(Date.parse(r.modifiedAt))).toBe(false);
        expect(r.object).toBe(h.object);
      }
      // Nothing changed: reading from the saved cursor yields none of the seeded records again.
      const again = await readAll(h.connector, h.object, first.cursor, pageSize);
      const stale = again.records.filter((r) => seeded.includes(r.id));
      expect(stale).toEqual([]);
      // A change after the cursor shows up from it.
      const target = seeded[0]!;
      await h.repEdit(target, h.updateField(next()));
      const after = await readAll(h.connector, h.object, again.cursor ?? first.cursor, pageSize);
      expect(after.records.map((r) => r.id)).toContain(target);
    });

    it('writes a batch with exactly one outcome per item; one bad record fails alone', async () => {
      const max = h.connector.declaration.objects.find((o) => o.name === h.object)!.maxBatchSize;
      const n = Math.min(max, 3);
      const items: WriteItem[] = [];
      for (let i = 0; i < n; i++) {
        const k = next();
        items.push({ ref: `good-${k}`, fields: h.validFields(k), ...(h.upsertKey ? { upsertKey: h.upsertKey(k) } : {}) });
      }
      const bad = next();
      const badItem: WriteItem = { ref: `bad-${bad}`, fields: h.invalidFields(bad), ...(h.upsertKey ? { upsertKey: h.upsertKey(bad) } : {}) };
      const outcomes = [];
      if (max >= 2) {
        outcomes.push(...(await h.connector.write(h.object, [...items.slice(0, max - 1), badItem])));
        outcomes.push(...(await h.connector.write(h.object, items.slice(max - 1))));
      } else {
        for (const item of [...items, badItem]) outcomes.push(...(await h.connector.write(h.object, [item])));
      }
      expect(outcomes.map((o) => o.ref).sort()).toEqual([...items, badItem].map((i) => i.ref).sort());
      for (const o of outcomes) {
        if (o.ref === badItem.ref) {
          expect(o.ok).toBe(false);
          if (!o.ok) {
            expect(o.error).toBeInstanceOf(CrmhubError);
            expect(o.error.kind).toBe('payload');
          }
        } else {
          expect(o.ok, `item ${o.ref}`).toBe(true);
          if (o.ok) expect(o.remoteId.length).toBeGreaterThan(0);
        }
      }
    });

    it('upserts by key without ever creating duplicates when repeated', async () => {
      if (!h.upsertKey) {
        expect(h.connector.declaration.objects.find((o) => o.name === h.object)!.upsertKeys).toEqual([]);
        return;
      }
      const k = next();
      const item: WriteItem = { ref: `u-${k}`, fields: h.validFields(k), upsertKey: h.upsertKey(k) };
      const first = await h.connector.write(h.object, [item]);
      const second = await h.connector.write(h.object, [{ ...item, fields: { ...h.validFields(k), ...h.updateField(k) } }]);
      const [a] = first;
      const [b] = second;
      expect(a?.ok && b?.ok).toBe(true);
      if (a?.ok && b?.ok) {
        expect(b.remoteId).toBe(a.remoteId);
        expect(b.created).toBe(false);
        // Reading by id returns exactly the one record with the update applied.
        const [read] = await h.connector.readByIds(h.object, [a.remoteId]);
        expect(read?.id).toBe(a.remoteId);
        for (const [field, value] of Object.entries(h.updateField(k))) expect(read?.fields[field]).toEqual(value);
      }
    });

    it('reads records by id and leaves unknown ids out', async () => {
      const id = await h.repEdit(undefined, h.validFields(next()));
      const records = await h.connector.readByIds(h.object, [id]);
      expect(records.map((r) => r.id)).toEqual([id]);
      expect(Object.keys(records[0]!.fields).length).toBeGreaterThan(0);
    });

    it('verifies webhooks and rejects tampered input with kind auth', async () => {
      const id = await h.repEdit(undefined, h.validFields(next()));
      const request = await h.buildWebhook(id);
      const result = await h.connector.handleWebhook(request);
      expect(result.changes.length).toBeGreaterThan(0);
      for (const c of result.changes) {
        expect(c.deliveryId.length).toBeGreaterThan(0);
        expect(Number.isNaN(Date.parse(c.changedAt))).toBe(false);
      }
      const error = await h.connector.handleWebhook((h.tamper ?? tamper)(request)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CrmhubError);
      expect((error as CrmhubError).kind).toBe('auth');
    });

    it('describes the object with fields', async () => {
      const schema = await h.connector.describe(h.object);
      expect(schema.object).toBe(h.object);
      expect(schema.fields.length).toBeGreaterThan(0);
      for (const f of schema.fields) expect(f.name.length).toBeGreaterThan(0);
    });

    it('fails with CrmhubErrors from the closed taxonomy', async () => {
      const error = await h.connector.readByIds('no_such_object_x', ['1']).then(
        () => null,
        (e: unknown) => e,
      );
      // Unknown objects either read nothing or fail with a CrmhubError — never a bare Error.
      if (error !== null) {
        expect(error).toBeInstanceOf(CrmhubError);
        expect(ERROR_KINDS).toContain((error as CrmhubError).kind);
      }
      const bad = await h.connector.handleWebhook({ method: 'POST', url: 'http://127.0.0.1/webhooks/x', headers: {}, rawBody: Buffer.from('{'), now: Date.now() }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(bad).toBeInstanceOf(CrmhubError);
      expect(['auth', 'payload']).toContain((bad as CrmhubError).kind);
    });
  });
}
