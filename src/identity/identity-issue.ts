/**
 * Why an identifier was not used or a merge did not happen. Expected situations in identity
 * resolution are reported, never thrown: the event is still stored on the resolved profile.
 */
export type IdentityIssueCode =
  | 'blocked_value' // a placeholder such as `null`, `anonymous`, `test@test.com`: ignored
  | 'invalid_value' // fails the type's normaliser (bad email, unparseable phone): ignored
  | 'unknown_type' // not in the registry and not `<slug>.<object>`: ignored
  | 'kind_mismatch' // e.g. a group_id on a person, or an identifier held by an account profile
  | 'limit_reached' // the profile already holds `limit` values of this type: not attached
  | 'merge_refused' // two profiles hold different values of a limited type: kept apart, possible duplicate
  | 'merge_cap' // the survivor has absorbed the maximum number of profiles: kept apart, possible duplicate
  | 'identifier_cap' // the profile holds the maximum number of identifiers: not attached / not merged
  | 'not_joining' // a non-unique type (phone) matched another profile: only suggested as a duplicate
  | 'no_identifiers'; // nothing usable: a fresh profile holds the event

export interface IdentityIssue {
  code: IdentityIssueCode;
  /** Identifier type concerned, when there is one. */
  type?: string;
  /** Normalised value (or the raw value for invalid ones), truncated to 200 characters. */
  value?: string;
  message: string;
}

/** Builds an issue, truncating the value (it may be attacker-supplied). */
export function identityIssue(code: IdentityIssueCode, message: string, type?: string, value?: string): IdentityIssue {
  return {
    code,
    message,
    ...(type === undefined ? {} : { type }),
    ...(value === undefined ? {} : { value: value.slice(0, 200) }),
  };
}
