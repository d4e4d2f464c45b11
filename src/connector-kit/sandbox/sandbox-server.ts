/**
 * The frame every CRM sandbox is built on: a Fastify server on loopback with the control API of
 * design.md §6 (`/_sandbox/stats|edit|delete|seed|config|reset`; `seed` also takes a `seed` number
 * for records that do not depend on the sandbox's contents), per-route call counting, fault
 * injection (5xx share, dropped connections, added latency) and optional persistence of state to
 * a file. Each CRM's sandbox registers its vendor routes on `app` and supplies a `SandboxBehaviour`.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';

/** What a sandbox does when a rep edits in the CRM's UI, or a test seeds and configures it. */
export interface SandboxBehaviour {
  /** Changes a record as a rep in the CRM's UI would: modified time moves, webhooks fire. */
  edit(object: string, id: string, fields: Record<string, unknown>): unknown;
  /** Deletes/archives as a rep would; webhooks fire. */
  remove(object: string, id: string): unknown;
  /**
   * Adds `count` realistic records; returns their ids. Records are numbered: without `seed` the
   * numbers continue from the object's current record count (so what a call adds depends on what the
   * sandbox holds, including records an integration wrote); with `seed` (an integer ≥ 0) they are
   * `seed` … `seed + count − 1`, so the same call adds the same names, emails, phones and field
   * values in any sandbox of that CRM. Links to other records (a contact's company) still go to
   * whatever records of that kind exist.
   */
  seed(object: string, count: number, seed?: number): string[];
  /** Empties records and the sandbox's own counters. */
  reset(): void;
  /** Record counts per object for `/_sandbox/stats`. */
  recordCounts(): Record<string, number>;
  /** Applies `rateLimit`, `dailyQuota`, `webhookUrl` and any CRM-specific keys of a config call. */
  configure(config: SandboxConfig): void;
  /** Serialisable state for persistence. */
  snapshot?(): unknown;
  restore?(state: unknown): void;
  /** Waits until queued webhooks are delivered (tests, demo). */
  drainWebhooks?(timeoutMs?: number): Promise<void>;
  /** CRM-specific figures merged into the `/_sandbox/stats` body (records written, webhooks). */
  extraStats?(): Record<string, unknown>;
  close?(): void;
}

export const faultsSchema = z
  .object({
    /** Share of API calls answered with a 5xx, 0..1. */
    errorRate: z.number().min(0).max(1).optional(),
    /** Share of API calls whose connection is dropped without an answer, 0..1. */
    dropRate: z.number().min(0).max(1).optional(),
    /** Added latency per call, ms. */
    latencyMs: z.number().min(0).max(60_000).optional(),
    /** Share of calls that get `latencyMs` × 10 (latency spikes), 0..1. */
    slowRate: z.number().min(0).max(1).optional(),
  })
  .strict();
export type Faults = z.infer<typeof faultsSchema>;

export const sandboxConfigSchema = z
  .object({
    rateLimit: z.record(z.string(), z.number()).optional(),
    dailyQuota: z.number().int().min(0).optional(),
    faults: faultsSchema.optional(),
    webhookUrl: z.string().url().nullable().optional(),
  })
  .catchall(z.unknown());
export type SandboxConfig = z.infer<typeof sandboxConfigSchema>;

export interface SandboxServerOptions {
  /** `salesforce`, `hubspot`, `pipedrive`: used in logs and the stats body. */
  name: string;
  /** Request body limit, bytes. Default 50 MB (bulk CSV uploads). */
  bodyLimit?: number;
  /** File to load state from at start and save to at close. */
  stateFile?: string;
  /** Deterministic randomness for faults (tests); Math.random when absent. */
  random?: () => number;
  /** Body of an injected 5xx in the CRM's own error shape; default `{error: 'injected fault', status: 503}`. */
  faultBody?: unknown;
}

export interface SandboxStats {
  calls: Record<string, number>;
  totalCalls: number;
  rateLimited: number;
  faultsInjected: number;
  records: Record<string, number>;
}

/** Mutable counters shared by the frame and a sandbox's own routes. */
export class SandboxCounters {
  calls: Record<string, number> = {};
  totalCalls = 0;
  rateLimited = 0;
  faultsInjected = 0;

  reset(): void {
    this.calls = {};
    this.totalCalls = 0;
    this.rateLimited = 0;
    this.faultsInjected = 0;
  }
}

export interface SandboxServer {
  app: FastifyInstance;
  counters: SandboxCounters;
  /** Current fault settings (sandboxes read them; the frame applies them to vendor routes). */
  faults: Faults;
  /** Registers the behaviour; call once, before `listen`. */
  use(behaviour: SandboxBehaviour): void;
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

const editBody = z.object({ object: z.string(), id: z.string(), fields: z.record(z.string(), z.unknown()) });
const deleteBody = z.object({ object: z.string(), id: z.string() });
const seedBody = z.object({
  object: z.string(),
  count: z.number().int().min(1).max(1_000_000),
  /** Number of the first record; makes the records independent of the sandbox's contents. */
  seed: z.number().int().min(0).max(1_000_000_000).optional(),
});

function isControlRoute(url: string): boolean {
  return url.startsWith('/_sandbox/');
}

export function createSandboxServer(options: SandboxServerOptions): SandboxServer {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 50 * 1024 * 1024,
    keepAliveTimeout: 30_000,
  });
  const counters = new SandboxCounters();
  const random = options.random ?? Math.random;
  const state: { faults: Faults; behaviour: SandboxBehaviour | null } = { faults: {}, behaviour: null };

  const behaviour = (): SandboxBehaviour => {
    if (!state.behaviour) throw new TypeError(`${options.name} sandbox has no behaviour registered`);
    return state.behaviour;
  };

  // Count every vendor API call by its route pattern ("POST /crm/v3/objects/:objectType/batch/upsert").
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const url = request.url;
    if (isControlRoute(url)) return;
    const pattern = `${request.method} ${request.routeOptions.url ?? url.split('?')[0] ?? url}`;
    counters.calls[pattern] = (counters.calls[pattern] ?? 0) + 1;
    counters.totalCalls++;

    const f = state.faults;
    if (f.latencyMs) {
      const spike = f.slowRate !== undefined && random() < f.slowRate ? 10 : 1;
      await new Promise((resolve) => setTimeout(resolve, (f.latencyMs ?? 0) * spike));
    }
    if (f.dropRate && random() < f.dropRate) {
      counters.faultsInjected++;
      request.raw.socket.destroy();
      return reply.hijack();
    }
    if (f.errorRate && random() < f.errorRate) {
      counters.faultsInjected++;
      return reply
        .code(503)
        .header('content-type', 'application/json')
        .send(options.faultBody ?? { error: 'injected fault', status: 503 });
    }
    return undefined;
  });

  app.get('/_sandbox/stats', (_request, reply): FastifyReply => {
    const stats: SandboxStats & Record<string, unknown> = {
      calls: counters.calls,
      totalCalls: counters.totalCalls,
      rateLimited: counters.rateLimited,
      faultsInjected: counters.faultsInjected,
      records: behaviour().recordCounts(),
      ...(behaviour().extraStats?.() ?? {}),
    };
    return reply.send(stats);
  });

  const badRequest = (reply: FastifyReply, error: z.ZodError) =>
    reply
      .code(400)
      .send({
        error: 'invalid control request',
        issues: error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      });

  app.post('/_sandbox/edit', async (request, reply) => {
    const parsed = editBody.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    try {
      return { ok: true, record: behaviour().edit(parsed.data.object, parsed.data.id, parsed.data.fields) };
    } catch (error) {
      return reply.code(404).send({ error: (error as Error).message });
    }
  });

  app.post('/_sandbox/delete', async (request, reply) => {
    const parsed = deleteBody.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    try {
      behaviour().remove(parsed.data.object, parsed.data.id);
      return { ok: true };
    } catch (error) {
      return reply.code(404).send({ error: (error as Error).message });
    }
  });

  app.post('/_sandbox/seed', async (request, reply) => {
    const parsed = seedBody.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error);
    try {
      const ids = behaviour().seed(parsed.data.object, parsed.data.count, parsed.data.seed);
      return { ok: true, count: ids.length, ids };
    } catch (error) {
      return reply.code(400).send({ error: (error as Error).message });
    }
  });

  app.post('/_sandbox/config', async (request, reply) => {
    const parsed = sandboxConfigSchema.safeParse(request.body ?? {});
    if (!parsed.success) return badRequest(reply, parsed.error);
    if (parsed.data.faults) state.faults = { ...parsed.data.faults };
    try {
      behaviour().configure(parsed.data);
    } catch (error) {
      return reply.code(400).send({ error: (error as Error).message });
    }
    return { ok: true };
  });

  app.post('/_sandbox/reset', (_request, reply): FastifyReply => {
    behaviour().reset();
    counters.reset();
    state.faults = {};
    return reply.send({ ok: true });
  });

  app.post('/_sandbox/drain', async () => {
    await behaviour().drainWebhooks?.();
    return { ok: true };
  });

  const server: SandboxServer = {
    app,
    counters,
    get faults() {
      return state.faults;
    },
    set faults(value: Faults) {
      state.faults = value;
    },
    use(b) {
      state.behaviour = b;
      if (options.stateFile && b.restore) {
        try {
          b.restore(JSON.parse(readFileSync(options.stateFile, 'utf8')));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
    },
    async listen(port, host = '127.0.0.1') {
      await app.listen({ port, host });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      return `http://${host}:${actualPort}`;
    },
    async close() {
      const b = state.behaviour;
      if (options.stateFile && b?.snapshot) {
        mkdirSync(path.dirname(options.stateFile), { recursive: true });
        writeFileSync(options.stateFile, JSON.stringify(b.snapshot()));
      }
      b?.close?.();
      await app.close();
    },
  };
  return server;
}
