import type { Migration } from './migration.ts';

/**
 * What the outbox worker is about to send (issue 5, convergence under crashes). A worker that dies
 * after the CRM took a write but before the shadow recorded it leaves the CRM holding our value with
 * a fresh modified time; the next read would take that echo for a newer rep edit and, under
 * `latest_wins`, let it beat a later real edit elsewhere. The worker now stores the values on the
 * rows before the call (`sent_fields`, JSON text of remote field → value); the inbound path treats a
 * remote value equal to a still-open row's sent value as our own write, not as a change at the CRM.
 */
const statements = [`ALTER TABLE outbox ADD COLUMN sent_fields TEXT NULL`];

export const migration0003: Migration = {
  version: 3,
  name: 'outbox: values sent in the open attempt',
  sqlite: statements,
  postgres: statements,
};
