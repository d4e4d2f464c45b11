/**
 * Core domain types shared by every part of crmhub. This module has no I/O and imports nothing of
 * ours (design.md §2).
 */

declare const brand: unique symbol;
/** A nominal type: a `T` that only code which checked it may produce. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Id of a unified profile (`prf_…`). Old ids of merged profiles still resolve (design.md §3). */
export type ProfileId = Brand<string, 'ProfileId'>;

/** `person` for people (contacts, leads, persons), `account` for companies (accounts, organizations). */
export type ProfileKind = 'person' | 'account';

/** Connector slugs used for folders, mapping files, queue names and identifier types. */
export type ConnectorSlug = string;

/** Any JSON value: traits, CRM field values and event properties are JSON. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Field values keyed by field name (profile paths or vendor field names, verbatim). */
export type FieldValues = Record<string, JsonValue>;

/** An identifier as it arrives: `email:ada@example.com`, `hubspot.contact:512`. */
export interface IdentifierInput {
  /** Registry type: `user_id`, `anonymous_id`, `email`, `phone`, `group_id`, `<slug>.<object>`. */
  type: string;
  /** Raw value; the registry's normaliser runs before any lookup. */
  value: string;
}

/** An identifier attached to a profile. */
export interface Identifier extends IdentifierInput {
  /** Who told us: `event`, `hubspot`, `salesforce`, `pipedrive`, `admin`, … */
  source: string;
}

/** One trait with its provenance: who set it and when it changed at that source. */
export interface Trait {
  value: JsonValue;
  source: string;
  /** ISO-8601 time the value changed at its source (not when we stored it). */
  changedAt: string;
}

/** The profile as the outside contract shows it (design.md §6, "Profile JSON"). */
export interface Profile {
  id: ProfileId;
  kind: ProfileKind;
  identifiers: Identifier[];
  traits: Record<string, Trait>;
  /** Ids of profiles merged into this one, which still resolve to it. */
  mergedFrom: ProfileId[];
  createdAt: string;
  updatedAt: string;
}

/** Parses `TYPE:VALUE`; the value may itself contain colons. Returns null when there is no colon. */
export function parseIdentifierArg(arg: string): IdentifierInput | null {
  const at = arg.indexOf(':');
  if (at <= 0 || at === arg.length - 1) return null;
  return { type: arg.slice(0, at), value: arg.slice(at + 1) };
}
