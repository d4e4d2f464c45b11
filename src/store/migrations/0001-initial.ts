import type { Migration } from './migration.ts';

/**
 * The data model of design.md §3. Times are ISO-8601 UTC strings (`toISOString()` form) in both
 * dialects, so that lexical order is time order and the two adapters compare times the same way.
 * JSON columns are TEXT holding JSON in both dialects: values round-trip byte-exact (a jsonb column
 * would reorder keys and make a JSON string indistinguishable from text on read).
 */
const tables = (t: { int: string }): string[] => [
  `CREATE TABLE profiles (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('person', 'account')),
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     merged_into TEXT NULL
   )`,
  `CREATE INDEX profiles_merged_into ON profiles (merged_into) WHERE merged_into IS NOT NULL`,
  `CREATE TABLE identifiers (
     type TEXT NOT NULL,
     value TEXT NOT NULL,
     profile_id TEXT NOT NULL,
     source TEXT NOT NULL,
     first_seen TEXT NOT NULL,
     last_seen TEXT NOT NULL,
     PRIMARY KEY (type, value)
   )`,
  `CREATE INDEX identifiers_profile ON identifiers (profile_id)`,
  `CREATE TABLE traits (
     profile_id TEXT NOT NULL,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     source TEXT NOT NULL,
     changed_at TEXT NOT NULL,
     version ${t.int} NOT NULL,
     PRIMARY KEY (profile_id, key)
   )`,
  `CREATE TABLE events (
     message_id TEXT PRIMARY KEY,
     profile_id TEXT NOT NULL,
     type TEXT NOT NULL,
     name TEXT NULL,
     properties TEXT NOT NULL,
     timestamp TEXT NOT NULL,
     received_at TEXT NOT NULL
   )`,
  `CREATE INDEX events_profile ON events (profile_id, timestamp)`,
  `CREATE TABLE merges (
     from_id TEXT NOT NULL,
     into_id TEXT NOT NULL,
     reason TEXT NOT NULL,
     "trigger" TEXT NOT NULL,
     at TEXT NOT NULL
   )`,
  `CREATE INDEX merges_into ON merges (into_id)`,
  `CREATE INDEX merges_from ON merges (from_id)`,
  `CREATE TABLE possible_duplicates (
     profile_a TEXT NOT NULL,
     profile_b TEXT NOT NULL,
     reason TEXT NOT NULL,
     at TEXT NOT NULL,
     PRIMARY KEY (profile_a, profile_b)
   )`,
  `CREATE TABLE remote_records (
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     remote_id TEXT NOT NULL,
     profile_id TEXT NOT NULL,
     shadow TEXT NOT NULL,
     remote_changed_at TEXT NULL,
     field_changed_at TEXT NOT NULL,
     synced_at TEXT NOT NULL,
     deleted ${t.int} NOT NULL DEFAULT 0,
     PRIMARY KEY (connector, object, remote_id)
   )`,
  `CREATE INDEX remote_records_profile ON remote_records (profile_id, connector, object)`,
  `CREATE TABLE outbox (
     id TEXT PRIMARY KEY,
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     profile_id TEXT NOT NULL,
     op TEXT NOT NULL,
     fields TEXT NOT NULL,
     status TEXT NOT NULL,
     attempts ${t.int} NOT NULL DEFAULT 0,
     next_at TEXT NOT NULL,
     lease_until TEXT NULL,
     lease_owner TEXT NULL,
     last_error TEXT NULL,
     created_at TEXT NOT NULL
   )`,
  `CREATE INDEX outbox_due ON outbox (status, next_at)`,
  `CREATE INDEX outbox_profile ON outbox (profile_id)`,
  `CREATE TABLE dead_letters (
     id TEXT PRIMARY KEY,
     outbox_id TEXT NOT NULL,
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     profile_id TEXT NOT NULL,
     op TEXT NOT NULL,
     fields TEXT NOT NULL,
     reason TEXT NOT NULL,
     error TEXT NOT NULL,
     attempts ${t.int} NOT NULL,
     created_at TEXT NOT NULL,
     replayed_at TEXT NULL
   )`,
  `CREATE INDEX dead_letters_profile ON dead_letters (profile_id)`,
  `CREATE INDEX dead_letters_created ON dead_letters (created_at)`,
  `CREATE TABLE cursors (
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     value TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (connector, object)
   )`,
  `CREATE TABLE sync_runs (
     id TEXT PRIMARY KEY,
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     direction TEXT NOT NULL,
     "trigger" TEXT NOT NULL,
     status TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT NULL,
     counts TEXT NOT NULL,
     mapping_version TEXT NULL,
     error TEXT NULL
   )`,
  `CREATE INDEX sync_runs_started ON sync_runs (started_at)`,
  `CREATE TABLE conflicts (
     id TEXT PRIMARY KEY,
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     profile_id TEXT NOT NULL,
     remote_id TEXT NULL,
     field TEXT NOT NULL,
     profile_value TEXT NOT NULL,
     remote_value TEXT NOT NULL,
     base_value TEXT NOT NULL,
     rule TEXT NOT NULL,
     resolution TEXT NOT NULL,
     at TEXT NOT NULL,
     resolved_at TEXT NULL
   )`,
  `CREATE INDEX conflicts_at ON conflicts (at)`,
  `CREATE INDEX conflicts_profile ON conflicts (profile_id)`,
  `CREATE TABLE webhook_receipts (
     source TEXT NOT NULL,
     delivery_id TEXT NOT NULL,
     received_at TEXT NOT NULL,
     PRIMARY KEY (source, delivery_id)
   )`,
  `CREATE TABLE mapping_versions (
     connector TEXT NOT NULL,
     object TEXT NOT NULL,
     hash TEXT NOT NULL,
     loaded_at TEXT NOT NULL,
     PRIMARY KEY (connector, object, hash)
   )`,
  `CREATE TABLE leases (
     name TEXT PRIMARY KEY,
     owner TEXT NOT NULL,
     lease_until TEXT NOT NULL
   )`,
];

export const migration0001: Migration = {
  version: 1,
  name: 'initial data model (design.md §3)',
  sqlite: tables({ int: 'INTEGER' }),
  postgres: tables({ int: 'INTEGER' }),
};
