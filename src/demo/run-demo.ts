/**
 * `crmhub demo`: the whole product on embedded defaults (issue 9). Starts the three CRM sandboxes
 * and crmhub (SQLite in a fresh temp folder), seeds overlapping people into each CRM, sends product
 * events through the event API over HTTP, runs a full bidirectional sync, then tells the story with
 * figures measured in this run: profiles unified across CRMs, traits pushed into each CRM (read
 * back), a rep's edit reaching the other CRMs through webhooks, a conflict resolved by its rule, a
 * 429 absorbed, and the API calls spent against each CRM's batch minimum.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { Connector } from '../connector-kit/connector.ts';
import type { RunningSandbox } from '../connector-kit/connector-module.ts';
import { loadConfig } from '../config/load-config.ts';
import type { JsonValue, ProfileId } from '../core/types.ts';
import { getProfileView } from '../identity/profile-view.ts';
import { createLogger } from '../server/logger.ts';
import { startServer, type RunningServer } from '../cli/commands/serve.ts';
import { startSandboxes } from '../cli/commands/sandbox.ts';
import { connectorsFromEnv, type Runtime } from '../cli/runtime.ts';
import { createSyncServeHook } from '../cli/serve-wiring.ts';
import { crmFields, demoPeople, membersOf, PERSON_OBJECT, type DemoPerson } from './demo-data.ts';
import type { DemoReport, DemoStep } from './demo-report.ts';
import { SandboxControl, type SandboxStatsBody } from './sandbox-control.ts';

export interface DemoOptions {
  /** People in the sample pool (each CRM holds two thirds of them). Default 300. */
  people?: number;
  /** Progress lines (the terminal view prints them to stderr). */
  progress?: (line: string) => void;
  /** Keep the temp folder (database, crmhub log). Default false. */
  keepWorkDir?: boolean;
}

const SLUGS = ['hubspot', 'salesforce', 'pipedrive'] as const;
/** Remote field names of the traits the demo checks, per CRM (mappings/<slug>/<person object>.yaml). */
const FIELD: Record<string, { plan: string; engagement: string; lastName: string; phone: string }> = {
  hubspot: { plan: 'crmhub_plan', engagement: 'crmhub_engagement_score', lastName: 'lastname', phone: 'phone' },
  salesforce: { plan: 'Plan__c', engagement: 'Engagement_Score__c', lastName: 'LastName', phone: 'Phone' },
  pipedrive: { plan: 'Plan', engagement: 'Engagement score', lastName: 'last_name', phone: 'phone' },
};
const PAGE_SIZE = 100;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(check: () => Promise<T | null>, timeoutMs: number, intervalMs = 25): Promise<T | null> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > until) return null;
    await sleep(intervalMs);
  }
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** A call that changes data (not a read, search or query). */
export function isWriteRoute(route: string): boolean {
  if (/^(PATCH|PUT|DELETE) /.test(route)) return true;
  return route.startsWith('POST ') && !/search|read|query|oauth|token/i.test(route);
}

function writeCalls(stats: SandboxStatsBody, before?: SandboxStatsBody): number {
  let n = 0;
  for (const [route, count] of Object.entries(stats.calls)) if (isWriteRoute(route)) n += count - (before?.calls[route] ?? 0);
  return n;
}

/** A value as text: strings as they are, anything else as JSON. */
function text(value: JsonValue | undefined): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function same(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Runs the whole story. Never throws for a failed step: the step is marked failed and the report says why. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const started = Date.now();
  const progress = options.progress ?? (() => undefined);
  const poolSize = Math.max(30, options.people ?? 300);
  const pool = demoPeople(poolSize);
  const workDir = await mkdtemp(path.join(tmpdir(), 'crmhub-demo-'));
  const report: DemoReport = { ok: false, durationMs: 0, steps: [], unification: null, events: null, sync: null, traits: null, propagation: null, conflict: null, rateLimit: null, apiCalls: null, workDir };
  const step = async (name: string, run: () => Promise<string>): Promise<boolean> => {
    const t0 = Date.now();
    progress(`… ${name}`);
    let entry: DemoStep;
    try {
      entry = { name, ok: true, detail: await run(), durationMs: Date.now() - t0 };
    } catch (error) {
      entry = { name, ok: false, detail: error instanceof Error ? error.message : String(error), durationMs: Date.now() - t0 };
    }
    report.steps.push(entry);
    progress(`${entry.ok ? '✓' : '✗'} ${name} (${entry.durationMs} ms): ${entry.detail}`);
    return entry.ok;
  };
  const fail = (message: string): never => {
    throw new TypeError(message);
  };

  let sandboxes: RunningSandbox[] = [];
  let server: RunningServer | null = null;
  let runtime: Runtime | null = null;
  const controls = new Map<string, SandboxControl>();
  const control = (slug: string): SandboxControl => controls.get(slug) ?? fail(`no ${slug} sandbox`);
  const rt = (): Runtime => runtime ?? fail('crmhub is not running');
  const connector = (slug: string): Connector => rt().connectors.get(slug) ?? fail(`connector ${slug} is not configured`);
  /** Pool index → remote id, per CRM (seeded records). */
  const seeded = new Map<string, Map<number, string>>();
  const writeKey = 'demo-write-key';
  const env: Record<string, string> = {};

  const sendEvents = async (batch: Record<string, JsonValue>[]): Promise<void> => {
    if (!server) fail('crmhub is not running');
    const response = await fetch(`${server!.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
      body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
    });
    const text = await response.text();
    if (response.status !== 200) fail(`event API answered ${response.status}: ${text.slice(0, 200)}`);
  };
  const identify = (p: DemoPerson, traits: Record<string, JsonValue>, tag: string): Record<string, JsonValue> => ({
    type: 'identify',
    messageId: `demo-${tag}-${p.index}-${started}`,
    userId: `user-${p.index}`,
    traits: { email: p.email, ...traits },
    timestamp: new Date().toISOString(),
  });
  const profileOf = async (p: DemoPerson): Promise<ProfileId | null> => (await getProfileView(rt().store.read(), `email:${p.email}`))?.id ?? null;
  const linkedId = async (slug: string, profileId: ProfileId): Promise<string | null> => {
    const rows = await rt().store.read().findRemoteRecordsByProfile(slug, PERSON_OBJECT[slug] ?? '', profileId);
    return rows.find((r) => !r.deleted)?.remoteId ?? null;
  };
  const shadowValue = async (slug: string, profileId: ProfileId, field: string): Promise<JsonValue | undefined> => {
    const rows = await rt().store.read().findRemoteRecordsByProfile(slug, PERSON_OBJECT[slug] ?? '', profileId);
    return rows.find((r) => !r.deleted)?.shadow[field];
  };
  const readBack = async (slug: string, remoteId: string, field: string): Promise<JsonValue> => {
    const [record] = await connector(slug).readByIds(PERSON_OBJECT[slug] ?? '', [remoteId]);
    return record?.fields[field] ?? null;
  };
  const drained = async (timeoutMs: number): Promise<number> => {
    const left = await waitFor(async () => ((await rt().store.pendingOutboxCount()) === 0 ? 0 : null), timeoutMs, 100);
    return left ?? (await rt().store.pendingOutboxCount());
  };

  try {
    await step('start the Salesforce, HubSpot and Pipedrive sandboxes', async () => {
      sandboxes = await startSandboxes({});
      for (const s of sandboxes) {
        controls.set(s.slug, new SandboxControl(s.slug, s.baseUrl));
        Object.assign(env, s.env);
      }
      return sandboxes.map((s) => `${s.slug} ${s.baseUrl}`).join(', ');
    });

    await step('seed each CRM with overlapping people', async () => {
      const lines: string[] = [];
      for (const slug of SLUGS) {
        const object = PERSON_OBJECT[slug] ?? '';
        const members = membersOf(slug, poolSize);
        const ids = await control(slug).seed(object, members.length);
        const byIndex = new Map<number, string>();
        // Seeded records are realistic but random; a rep's edit gives each one its person.
        await mapLimit(members, 16, async (index, k) => {
          const id = ids[k] ?? fail(`${slug} seeded too few records`);
          const person = pool[index] ?? fail(`no person ${index}`);
          await control(slug).edit(object, id, crmFields(slug, person));
          byIndex.set(index, id);
        });
        seeded.set(slug, byIndex);
        lines.push(`${slug} ${members.length} ${object}`);
      }
      return `${lines.join(', ')} (${poolSize} distinct people; emails cased differently per CRM, phones conflicting)`;
    });

    await step('start crmhub on SQLite with the sandboxes as its CRMs', async () => {
      const config = loadConfig(
        {
          ...env,
          CRMHUB_DATABASE_URL: `sqlite:${path.join(workDir, 'demo.db')}`,
          CRMHUB_PORT: '0',
          CRMHUB_HOST: '127.0.0.1',
          CRMHUB_WRITE_KEYS: writeKey,
          CRMHUB_ADMIN_TOKEN: `demo-admin-${started}`,
          CRMHUB_MAPPINGS_DIR: path.join(repoRoot, 'mappings'),
          CRMHUB_LOG_LEVEL: 'warn',
        },
        null,
      );
      const logger = createLogger({ level: config.logLevel, secrets: config.secrets, destination: pino.destination({ dest: path.join(workDir, 'crmhub.log'), sync: true }) });
      // Built from the sandboxes' settings only: credentials in the caller's environment never leak in.
      const connectors = connectorsFromEnv(env, logger);
      server = await startServer(config, {
        logger,
        hooks: [createSyncServeHook({ connectors, schedule: [], workers: false, workerPollMs: 50, onRuntime: (r) => (runtime = r) })],
      });
      return `${server.url} (database ${path.join(workDir, 'demo.db')}, ${rt().mappings.all().length} mappings, connectors ${[...rt().connectors.keys()].join(', ')})`;
    });

    const statsBefore = new Map<string, SandboxStatsBody>();
    const readCounts = new Map<string, Map<string, number>>();
    await step('full pull: read every CRM record and unify people', async () => {
      for (const slug of SLUGS) statsBefore.set(slug, await control(slug).stats());
      const summary = await rt().engine.runOnce({ direction: 'pull', full: true, trigger: 'demo' });
      const failed = summary.objects.filter((o) => o.status === 'failed');
      if (failed.length > 0) fail(failed.map((o) => `${o.connector}.${o.object}: ${o.error ?? ''}`).join('; '));
      for (const o of summary.objects) {
        const m = readCounts.get(o.connector) ?? new Map<string, number>();
        m.set(o.object, o.created + o.updated + o.skipped + o.failed);
        readCounts.set(o.connector, m);
      }
      const perCrm: Record<string, { records: number; read: number }> = {};
      for (const slug of SLUGS) {
        const object = PERSON_OBJECT[slug] ?? '';
        perCrm[slug] = { records: statsBefore.get(slug)?.records[object] ?? 0, read: readCounts.get(slug)?.get(object) ?? 0 };
      }
      const profiles = new Set<string>();
      let fullyLinked = 0;
      const byCrmCount: Record<string, number> = { '1': 0, '2': 0, '3': 0 };
      for (const p of pool) {
        const view = await getProfileView(rt().store.read(), `email:${p.email}`);
        const crms = SLUGS.filter((s) => seeded.get(s)?.has(p.index));
        byCrmCount[String(crms.length)] = (byCrmCount[String(crms.length)] ?? 0) + 1;
        if (!view) continue;
        profiles.add(view.id);
        const linked = crms.every((s) => {
          const type = connector(s).declaration.objects.find((o) => o.name === PERSON_OBJECT[s])?.identifierType;
          return view.identifiers.some((i) => i.type === type && i.value === seeded.get(s)?.get(p.index));
        });
        if (linked) fullyLinked++;
      }
      const recordsRead = Object.values(perCrm).reduce((n, c) => n + c.read, 0);
      report.unification = { people: poolSize, perCrm, recordsRead, unifiedProfiles: profiles.size, fullyLinked, byCrmCount };
      if (profiles.size !== poolSize || fullyLinked !== poolSize) fail(`${recordsRead} records read, ${profiles.size} profiles for ${poolSize} people, ${fullyLinked} fully linked`);
      return `${recordsRead} person records read → ${profiles.size} unified profiles (${poolSize} people; ${byCrmCount['2'] ?? 0} in two CRMs, ${byCrmCount['3'] ?? 0} in all three)`;
    });

    const identified = pool.filter((p) => p.index % 2 === 0);
    await step('send product events through the event API (HTTP)', async () => {
      const batch: Record<string, JsonValue>[] = [];
      for (const p of identified) {
        batch.push(identify(p, { plan: p.plan, product_usage_score: p.productUsageScore, engagement_score: p.engagementScore, churn_risk: p.churnRisk, audiences: p.audiences }, 'identify'));
        batch.push({ type: 'track', messageId: `demo-track-${p.index}-${started}`, userId: `user-${p.index}`, event: 'Report Exported', properties: { format: 'csv', rows: p.productUsageScore * 10 } });
        batch.push({ type: 'page', messageId: `demo-page-${p.index}-${started}`, userId: `user-${p.index}`, name: 'Pricing', properties: { path: '/pricing' } });
      }
      for (let i = 0; i < batch.length; i += 300) await sendEvents(batch.slice(i, i + 300));
      report.events = { sent: batch.length, identify: identified.length, track: identified.length, page: identified.length, accepted: true };
      return `${batch.length} events (${identified.length} identify with plan, scores, churn risk and audiences; ${identified.length} track; ${identified.length} page) → 200 {"success":true}`;
    });

    await step('push: write every profile change to every CRM', async () => {
      const t0 = Date.now();
      const counts = await Promise.all(SLUGS.map((slug) => rt().engine.push(slug)));
      rt().engine.startWorkers({ pollMs: 50 });
      const pendingAfter = await drained(90_000);
      const perCrm: Record<string, { created: number; updated: number; deadLetters: number }> = {};
      SLUGS.forEach((slug, i) => {
        const c = counts[i];
        perCrm[slug] = { created: c?.created ?? 0, updated: c?.updated ?? 0, deadLetters: c?.deadLettered ?? 0 };
      });
      const dead = await rt().store.listDeadLetters({ limit: 100 });
      report.sync = { perCrm, pendingAfter, durationMs: Date.now() - t0 };
      const apiCalls: NonNullable<DemoReport['apiCalls']> = {};
      for (const slug of SLUGS) {
        const after = await control(slug).stats();
        const before = statsBefore.get(slug);
        const byRoute: Record<string, number> = {};
        for (const [route, n] of Object.entries(after.calls)) {
          const d = n - (before?.calls[route] ?? 0);
          if (d > 0) byRoute[route] = d;
        }
        const decl = connector(slug).declaration;
        const person = decl.objects.find((o) => o.name === PERSON_OBJECT[slug]);
        const written = (perCrm[slug]?.created ?? 0) + (perCrm[slug]?.updated ?? 0);
        let reads = 0;
        for (const n of readCounts.get(slug)?.values() ?? []) reads += Math.max(1, Math.ceil(n / PAGE_SIZE));
        const writesMin = decl.capabilities.batchUpsert ? Math.ceil(written / Math.max(1, person?.maxBatchSize ?? 1)) : written;
        apiCalls[slug] = { calls: after.totalCalls - (before?.totalCalls ?? 0), minimum: reads + writesMin, writes: writeCalls(after, before), recordsWritten: written, rateLimited: after.rateLimited - (before?.rateLimited ?? 0), byRoute };
      }
      report.apiCalls = apiCalls;
      if (pendingAfter > 0) fail(`${pendingAfter} outbox rows still pending after 90 s`);
      if (dead.length > 0) fail(`${dead.length} dead letters: ${dead.slice(0, 3).map((d) => `${d.connector}.${d.object} ${d.reason}`).join('; ')}`);
      return SLUGS.map((s) => `${s} ${perCrm[s]?.created ?? 0} created, ${perCrm[s]?.updated ?? 0} updated`).join('; ');
    });

    await step('traits pushed into each CRM (read back from the sandboxes)', async () => {
      const traits: NonNullable<DemoReport['traits']> = {};
      const sample = identified.slice(0, 60);
      for (const slug of SLUGS) {
        const f = FIELD[slug] ?? fail(`no fields for ${slug}`);
        const object = PERSON_OBJECT[slug] ?? '';
        const want = new Map<string, DemoPerson>();
        for (const p of sample) {
          const id = await profileOf(p);
          const remote = id ? await linkedId(slug, id) : null;
          if (remote) want.set(remote, p);
        }
        const records = await connector(slug).readByIds(object, [...want.keys()]);
        let matching = 0;
        let first: Record<string, JsonValue> | null = null;
        for (const r of records) {
          const p = want.get(r.id);
          if (!p) continue;
          if (text(r.fields[f.plan]) === p.plan && Number(r.fields[f.engagement]) === p.engagementScore) matching++;
          first ??= { id: r.id, [f.plan]: r.fields[f.plan] ?? null, [f.engagement]: r.fields[f.engagement] ?? null };
        }
        traits[slug] = { checked: sample.length, matching, sample: first };
      }
      report.traits = traits;
      const bad = SLUGS.filter((s) => (traits[s]?.matching ?? 0) !== sample.length);
      if (bad.length > 0) fail(bad.map((s) => `${s}: ${traits[s]?.matching ?? 0}/${sample.length} records hold the profile's plan and engagement score`).join('; '));
      return SLUGS.map((s) => `${s} ${traits[s]?.matching ?? 0}/${sample.length}`).join(', ') + ' records hold the profile’s plan and engagement score';
    });

    await step('turn on webhooks from the CRMs to crmhub', async () => {
      const base = server?.url ?? fail('crmhub is not running');
      await control('hubspot').configure({ webhookUrl: `${base}/webhooks/hubspot` });
      await control('pipedrive').configure({ webhookUrl: `${base}/webhooks/pipedrive` });
      await control('salesforce').configure({ webhookUrl: `${base}/webhooks/salesforce?token=${encodeURIComponent(env['SALESFORCE_WEBHOOK_TOKEN'] ?? '')}` });
      return `each sandbox now posts its webhooks to ${base}/webhooks/<slug>`;
    });

    await step("a rep's edit in HubSpot reaches Salesforce and Pipedrive through webhooks", async () => {
      const person = pool.find((p) => SLUGS.every((s) => seeded.get(s)?.has(p.index)) && p.index % 2 === 1) ?? fail('nobody is in all three CRMs');
      const profileId = (await profileOf(person)) ?? fail('no profile');
      const value = `${person.lastName}-Byron`;
      const hubspotId = (await linkedId('hubspot', profileId)) ?? fail('not linked to HubSpot');
      const before = await control('hubspot').stats();
      const t0 = Date.now();
      await control('hubspot').edit('contacts', hubspotId, { lastname: value });
      const reachedMs: Record<string, number | null> = {};
      await Promise.all(
        (['salesforce', 'pipedrive'] as const).map(async (slug) => {
          const field = FIELD[slug]?.lastName ?? '';
          const at = await waitFor(async () => (same(await shadowValue(slug, profileId, field), value) ? Date.now() : null), 20_000, 10);
          reachedMs[slug] = at === null ? null : at - t0;
        }),
      );
      // Our writes come back as webhooks; they must change nothing and send nothing.
      await sleep(1_500);
      await rt().engine.settled();
      const echoWrites = writeCalls(await control('hubspot').stats(), before);
      const back: Record<string, JsonValue> = {};
      for (const slug of ['salesforce', 'pipedrive'] as const) {
        const id = await linkedId(slug, profileId);
        back[slug] = id ? await readBack(slug, id, FIELD[slug]?.lastName ?? '') : null;
      }
      report.propagation = { source: 'hubspot', field: 'lastname', value, reachedMs, readBack: back, echoWrites };
      const missing = Object.entries(reachedMs).filter(([, ms]) => ms === null).map(([s]) => s);
      if (missing.length > 0) fail(`the edit did not reach ${missing.join(', ')} within 20 s`);
      if (!same(back['salesforce'], value) || !same(back['pipedrive'], value)) fail(`read back ${JSON.stringify(back)}, expected ${value}`);
      if (echoWrites !== 0) fail(`${echoWrites} write call(s) went back to HubSpot (echo)`);
      return `HubSpot lastname → ${JSON.stringify(value)}: Salesforce after ${reachedMs['salesforce']} ms, Pipedrive after ${reachedMs['pipedrive']} ms; 0 writes echoed back to HubSpot`;
    });

    await step('a conflict resolved by its rule (phone edited in HubSpot and by the CDP at once)', async () => {
      const person = pool.find((p) => SLUGS.every((s) => seeded.get(s)?.has(p.index)) && p.index % 2 === 1 && p.index > poolSize / 2) ?? fail('nobody is in all three CRMs');
      const profileId = (await profileOf(person)) ?? fail('no profile');
      const hubspotId = (await linkedId('hubspot', profileId)) ?? fail('not linked to HubSpot');
      const repPhone = '+1 212 555 7777';
      const cdpPhone = '+1 646 555 0000';
      // The rep's webhook is late (delivery paused): crmhub meets the edit when it next reads the record.
      await control('hubspot').configure({ webhookUrl: null });
      await control('hubspot').edit('contacts', hubspotId, { phone: repPhone });
      await sendEvents([identify(person, { phone: cdpPhone }, 'phone')]);
      const conflict = await waitFor(async () => (await rt().store.listConflicts({ limit: 50 })).find((c) => c.profileId === profileId && /phone/i.test(c.field)) ?? null, 20_000, 25);
      await control('hubspot').configure({ webhookUrl: `${server?.url ?? ''}/webhooks/hubspot` });
      if (!conflict) fail('no conflict was recorded within 20 s');
      const winner = conflict!.resolution === 'remote' ? conflict!.remoteValue : conflict!.profileValue;
      await drained(20_000);
      const finalValues: Record<string, JsonValue> = {};
      for (const slug of SLUGS) {
        const id = await linkedId(slug, profileId);
        finalValues[slug] = id ? await readBack(slug, id, FIELD[slug]?.phone ?? '') : null;
      }
      report.conflict = { field: conflict!.field, rule: conflict!.rule, profileValue: conflict!.profileValue, remoteValue: conflict!.remoteValue, resolution: conflict!.resolution, finalValues };
      const digits = (v: JsonValue): string => text(v).replace(/\D/g, '');
      const off = SLUGS.filter((s) => digits(finalValues[s] ?? null) !== digits(winner));
      if (off.length > 0) fail(`the winner ${JSON.stringify(winner)} is not in ${off.join(', ')}: ${JSON.stringify(finalValues)}`);
      return `${conflict!.field}: CDP ${JSON.stringify(conflict!.profileValue)} vs HubSpot rep ${JSON.stringify(conflict!.remoteValue)} → rule ${conflict!.rule} → ${conflict!.resolution} wins; all three CRMs hold ${JSON.stringify(winner)}`;
    });

    await step('a 429 absorbed: Pipedrive rate limit lowered, nothing lost', async () => {
      const burst = 6;
      await control('pipedrive').configure({ rateLimit: { burst, windowMs: 2000 } });
      const before = await control('pipedrive').stats();
      const batch = pool.filter((p) => seeded.get('pipedrive')?.has(p.index)).slice(0, 16);
      const score = (p: DemoPerson): number => (p.engagementScore + 7) % 100;
      await sendEvents(batch.map((p) => identify(p, { engagement_score: score(p) }, 'burst')));
      const pending = await drained(60_000);
      const after = await control('pipedrive').stats();
      await control('pipedrive').configure({ rateLimit: { burst: 80, windowMs: 2000 } });
      const ids = new Map<string, DemoPerson>();
      for (const p of batch) {
        const id = await profileOf(p);
        const remote = id ? await linkedId('pipedrive', id) : null;
        if (remote) ids.set(remote, p);
      }
      const records = await connector('pipedrive').readByIds('persons', [...ids.keys()]);
      const delivered = records.filter((r) => Number(r.fields[FIELD['pipedrive']?.engagement ?? '']) === score(ids.get(r.id)!)).length;
      const dead = (await rt().store.listDeadLetters({ limit: 100, connector: 'pipedrive' })).length;
      const rateLimited = after.rateLimited - before.rateLimited;
      report.rateLimit = { connector: 'pipedrive', limit: `${burst} requests / 2 s`, rateLimited, records: batch.length, delivered, deadLetters: dead };
      if (pending > 0) fail(`${pending} outbox rows still pending`);
      if (rateLimited === 0) fail('the sandbox answered no 429 (limit not reached)');
      if (delivered !== batch.length || dead > 0) fail(`${delivered}/${batch.length} delivered, ${dead} dead letters`);
      return `${rateLimited} × 429 from Pipedrive; ${delivered}/${batch.length} updates delivered, ${dead} dead letters`;
    });
  } finally {
    await (runtime as Runtime | null)?.engine.stopWorkers().catch(() => undefined);
    await (server as RunningServer | null)?.stop().catch(() => undefined);
    await Promise.allSettled(sandboxes.map((s) => s.close()));
    if (!options.keepWorkDir) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
  report.durationMs = Date.now() - started;
  report.ok = report.steps.length > 0 && report.steps.every((s) => s.ok);
  return report;
}
