/**
 * The closed error taxonomy of design.md §7. The kind alone decides what happens next: retry,
 * pause the connection, dead-letter one record, or park for a person. Connectors never throw a
 * bare `Error`; each connector's `errors.ts` maps its CRM's statuses and bodies into this.
 */

export const ERROR_KINDS = [
  'config',
  'auth',
  'payload',
  'rate_limited',
  'transient',
  'conflict',
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Context carried by an error. Never put secrets here: it is logged and shown to admins. */
export interface ErrorContext {
  connector?: string;
  connection?: string;
  object?: string;
  record?: string;
  field?: string;
  status?: number;
  [key: string]: string | number | boolean | undefined;
}

export interface CrmhubErrorOptions {
  /** Stable machine-readable code, e.g. `HUBSPOT_VALIDATION_ERROR`, `REQUEST_LIMIT_EXCEEDED`. */
  code: string;
  cause?: unknown;
  context?: ErrorContext;
  /** For `rate_limited` and `transient`: how long to wait before the next attempt, in ms. */
  retryAfterMs?: number;
}

export class CrmhubError extends Error {
  override readonly name = 'CrmhubError';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly context: ErrorContext;
  readonly retryAfterMs: number | undefined;

  constructor(kind: ErrorKind, message: string, options: CrmhubErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.code = options.code;
    this.context = options.context ?? {};
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether the engine should try again later (the attempt may or may not count; see `countsAsAttempt`). */
  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'transient';
  }

  /** A rate-limited attempt is not counted towards the retry budget (design.md §7). */
  get countsAsAttempt(): boolean {
    return this.kind !== 'rate_limited';
  }

  toJSON(): { kind: ErrorKind; code: string; message: string; context: ErrorContext; retryAfterMs?: number } {
    return {
      kind: this.kind,
      code: this.code,
      message: this.message,
      context: this.context,
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }
}

export function isCrmhubError(value: unknown): value is CrmhubError {
  return value instanceof CrmhubError;
}

/** Wraps anything thrown into the taxonomy; unknown failures are `internal` (a bug: fail loudly). */
export function toCrmhubError(value: unknown, context: ErrorContext = {}): CrmhubError {
  if (value instanceof CrmhubError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new CrmhubError('internal', message, { code: 'INTERNAL', cause: value, context });
}
