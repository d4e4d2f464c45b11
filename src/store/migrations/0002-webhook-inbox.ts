import type { Migration } from './migration.ts';

/**
 * The durable webhook inbox (issue 5). A receipt used to hold only the delivery id (for dedupe) and
 * the change itself lived in memory until processed: a process that died after answering 2xx lost
 * it, and the CRM would not resend (we acknowledged it; a resend would be deduped anyway). Now the
 * parsed change is stored with its receipt in the transaction that answers, and the receipt is
 * marked processed after the change was applied; receipts left unprocessed are picked up again
 * (oldest change first) by whoever holds no lease on them.
 *
 * - `payload`: the parsed change as JSON text (NULL for receipts with nothing left to do).
 * - `changed_at`: the change time at the CRM, the order pending receipts are applied in.
 * - `processed_at`: when the change was applied (or given up); NULL = still to do.
 * - `lease_owner`, `lease_until`: the engine processing it; another takes over after `lease_until`.
 * - `attempts`, `last_error`: failed processing attempts and why.
 *
 * Receipts stored before this migration were processed in memory at the time (or are lost for
 * good): they are marked processed, so nothing waits on a payload that was never stored.
 */
const statements = (t: { int: string }): string[] => [
  `ALTER TABLE webhook_receipts ADD COLUMN payload TEXT NULL`,
  `ALTER TABLE webhook_receipts ADD COLUMN changed_at TEXT NULL`,
  `ALTER TABLE webhook_receipts ADD COLUMN processed_at TEXT NULL`,
  `ALTER TABLE webhook_receipts ADD COLUMN lease_owner TEXT NULL`,
  `ALTER TABLE webhook_receipts ADD COLUMN lease_until TEXT NULL`,
  `ALTER TABLE webhook_receipts ADD COLUMN attempts ${t.int} NOT NULL DEFAULT 0`,
  `ALTER TABLE webhook_receipts ADD COLUMN last_error TEXT NULL`,
  `UPDATE webhook_receipts SET processed_at = received_at WHERE processed_at IS NULL`,
  `CREATE INDEX webhook_receipts_pending ON webhook_receipts (changed_at, delivery_id) WHERE processed_at IS NULL`,
  `CREATE INDEX webhook_receipts_processed ON webhook_receipts (processed_at) WHERE processed_at IS NOT NULL`,
];

export const migration0002: Migration = {
  version: 2,
  name: 'durable webhook inbox: payload, change time, processed/lease columns',
  sqlite: statements({ int: 'INTEGER' }),
  postgres: statements({ int: 'INTEGER' }),
};
