/**
 * Prometheus metrics (`GET /metrics`). Each app gets its own prom-client `Registry` (tests build
 * many apps in one process); other parts register their metrics on `metrics.registry`.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface CrmhubMetrics {
  registry: Registry;
  /** HTTP requests by method, route pattern and status. */
  httpRequests: Counter<'method' | 'route' | 'status'>;
  /** HTTP request duration, seconds. */
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Events through the event API by type and outcome (stored, duplicate, rejected, unresolved, failed). */
  ingestEvents: Counter<'type' | 'outcome'>;
  /** Events per group-commit transaction. */
  ingestTransactionEvents: Histogram;
  /** Group-commit transaction duration, seconds, by whether it committed. */
  ingestTransactionSeconds: Histogram<'committed'>;
}

export interface MetricsOptions {
  /** Also collect Node's default process metrics (heap, event loop lag, …). Default false. */
  defaultMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): CrmhubMetrics {
  const registry = new Registry();
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'crmhub_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'crmhub_http_requests_total',
      help: 'HTTP requests by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'crmhub_http_request_duration_seconds',
      help: 'HTTP request duration in seconds',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    ingestEvents: new Counter({
      name: 'crmhub_ingest_events_total',
      help: 'Events received by the event API, by type and outcome',
      labelNames: ['type', 'outcome'] as const,
      registers: [registry],
    }),
    ingestTransactionEvents: new Histogram({
      name: 'crmhub_ingest_transaction_events',
      help: 'Events per group-commit transaction',
      buckets: [1, 2, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000],
      registers: [registry],
    }),
    ingestTransactionSeconds: new Histogram({
      name: 'crmhub_ingest_transaction_seconds',
      help: 'Group-commit transaction duration in seconds',
      labelNames: ['committed'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
