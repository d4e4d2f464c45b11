/**
 * The Segment-compatible event API: `POST /v1/identify|track|page|screen|group|alias|batch`.
 *
 * - Auth: HTTP Basic with a write key as user name (Segment's libraries send `writeKey:`), or a
 *   `writeKey` body field; 401 with a reason otherwise.
 * - Limits: 32 KB per single-event call, 500 KB per batch request (413 with a reason), 32 KB per
 *   batch item (that item is rejected).
 * - `200 {"success":true}` is sent only after the transaction holding the events committed.
 *
 * A bad event in a batch does not lose the good ones. Each item is validated alone; the valid
 * items are stored, and the answer is then `400` naming the rejected indexes and reasons
 * (`{"success":false,"code":"INVALID_EVENTS","stored":K,"rejected":[{index,path,message}]}`).
 * Why not `200` like Segment: a 200 would tell the sender everything was stored when it was not,
 * and the rejected items stay wrong on a retry anyway — Segment's libraries do not retry a 400, so
 * the good items are not sent twice (and a resend would be deduped on `messageId`). If storing
 * fails (not the input's fault) the answer is 500 naming the failed indexes; clients retry 5xx and
 * the already-stored items are deduped.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { EVENT_TYPES, MAX_BATCH_BYTES, MAX_EVENT_BYTES } from '../../ingest/event-schemas.ts';
import type { EventOutcome } from '../../ingest/event-ingestor.ts';
import type { Outcome } from '../../ingest/group-committer.ts';
import { validateBatch, validateEvent, type EventIssue, type IngestEvent } from '../../ingest/validate-events.ts';
import { errorBody } from '../error-reply.ts';
import { checkWriteKey } from '../http-auth.ts';

const SUCCESS = { success: true } as const;

function describe(issue: EventIssue): string {
  const where = issue.index === null ? '' : `batch[${issue.index}]`;
  const path = issue.path === '' ? where : where === '' ? issue.path : `${where}.${issue.path}`;
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}

/** Registers the event routes on the app (uses `app.crmhub`). */
export const eventRoutes: FastifyPluginAsync = (app) => {
  const { ingest, metrics, config } = app.crmhub;

  const authorise = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const body = request.body as { writeKey?: unknown } | undefined;
    const check = checkWriteKey(request.headers.authorization, typeof body === 'object' && body !== null ? body.writeKey : undefined, config.writeKeys);
    if (check.ok) return true;
    void reply.code(401).header('www-authenticate', 'Basic realm="crmhub events"').send(errorBody('UNAUTHORIZED', check.reason));
    return false;
  };

  const count = (type: string, outcome: string, n = 1): void => {
    metrics.ingestEvents.inc({ type, outcome }, n);
  };

  for (const type of EVENT_TYPES) {
    app.post(`/v1/${type}`, { bodyLimit: MAX_EVENT_BYTES }, async (request, reply) => {
      if (!authorise(request, reply)) return reply;
      const receivedAt = new Date().toISOString();
      const result = validateEvent(request.body, type);
      if (!result.ok) {
        count(type, 'rejected');
        return reply.code(400).send(errorBody('INVALID_EVENT', result.issues.map(describe).join('; '), { issues: result.issues }));
      }
      const [outcome] = await ingest.ingest([result.event], receivedAt);
      if (outcome === undefined || !outcome.ok) {
        request.log.error({ err: outcome?.error }, 'storing an event failed');
        return reply.code(500).send(errorBody('STORE_FAILED', 'the event could not be stored; retry'));
      }
      return reply.send(SUCCESS);
    });
  }

  app.post('/v1/batch', { bodyLimit: MAX_BATCH_BYTES }, async (request, reply) => {
    if (!authorise(request, reply)) return reply;
    const receivedAt = new Date().toISOString();
    const bodyBytes = request.rawBody?.length ?? Number.POSITIVE_INFINITY;
    const result = validateBatch(request.body, bodyBytes > MAX_EVENT_BYTES);
    if (result.events.length === 0) {
      count('batch', 'rejected', Math.max(1, result.rejected.length));
      return reply.code(400).send(errorBody('INVALID_EVENTS', result.issues.slice(0, 20).map(describe).join('; ') || 'no valid events', {
        stored: 0,
        rejected: result.issues,
      }));
    }
    for (const issue of result.issues) if (issue.index !== null) count('batch', 'rejected');
    const outcomes = await ingest.ingest(result.events.map((e) => e.event), receivedAt);
    const failed = failedIndexes(result.events, outcomes);
    if (failed.length > 0) {
      request.log.error({ failed: failed.length }, 'storing batch events failed');
      return reply.code(500).send(errorBody('STORE_FAILED', `${failed.length} events could not be stored; retry (stored events are deduped on messageId)`, {
        stored: outcomes.length - failed.length,
        failed,
        rejected: result.issues,
      }));
    }
    if (result.rejected.length > 0) {
      const total = result.events.length + result.rejected.length;
      return reply.code(400).send(errorBody('INVALID_EVENTS', `${result.rejected.length} of ${total} events rejected (the other ${result.events.length} were stored): ${result.issues.slice(0, 20).map(describe).join('; ')}`, {
        stored: result.events.length,
        rejected: result.issues,
      }));
    }
    return reply.send(SUCCESS);
  });
  return Promise.resolve();
};

function failedIndexes(events: { index: number; event: IngestEvent }[], outcomes: Outcome<EventOutcome>[]): number[] {
  const failed: number[] = [];
  outcomes.forEach((o, i) => {
    if (!o.ok) failed.push((events[i] as { index: number }).index);
  });
  return failed;
}

