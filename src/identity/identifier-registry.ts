import { type CountryCode, parsePhoneNumberFromString } from 'libphonenumber-js';
import type { Identifier, ProfileKind } from '../core/types.ts';
import { type IdentityIssue, identityIssue } from './identity-issue.ts';
import { toSalesforceId18 } from './salesforce-id.ts';

/** A normaliser's answer: the canonical value, or why the raw value is unusable. */
export type NormaliseResult = { ok: true; value: string } | { ok: false; reason: string };

/** One identifier type of the registry (design.md §5). */
export interface IdentifierTypeSpec {
  type: string;
  /** Most values of this type one profile may hold. */
  limit: number;
  /**
   * At the limit: `reject` keeps the profile as is (and two profiles whose values together exceed
   * the limit never merge automatically); `evict_oldest` drops the least recently seen value
   * (anonymous ids: devices and cookies come and go).
   */
  onLimit: 'reject' | 'evict_oldest';
  /** Higher wins: picks the survivor of a merge and the order identifiers are considered in. */
  priority: number;
  /**
   * A value identifies one profile, so a match joins the message to that profile. Non-unique types
   * (phone: shared lines, switchboards) are stored but never join; a match is only a suggestion.
   */
  unique: boolean;
  /** A login identity (user_id): the strongest evidence; a profile holding one is "known". */
  login: boolean;
  /** Profile kinds this type may identify. */
  kinds: readonly ProfileKind[];
  normalise(raw: string): NormaliseResult;
  /** Values (after normalisation, compared lower-cased) that are placeholders, never identities. */
  blocked: ReadonlySet<string>;
}

export interface IdentifierRegistryOptions {
  /** Region assumed for phone numbers written without a country code. Default `US`. */
  defaultRegion?: CountryCode;
  /** Extra blocked values for every type (added to the built-in list). */
  extraBlocked?: readonly string[];
}

/** An identifier after the registry accepted it. */
export interface NormalisedIdentifier {
  identifier: Identifier;
  spec: IdentifierTypeSpec;
}

/** Placeholder values seen in the wild in every kind of id field (compared lower-cased, trimmed). */
export const BLOCKED_VALUES: readonly string[] = [
  '',
  'null',
  'undefined',
  'anonymous',
  'anon',
  '0',
  '-1',
  'unknown',
  'none',
  'nil',
  'n/a',
  'na',
  'nan',
  'false',
  'true',
  '[object object]',
  '{}',
  '[]',
  'guest',
  'test',
  'test@test.com',
  'test@example.com',
  'email@example.com',
  'example@example.com',
  'noreply@example.com',
  'none@none.com',
  'no@email.com',
  'noemail@noemail.com',
];

/** `<slug>.<object>`: a CRM record id (hubspot.contact, salesforce.lead, pipedrive.person, …). */
const CRM_ID_TYPE = /^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$/;
const ACCOUNT_OBJECTS = new Set(['company', 'companies', 'account', 'accounts', 'organization', 'organizations', 'org']);
const PERSON_OBJECTS = new Set(['contact', 'contacts', 'lead', 'leads', 'person', 'persons', 'people', 'user', 'users']);
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** Longest identifier value accepted (characters); longer is junk or an attack. */
const MAX_VALUE_LENGTH = 512;

const trimmed = (raw: string): NormaliseResult => ({ ok: true, value: raw.trim() });

/**
 * The identifier registry: how each type is normalised, limited and ranked. Built-in types:
 *
 * | type | limit | at limit | priority | unique | login | kinds |
 * |---|---|---|---|---|---|---|
 * | user_id | 1 | reject | 100 | yes | yes | person |
 * | `<slug>.<object>` | 1 | reject | 90 | yes | no | by object (company/account/organization → account; contact/lead/person → person; else both) |
 * | email | 5 | reject | 80 | yes | no | person |
 * | group_id | 1 | reject | 70 | yes | no | account |
 * | phone | 3 | reject | 50 | no | no | person |
 * | anonymous_id | 100 | evict oldest | 10 | yes | no | person, account |
 *
 * Email limit 5: work, personal and a few aliases are normal; a profile that collects more is
 * usually a shared inbox or a bad merge, and refusing to grow it stops runaway merging through it.
 * Email normalisation is trim + lower-case only: plus-addressing and dots are real, distinct
 * mailboxes at most providers, so stripping them would join different people.
 */
export class IdentifierRegistry {
  private readonly specs = new Map<string, IdentifierTypeSpec>();
  private readonly blocked: ReadonlySet<string>;
  readonly defaultRegion: CountryCode;

  constructor(options: IdentifierRegistryOptions = {}) {
    this.defaultRegion = options.defaultRegion ?? 'US';
    this.blocked = new Set([...BLOCKED_VALUES, ...(options.extraBlocked ?? []).map((v) => v.trim().toLowerCase())]);
    const base = { blocked: this.blocked };
    this.register({ ...base, type: 'user_id', limit: 1, onLimit: 'reject', priority: 100, unique: true, login: true, kinds: ['person'], normalise: trimmed });
    this.register({ ...base, type: 'email', limit: 5, onLimit: 'reject', priority: 80, unique: true, login: false, kinds: ['person'], normalise: normaliseEmail });
    this.register({ ...base, type: 'group_id', limit: 1, onLimit: 'reject', priority: 70, unique: true, login: false, kinds: ['account'], normalise: trimmed });
    this.register({
      ...base,
      type: 'phone',
      limit: 3,
      onLimit: 'reject',
      priority: 50,
      unique: false,
      login: false,
      kinds: ['person'],
      normalise: (raw) => normalisePhone(raw, this.defaultRegion),
    });
    this.register({ ...base, type: 'anonymous_id', limit: 100, onLimit: 'evict_oldest', priority: 10, unique: true, login: false, kinds: ['person', 'account'], normalise: trimmed });
  }

  /** Adds or replaces a type. */
  register(spec: IdentifierTypeSpec): void {
    if (spec.limit < 1) throw new TypeError(`identifier type ${spec.type}: limit must be ≥ 1`);
    this.specs.set(spec.type, spec);
  }

  /** The spec of `type`; `<slug>.<object>` CRM id types are registered on first use. */
  get(type: string): IdentifierTypeSpec | undefined {
    const known = this.specs.get(type);
    if (known !== undefined || !CRM_ID_TYPE.test(type)) return known;
    const [slug = '', object = ''] = type.split('.');
    const kinds: ProfileKind[] = ACCOUNT_OBJECTS.has(object)
      ? ['account']
      : PERSON_OBJECTS.has(object)
        ? ['person']
        : ['person', 'account'];
    const spec: IdentifierTypeSpec = {
      type,
      limit: 1,
      onLimit: 'reject',
      priority: 90,
      unique: true,
      login: false,
      kinds,
      blocked: this.blocked,
      normalise: slug === 'salesforce' ? normaliseSalesforceId : trimmed,
    };
    this.specs.set(type, spec);
    return spec;
  }

  /** Every registered type (CRM id types appear once used). */
  types(): IdentifierTypeSpec[] {
    return [...this.specs.values()];
  }

  /**
   * Normalises one identifier. Unusable ones (unknown type, blocked, invalid) come back as an
   * issue; this never throws on input data.
   */
  normalise(input: Identifier): { ok: true; value: NormalisedIdentifier } | { ok: false; issue: IdentityIssue } {
    const spec = this.get(input.type);
    if (spec === undefined) {
      return { ok: false, issue: identityIssue('unknown_type', `unknown identifier type ${input.type}`, input.type) };
    }
    if (typeof input.value !== 'string' || input.value.length > MAX_VALUE_LENGTH) {
      return { ok: false, issue: identityIssue('invalid_value', `${input.type}: not a string of at most ${MAX_VALUE_LENGTH} characters`, input.type) };
    }
    if (spec.blocked.has(input.value.trim().toLowerCase())) {
      return { ok: false, issue: identityIssue('blocked_value', `${input.type}: placeholder value ignored`, input.type, input.value) };
    }
    const result = spec.normalise(input.value);
    if (!result.ok) {
      return { ok: false, issue: identityIssue('invalid_value', `${input.type}: ${result.reason}`, input.type, input.value) };
    }
    if (spec.blocked.has(result.value.toLowerCase())) {
      return { ok: false, issue: identityIssue('blocked_value', `${input.type}: placeholder value ignored`, input.type, result.value) };
    }
    return { ok: true, value: { identifier: { type: input.type, value: result.value, source: input.source }, spec } };
  }
}

export function normaliseEmail(raw: string): NormaliseResult {
  const value = raw.trim().toLowerCase();
  return EMAIL_SHAPE.test(value) ? { ok: true, value } : { ok: false, reason: 'not an email address' };
}

/** E.164 (`+14155550123`); numbers without a country code are read in `region`. */
export function normalisePhone(raw: string, region: CountryCode): NormaliseResult {
  const phone = parsePhoneNumberFromString(raw.trim(), region);
  if (phone === undefined || !phone.isValid()) return { ok: false, reason: 'not a valid phone number' };
  return { ok: true, value: phone.number };
}

function normaliseSalesforceId(raw: string): NormaliseResult {
  const id = toSalesforceId18(raw.trim());
  return id === null ? { ok: false, reason: 'not a 15- or 18-character Salesforce id' } : { ok: true, value: id };
}
