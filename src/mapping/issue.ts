/**
 * Validation issues of mapping files. Expected failures in pure code are returned as issue lists,
 * never thrown. Every issue points at a YAML node: `file:line:col code message`.
 */

/** Closed list of issue codes (stable: tests and fixtures name them). */
export const ISSUE_CODES = [
  'E_YAML_SYNTAX',
  'E_UNKNOWN_KEY',
  'E_MISSING_KEY',
  'E_BAD_ENUM',
  'E_BAD_TRANSFORM',
  'E_TYPE',
  'E_INVALID',
  'E_FILE_PLACE',
  'E_MISSING_PROFILE',
  'E_DUPLICATE_REMOTE',
  'E_DUPLICATE_TARGET',
  'E_UNKNOWN_FIELD',
  'E_READ_ONLY',
  'E_NOT_UNIQUE',
  'E_TRANSFORM_TYPE',
  'E_ENUM_OPTION',
  'E_DUPLICATE_FILE',
  'E_READ_FILE',
  'E_REMOTE_SCHEMA',
  'W_UNKNOWN_FIELD',
  'W_UNKNOWN_OBJECT',
  'W_REQUIRED_UNMAPPED',
] as const;
export type IssueCode = (typeof ISSUE_CODES)[number];

export interface Issue {
  /** File path as given to the loader (relative paths stay relative). */
  file: string;
  /** 1-based line of the YAML node. */
  line: number;
  /** 1-based column of the YAML node. */
  col: number;
  code: IssueCode;
  /** Path inside the document, e.g. `fields[2].remot`; empty for the whole file. */
  path: string;
  message: string;
  /** Warnings (`W_…`) are printed but do not fail validation. */
  severity: 'error' | 'warning';
  /** The likely intended value ("did you mean lifecyclestage?"), when one is close. */
  suggestion?: string;
}

/** `fields[2].remote` from `['fields', 2, 'remote']`. */
export function pathToString(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** The one-line form admins and CI read: `file:line:col code message (did you mean x?)`. */
export function formatIssue(issue: Issue): string {
  const hint = issue.suggestion === undefined ? '' : ` (did you mean ${issue.suggestion}?)`;
  return `${issue.file}:${issue.line}:${issue.col} ${issue.code} ${issue.message}${hint}`;
}

/** Whether any issue fails validation (warnings do not). */
export function hasErrors(issues: readonly Issue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}
