/**
 * Delivers a sandbox's webhooks the way the real CRMs do: in batches, asynchronously after the
 * change, retried with growing delays until the receiver answers 2xx (HubSpot retries up to 10
 * times over ~24 h; Salesforce Outbound Messages until acknowledged; Pipedrive on non-2xx). The
 * sandbox supplies `send`, which formats, signs and posts one batch and says whether it was
 * accepted. The retry schedule is compressed by default so tests and demos see retries in seconds.
 */

export interface WebhookDispatcherOptions<E> {
  /** Posts one batch; resolves true when the receiver acknowledged it. Must not throw. */
  send: (batch: E[], attempt: number) => Promise<boolean>;
  /** Events per delivery (HubSpot up to 100, Salesforce up to 100 notifications, Pipedrive 1). */
  maxBatch: number;
  /** How long events gather before a batch goes out, ms. Default 20. */
  lingerMs?: number;
  /** Delay before retry n (1-based), ms. Default 200·2ⁿ⁻¹, capped at 5 s. */
  retryDelayMs?: (attempt: number) => number;
  /** Attempts per batch before it is dropped (recorded in `stats.dropped`). Default 10. */
  maxAttempts?: number;
}

export interface WebhookDispatcherStats {
  queued: number;
  delivered: number;
  attempts: number;
  failedAttempts: number;
  dropped: number;
}

export class WebhookDispatcher<E> {
  readonly stats: WebhookDispatcherStats = { queued: 0, delivered: 0, attempts: 0, failedAttempts: 0, dropped: 0 };
  private pending: E[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly lingerMs: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: (attempt: number) => number;

  constructor(private readonly options: WebhookDispatcherOptions<E>) {
    this.lingerMs = options.lingerMs ?? 20;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.retryDelayMs = options.retryDelayMs ?? ((n) => Math.min(5000, 200 * 2 ** (n - 1)));
  }

  enqueue(event: E): void {
    if (this.closed) return;
    this.pending.push(event);
    this.stats.queued++;
    if (this.pending.length >= this.options.maxBatch) this.flushNow();
    else this.timer ??= setTimeout(() => this.flushNow(), this.lingerMs);
  }

  /** Resolves when everything queued so far was delivered or dropped. */
  async drain(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.flushNow();
    while ((this.inflight.size > 0 || this.retryTimers.size > 0 || this.pending.length > 0) && Date.now() < deadline) {
      if (this.pending.length > 0) this.flushNow();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Drops what is queued and stops retries (sandbox reset). */
  clear(): void {
    this.pending = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }

  close(): void {
    this.closed = true;
    this.clear();
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.attempt(batch, 1);
    }
  }

  private attempt(batch: E[], attempt: number): void {
    const run = (async () => {
      this.stats.attempts++;
      let ok = false;
      try {
        ok = await this.options.send(batch, attempt);
      } catch {
        ok = false;
      }
      if (ok) {
        this.stats.delivered += batch.length;
        return;
      }
      this.stats.failedAttempts++;
      if (attempt >= this.maxAttempts || this.closed) {
        this.stats.dropped += batch.length;
        return;
      }
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.attempt(batch, attempt + 1);
      }, this.retryDelayMs(attempt));
      this.retryTimers.add(timer);
    })();
    this.inflight.add(run);
    void run.finally(() => this.inflight.delete(run));
  }
}
