/**
 * `GET /healthz` (the process answers), `GET /readyz` (the store is reachable and every registered
 * readiness check passes: 200, else 503 listing the failing checks) and `GET /metrics` (Prometheus
 * text format). None needs a token: they expose no profile data, and orchestrators probe them bare.
 */
import type { FastifyPluginAsync } from 'fastify';
import { scrubSecrets } from '../logger.ts';

export const healthRoutes: FastifyPluginAsync = (app) => {
  const { readiness, metrics, config } = app.crmhub;

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const report = await readiness.run();
    const checks = report.checks.map((c) => (c.detail === undefined ? c : { ...c, detail: scrubSecrets(c.detail, config.secrets) }));
    return reply.code(report.ok ? 200 : 503).send({ status: report.ok ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
  return Promise.resolve();
};
