/**
 * Retries a connector's READS that the CRM rate-limited (429, HubSpot's secondly search limit).
 * The engine re-queues rate-limited writes itself (outbox), but a pull page or a `readByIds` that
 * meets a 429 would fail the whole object's run; reads are idempotent, so waiting the CRM's
 * `Retry-After` and asking again is always safe. Writes, webhooks and schema calls pass through.
 */
import type { ChangePage, Connector, ConnectorDeclaration, ObjectSchema, QuotaState, ReadOptions, RemoteRecord, WebhookRequest, WebhookResult, WriteItem, WriteOutcome } from '../connector-kit/connector.ts';
import { isCrmhubError } from '../connector-kit/errors.ts';

export interface ReadRetryOptions {
  /** Attempts per read, first included. Default 6. */
  maxAttempts?: number;
  /** Wait when the CRM gives no retry-after, ms. Default 1 000. */
  defaultWaitMs?: number;
  /** Longest single wait, ms. Default 30 000. */
  maxWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ReadRetryConnector implements Connector {
  readonly declaration: ConnectorDeclaration;
  /** Reads retried so far (for logs and the demo). */
  retries = 0;

  constructor(
    readonly inner: Connector,
    private readonly options: ReadRetryOptions = {},
  ) {
    this.declaration = inner.declaration;
  }

  private async retry<T>(read: () => Promise<T>): Promise<T> {
    const max = this.options.maxAttempts ?? 6;
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (error) {
        if (!isCrmhubError(error) || error.kind !== 'rate_limited' || attempt >= max) throw error;
        this.retries++;
        const ms = Math.min(this.options.maxWaitMs ?? 30_000, Math.max(50, error.retryAfterMs ?? this.options.defaultWaitMs ?? 1_000));
        await (this.options.sleep ?? wait)(ms);
      }
    }
  }

  readChanges(object: string, cursor: string | null, options?: ReadOptions): Promise<ChangePage> {
    return this.retry(() => this.inner.readChanges(object, cursor, options));
  }

  readByIds(object: string, ids: string[], fields?: string[]): Promise<RemoteRecord[]> {
    return this.retry(() => this.inner.readByIds(object, ids, fields));
  }

  write(object: string, items: WriteItem[]): Promise<WriteOutcome[]> {
    return this.inner.write(object, items);
  }

  handleWebhook(request: WebhookRequest): Promise<WebhookResult> {
    return this.inner.handleWebhook(request);
  }

  describe(object: string): Promise<ObjectSchema> {
    return this.retry(() => this.inner.describe(object));
  }

  quota(): QuotaState {
    return this.inner.quota?.() ?? {};
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** Wraps every connector of the map (a connector already wrapped is kept). */
export function withReadRetry(connectors: Map<string, Connector>, options: ReadRetryOptions = {}): Map<string, Connector> {
  return new Map([...connectors].map(([slug, c]) => [slug, c instanceof ReadRetryConnector ? c : new ReadRetryConnector(c, options)]));
}
