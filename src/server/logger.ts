/**
 * Structured logs (pino) that never print secrets (design.md §6). Two layers:
 *
 * 1. Key-based redaction (`redact` paths): authorization and cookie headers, and any field named
 *    like a credential (`token`, `password`, `clientSecret`, `writeKey`, `accessToken`, …) up to two
 *    levels deep.
 * 2. Value-based scrubbing of every finished log line (`hooks.streamWrite`): each configured secret
 *    value (from {@link CrmhubConfig.secrets}), `?token=`-style query values, and the credentials of
 *    `Basic`/`Bearer` authorization strings are replaced wherever they appear — also inside error
 *    messages and stack traces, where key-based redaction cannot see.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export const REDACTED = '[REDACTED]';

/** Field names treated as credentials wherever they appear (case variants listed explicitly: pino paths are exact). */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'cookie',
  'set-cookie',
  'x-hubspot-signature',
  'x-hubspot-signature-v3',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'apiToken',
  'api_token',
  'password',
  'clientSecret',
  'client_secret',
  'writeKey',
  'write_key',
  'adminToken',
  'webhookToken',
  'webhookPassword',
  'secret',
];

const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/** Query parameters whose values are credentials (Salesforce webhooks use `?token=`). */
const SECRET_QUERY = /([?&](?:token|access_token|api_token|apikey|api_key|key|secret|password|writeKey|write_key)=)[^&#\s"]*/gi;
/** `Basic …` / `Bearer …` credentials inside any text. */
const AUTH_SCHEME = /\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{4,}/g;

/** Replaces secrets in `text`: the given values, `?token=` query values and Basic/Bearer credentials. */
export function scrubSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(SECRET_QUERY, `$1${REDACTED}`).replace(AUTH_SCHEME, `$1 ${REDACTED}`);
  for (const secret of secrets) {
    // Very short values would shred ordinary words; config secrets are long in practice.
    if (secret.length < 4) continue;
    out = out.split(secret).join(REDACTED);
    const jsonEscaped = JSON.stringify(secret).slice(1, -1);
    if (jsonEscaped !== secret) out = out.split(jsonEscaped).join(REDACTED);
  }
  return out;
}

/** Strips credential query values from a URL (for request logs). */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, `$1${REDACTED}`);
}

export interface LoggerOptions {
  /** pino level; default `info`. */
  level?: string;
  /** Secret values to scrub from every line (normally `config.secrets`). */
  secrets?: readonly string[];
  /** Where lines go; default stdout. Tests pass a collecting stream. */
  destination?: DestinationStream;
}

/** Creates crmhub's root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const secrets = [...(options.secrets ?? [])].sort((a, b) => b.length - a.length);
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'crmhub' },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url ?? ''),
          ip: req.ip,
        }),
        err: pino.stdSerializers.err,
      },
      hooks: { streamWrite: (line: string) => scrubSecrets(line, secrets) },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
