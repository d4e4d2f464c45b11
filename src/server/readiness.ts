/**
 * Readiness checks behind `GET /readyz`. The app registers "store reachable"; other parts add
 * their own, e.g. the mapping loader reports invalid mapping files:
 *
 * ```ts
 * app.crmhub.readiness.register('mappings', () => ({ ok: issues.length === 0, detail: `${issues.length} invalid mapping files` }));
 * ```
 */

export interface ReadinessResult {
  ok: boolean;
  /** Short human-readable explanation (no secrets). */
  detail?: string;
}

export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;

export interface ReadinessReport {
  ok: boolean;
  checks: { name: string; ok: boolean; detail?: string }[];
}

export class ReadinessChecks {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** @param timeoutMs a check slower than this counts as failed. Default 2000 ms. */
  constructor(private readonly timeoutMs = 2000) {}

  /** Adds (or replaces) the check called `name`. */
  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  unregister(name: string): void {
    this.checks.delete(name);
  }

  /** Runs every check concurrently; a throwing or slow check is a failed one. */
  async run(): Promise<ReadinessReport> {
    const checks = await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const timeout = new Promise<ReadinessResult>((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${this.timeoutMs} ms` }), this.timeoutMs);
          });
          const result = await Promise.race([Promise.resolve().then(check), timeout]);
          return { name, ok: result.ok, ...(result.detail === undefined ? {} : { detail: result.detail }) };
        } catch (error) {
          return { name, ok: false, detail: error instanceof Error ? error.message : String(error) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return { ok: checks.every((c) => c.ok), checks };
  }
}
