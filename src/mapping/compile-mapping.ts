/**
 * The compiled form of a mapping file the sync engine uses: defaults applied to every field, the
 * file's hash for versioning. Pipedrive custom fields keep the NAME the admin wrote; a resolver
 * supplied at run time (`resolverFromSchema`) maps it to the account's 40-character key.
 */
import { createHash } from 'node:crypto';
import type { ObjectSchema } from '../connector-kit/connector.ts';
import type { ConflictRule, Direction, MappingDoc, TransformSpec } from './mapping-schema.ts';
import { findRemoteField } from './validate-mapping.ts';

export interface CompiledField {
  /** Position in the file's `fields` list. */
  index: number;
  /** Profile trait key; undefined for a field fed only by a `static` transform. */
  profile: string | undefined;
  /** Remote field as written in the file (for Pipedrive custom fields, the name). */
  remote: string;
  direction: Direction;
  conflict: ConflictRule;
  onEmpty: 'ignore' | 'clear';
  tieBreaker: 'profile' | 'remote';
  required: boolean;
  toRemote: readonly TransformSpec[];
  toProfile: readonly TransformSpec[];
}

export interface CompiledMapping {
  connector: string;
  object: string;
  profileKind: 'person' | 'account';
  identity: {
    match: readonly { remote: string; identifier: string }[];
    /** Inbound-only join keys as written; absent = the engine's default (email on person mappings). */
    join?: readonly { remote: string; identifier: string }[];
    onNoMatch: 'create' | 'skip';
    onMultiple: 'skip' | 'review' | 'first';
  };
  fields: readonly CompiledField[];
  /** sha256 (hex) of the file's bytes; identifies the mapping version a sync run used. */
  hash: string;
  /** Source file, when loaded from one. */
  file?: string;
}

/** Maps a remote field as written in a mapping file to the vendor key used on the wire. */
export type RemoteKeyResolver = (remote: string) => string;

/** The identity resolver: vendor keys are used verbatim (HubSpot, Salesforce). */
export const verbatimKey: RemoteKeyResolver = (remote) => remote;

/** sha256 hex of a file's bytes. */
export function mappingHash(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Applies the file's defaults to every field. */
export function compileMapping(
  doc: MappingDoc,
  source: { hash?: string; file?: string } = {},
): CompiledMapping {
  const d = doc.defaults;
  return {
    connector: doc.connector,
    object: doc.object,
    profileKind: doc.profile_kind,
    identity: {
      match: doc.identity.match.map((m) => ({ remote: m.remote, identifier: m.identifier })),
      ...(doc.identity.join !== undefined ? { join: doc.identity.join.map((m) => ({ remote: m.remote, identifier: m.identifier })) } : {}),
      onNoMatch: doc.identity.on_no_match,
      onMultiple: doc.identity.on_multiple,
    },
    fields: doc.fields.map((f, index) => ({
      index,
      profile: f.profile,
      remote: f.remote,
      direction: f.direction ?? d.direction,
      conflict: f.conflict ?? d.conflict,
      onEmpty: f.on_empty ?? d.on_empty,
      tieBreaker: d.tie_breaker,
      required: f.required ?? false,
      toRemote: f.transforms?.to_remote ?? [],
      toProfile: f.transforms?.to_profile ?? [],
    })),
    hash: source.hash ?? mappingHash(JSON.stringify(doc)),
    ...(source.file === undefined ? {} : { file: source.file }),
  };
}

/**
 * A resolver from a live object schema: a name that is not a vendor key but is the label of a
 * custom field (Pipedrive) resolves to that field's key; anything else stays as written.
 */
export function resolverFromSchema(schema: ObjectSchema): RemoteKeyResolver {
  return (remote) => findRemoteField(schema, remote)?.name ?? remote;
}
