import type { JsonObject, ProfileId, ProfileKind } from '../core/types.ts';
import type {
  ConflictRow,
  CursorRow,
  DeadLetterRow,
  EventRow,
  IdentifierRow,
  MergeRow,
  OutboxRow,
  OutboxStatus,
  PossibleDuplicateRow,
  ProfileRow,
  RemoteRecordRow,
  SyncRunRow,
  TraitRow,
  WebhookReceiptRow,
} from './port.ts';
import type { SqlRow } from './sql-executor.ts';
import { int, json, text, textOrNull } from './sql-values.ts';

// Column values were written by this module with the port's types, so the narrowing casts below
// (kind, status, direction, branded ids) restate what was stored.

export const toProfile = (r: SqlRow): ProfileRow => ({
  id: text(r, 'id') as ProfileId,
  kind: text(r, 'kind') as ProfileKind,
  createdAt: text(r, 'created_at'),
  updatedAt: text(r, 'updated_at'),
  mergedInto: textOrNull(r, 'merged_into') as ProfileId | null,
});

export const toIdentifier = (r: SqlRow): IdentifierRow => ({
  type: text(r, 'type'),
  value: text(r, 'value'),
  profileId: text(r, 'profile_id') as ProfileId,
  source: text(r, 'source'),
  firstSeen: text(r, 'first_seen'),
  lastSeen: text(r, 'last_seen'),
});

export const toTrait = (r: SqlRow): TraitRow => ({
  profileId: text(r, 'profile_id') as ProfileId,
  key: text(r, 'key'),
  value: json(r, 'value'),
  source: text(r, 'source'),
  changedAt: text(r, 'changed_at'),
  version: int(r, 'version'),
});

export const toEvent = (r: SqlRow): EventRow => ({
  messageId: text(r, 'message_id'),
  profileId: text(r, 'profile_id') as ProfileId,
  type: text(r, 'type'),
  name: textOrNull(r, 'name'),
  properties: json<JsonObject>(r, 'properties'),
  timestamp: text(r, 'timestamp'),
  receivedAt: text(r, 'received_at'),
});

export const toMerge = (r: SqlRow): MergeRow => ({
  fromId: text(r, 'from_id') as ProfileId,
  intoId: text(r, 'into_id') as ProfileId,
  reason: text(r, 'reason'),
  trigger: text(r, 'trigger'),
  at: text(r, 'at'),
});

export const toPossibleDuplicate = (r: SqlRow): PossibleDuplicateRow => ({
  profileA: text(r, 'profile_a') as ProfileId,
  profileB: text(r, 'profile_b') as ProfileId,
  reason: text(r, 'reason'),
  at: text(r, 'at'),
});

export const toRemoteRecord = (r: SqlRow): RemoteRecordRow => ({
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  remoteId: text(r, 'remote_id'),
  profileId: text(r, 'profile_id') as ProfileId,
  shadow: json<JsonObject>(r, 'shadow'),
  remoteChangedAt: textOrNull(r, 'remote_changed_at'),
  fieldChangedAt: json<Record<string, string>>(r, 'field_changed_at'),
  syncedAt: text(r, 'synced_at'),
  deleted: int(r, 'deleted') !== 0,
});

export const toOutbox = (r: SqlRow): OutboxRow => ({
  id: text(r, 'id'),
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  profileId: text(r, 'profile_id') as ProfileId,
  op: text(r, 'op'),
  fields: json<JsonObject>(r, 'fields'),
  status: text(r, 'status') as OutboxStatus,
  attempts: int(r, 'attempts'),
  nextAt: text(r, 'next_at'),
  leaseUntil: textOrNull(r, 'lease_until'),
  leaseOwner: textOrNull(r, 'lease_owner'),
  lastError: textOrNull(r, 'last_error'),
  createdAt: text(r, 'created_at'),
});

export const toDeadLetter = (r: SqlRow): DeadLetterRow => ({
  id: text(r, 'id'),
  outboxId: text(r, 'outbox_id'),
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  profileId: text(r, 'profile_id') as ProfileId,
  op: text(r, 'op'),
  fields: json<JsonObject>(r, 'fields'),
  reason: text(r, 'reason'),
  error: text(r, 'error'),
  attempts: int(r, 'attempts'),
  createdAt: text(r, 'created_at'),
  replayedAt: textOrNull(r, 'replayed_at'),
});

export const toCursor = (r: SqlRow): CursorRow => ({
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  value: text(r, 'value'),
  updatedAt: text(r, 'updated_at'),
});

export const toSyncRun = (r: SqlRow): SyncRunRow => ({
  id: text(r, 'id'),
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  direction: text(r, 'direction') as SyncRunRow['direction'],
  trigger: text(r, 'trigger'),
  status: text(r, 'status') as SyncRunRow['status'],
  startedAt: text(r, 'started_at'),
  finishedAt: textOrNull(r, 'finished_at'),
  counts: json<Record<string, number>>(r, 'counts'),
  mappingVersion: textOrNull(r, 'mapping_version'),
  error: textOrNull(r, 'error'),
});

export const toConflict = (r: SqlRow): ConflictRow => ({
  id: text(r, 'id'),
  connector: text(r, 'connector'),
  object: text(r, 'object'),
  profileId: text(r, 'profile_id') as ProfileId,
  remoteId: textOrNull(r, 'remote_id'),
  field: text(r, 'field'),
  profileValue: json(r, 'profile_value'),
  remoteValue: json(r, 'remote_value'),
  baseValue: json(r, 'base_value'),
  rule: text(r, 'rule'),
  resolution: text(r, 'resolution'),
  at: text(r, 'at'),
  resolvedAt: textOrNull(r, 'resolved_at'),
});

export const toWebhookReceipt = (r: SqlRow): WebhookReceiptRow => ({
  source: text(r, 'source'),
  deliveryId: text(r, 'delivery_id'),
  receivedAt: text(r, 'received_at'),
  changedAt: textOrNull(r, 'changed_at'),
  payload: textOrNull(r, 'payload') === null ? null : json<JsonObject>(r, 'payload'),
  processedAt: textOrNull(r, 'processed_at'),
  leaseOwner: textOrNull(r, 'lease_owner'),
  leaseUntil: textOrNull(r, 'lease_until'),
  attempts: int(r, 'attempts'),
  lastError: textOrNull(r, 'last_error'),
});
