/**
 * Bulk API 2.0 (`/services/data/vNN.N/jobs/ingest` and `/jobs/query`), as the Bulk API 2.0 and
 * Bulk API Developer Guide describes it and jsforce 3.10.16 drives it (lib/api/bulk2.js):
 * ingest jobs take CSV uploads (`PUT …/batches`, 201), start on `UploadComplete`, move through
 * InProgress to JobComplete, and answer `successfulResults` (`sf__Id, sf__Created, …`),
 * `failedResults` (`sf__Id, sf__Error, …`) and `unprocessedrecords` as CSV. In uploads an empty
 * cell leaves a field alone and `#N/A` sets it to null; jsforce's empty `Id` column on upserts is
 * accepted. Query jobs answer CSV pages with `Sforce-Locator` (the string "null" on the last page)
 * and `Sforce-NumberOfRecords`. Errors are `[{errorCode, message}]`.
 */
/* eslint-disable @typescript-eslint/require-await -- Fastify handlers are async on purpose: return values are sent and throws become rejections for the error handler. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import type { IngestJob, QueryJob } from './bulk2-jobs.ts';
import { apiContext } from './http.ts';
import { SfRequestError, type WriteContext, type WriteOutcome } from './org.ts';
import { findObject } from './schema.ts';
import { planQuery, runQuery } from './soql.ts';
import type { SalesforceSandbox } from './salesforce-sandbox.ts';
import { formatDateTime, show } from './values.ts';

type Params = Record<string, string>;

const DELIMITERS: Record<string, string> = { COMMA: ',', TAB: '\t', SEMICOLON: ';', PIPE: '|', CARET: '^', BACKQUOTE: '`' };

const createIngest = z.object({
  object: z.string().min(1),
  operation: z.enum(['insert', 'update', 'upsert', 'delete', 'hardDelete']),
  externalIdFieldName: z.string().optional(),
  contentType: z.literal('CSV').optional(),
  lineEnding: z.enum(['LF', 'CRLF']).optional(),
  columnDelimiter: z.enum(['COMMA', 'TAB', 'SEMICOLON', 'PIPE', 'CARET', 'BACKQUOTE']).optional(),
  assignmentRuleId: z.string().optional(),
});

const createQuery = z.object({
  operation: z.enum(['query', 'queryAll']).optional(),
  query: z.string().min(1),
  contentType: z.literal('CSV').optional(),
  lineEnding: z.enum(['LF', 'CRLF']).optional(),
  columnDelimiter: z.enum(['COMMA', 'TAB', 'SEMICOLON', 'PIPE', 'CARET', 'BACKQUOTE']).optional(),
});

const stateBody = z.object({ state: z.enum(['UploadComplete', 'Aborted']) });

const bulkError = (status: number, errorCode: string, message: string) => new SfRequestError(status, errorCode, message);

function parseJson<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw bulkError(400, 'INVALIDJOB', `InvalidJob : ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** One CSV cell: quoted when it holds the delimiter, a quote or a line break. */
function cell(value: string, delimiter: string, alwaysQuote = false): string {
  if (alwaysQuote || value.includes(delimiter) || value.includes('"') || value.includes('\n') || value.includes('\r')) return `"${value.replace(/"/g, '""')}"`;
  return value;
}

function csvLines(rows: string[][], delimiter: string, eol: string, quoteColumns: number): string {
  return rows.map((r) => r.map((v, i) => cell(v, delimiter, i < quoteColumns)).join(delimiter)).join(eol) + (rows.length > 0 ? eol : '');
}

export function registerBulk2Routes(app: FastifyInstance, sb: SalesforceSandbox): void {
  /** Fields every job info carries (Bulk API 2.0 "Get Job Info"). */
  const common = (job: IngestJob | QueryJob) => ({
    id: job.id,
    operation: job.operation,
    object: job.object,
    createdById: sb.org.userId,
    createdDate: formatDateTime(job.createdDate),
    systemModstamp: formatDateTime(job.systemModstamp),
    state: job.state,
    concurrencyMode: 'Parallel',
    contentType: 'CSV',
    apiVersion: Number(job.apiVersion),
  });

  const ingestInfo = (job: IngestJob) => ({
    ...common(job),
    ...(job.externalIdFieldName ? { externalIdFieldName: job.externalIdFieldName } : {}),
    jobType: 'V2Ingest',
    contentUrl: `services/data/v${job.apiVersion}/jobs/ingest/${job.id}/batches`,
    lineEnding: job.lineEnding,
    columnDelimiter: job.columnDelimiter,
    numberRecordsProcessed: job.successful.length + job.failed.length,
    numberRecordsFailed: job.failed.length,
    retries: 0,
    totalProcessingTime: job.state === 'JobComplete' ? sb.bulkProcessingMs : 0,
    apiActiveProcessingTime: 0,
    apexProcessingTime: 0,
    ...(job.errorMessage ? { errorMessage: job.errorMessage } : {}),
  });

  const queryInfo = (job: QueryJob) => ({
    ...common(job),
    jobType: 'V2Query',
    lineEnding: job.lineEnding,
    columnDelimiter: job.columnDelimiter,
    numberRecordsProcessed: job.state === 'JobComplete' ? job.rows.length : 0,
    retries: 0,
    totalProcessingTime: 0,
  });

  const ingestJob = (request: FastifyRequest): IngestJob => {
    const job = sb.ingestJobs.get((request.params as Params).id ?? '');
    if (!job) throw bulkError(404, 'NOT_FOUND', 'The requested resource does not exist');
    return job;
  };
  const queryJob = (request: FastifyRequest): QueryJob => {
    const job = sb.queryJobs.get((request.params as Params).id ?? '');
    if (!job) throw bulkError(404, 'NOT_FOUND', 'The requested resource does not exist');
    return job;
  };
  const version = (request: FastifyRequest): string => ((request.params as Params).version ?? 'v62.0').slice(1);

  // ----- ingest -------------------------------------------------------------------------------

  app.post('/services/data/:version/jobs/ingest', async (request) => {
    const body = parseJson(createIngest, request.body);
    const object = findObject(body.object);
    if (!object) throw bulkError(400, 'INVALIDJOB', `InvalidJob : Unable to find object: ${body.object}`);
    if (body.operation === 'upsert') {
      if (!body.externalIdFieldName) throw bulkError(400, 'INVALIDJOB', `InvalidJob : External ID was blank for ${object.name}. An External ID must be specified for upsert.`);
      const f = object.byName.get(body.externalIdFieldName.toLowerCase());
      if (!f || (!f.externalId && !f.idLookup)) throw bulkError(400, 'INVALIDJOB', `InvalidJob : Field name provided, ${body.externalIdFieldName} does not match an External ID, Salesforce Id, or indexed field for ${object.name}`);
    }
    const now = sb.now();
    const job: IngestJob = {
      id: sb.jobIds.next(),
      object: object.name,
      operation: body.operation,
      ...(body.externalIdFieldName ? { externalIdFieldName: object.byName.get(body.externalIdFieldName.toLowerCase())?.name ?? body.externalIdFieldName } : {}),
      lineEnding: body.lineEnding ?? 'LF',
      columnDelimiter: body.columnDelimiter ?? 'COMMA',
      state: 'Open',
      createdDate: now,
      systemModstamp: now,
      apiVersion: version(request),
      uploads: [],
      columns: [],
      successful: [],
      failed: [],
      unprocessed: [],
    };
    sb.ingestJobs.set(job.id, job);
    return ingestInfo(job);
  });

  app.put('/services/data/:version/jobs/ingest/:id/batches', async (request, reply) => {
    const job = ingestJob(request);
    if (job.state !== 'Open') throw bulkError(409, 'INVALIDJOBSTATE', `Job ${job.id} is not open for uploads`);
    if (typeof request.body !== 'string') throw bulkError(400, 'INVALIDJOB', 'InvalidJob : the body must be CSV (Content-Type: text/csv)');
    job.uploads.push(request.body);
    return reply.code(201).send();
  });

  app.patch('/services/data/:version/jobs/ingest/:id', async (request) => {
    const job = ingestJob(request);
    const { state } = parseJson(stateBody, request.body);
    if (job.state !== 'Open') throw bulkError(409, 'INVALIDJOBSTATE', `Job ${job.id} is in state ${job.state}`);
    job.systemModstamp = sb.now();
    if (state === 'Aborted') {
      job.state = 'Aborted';
      return ingestInfo(job);
    }
    job.state = 'UploadComplete';
    const ctx = apiContext(request);
    job.timer = setTimeout(() => {
      job.state = 'InProgress';
      job.timer = setTimeout(() => {
        runIngest(job, ctx);
        job.systemModstamp = sb.now();
        delete job.timer;
      }, Math.ceil(sb.bulkProcessingMs / 2));
    }, Math.floor(sb.bulkProcessingMs / 2));
    return ingestInfo(job);
  });

  const runIngest = (job: IngestJob, ctx: WriteContext): void => {
    const delimiter = DELIMITERS[job.columnDelimiter] ?? ',';
    for (const upload of job.uploads) {
      let rows: string[][];
      try {
        rows = parse(upload, { delimiter, relax_column_count: true, skip_empty_lines: true, bom: true });
      } catch (error) {
        job.state = 'Failed';
        job.errorMessage = `InvalidBatch : Failed to parse CSV: ${(error as Error).message}`;
        return;
      }
      const header = rows.shift() ?? [];
      if (job.columns.length === 0) job.columns = header;
      const object = findObject(job.object);
      if (!object) return;
      const unknown = header.filter((h) => !object.byName.has(h.toLowerCase()));
      if (unknown.length > 0) {
        job.state = 'Failed';
        job.errorMessage = `InvalidBatch : Field name not found : ${unknown[0] ?? ''}`;
        return;
      }
      for (const row of rows) {
        const fields: Record<string, unknown> = {};
        let id = '';
        header.forEach((h, i) => {
          const raw = row[i] ?? '';
          if (h.toLowerCase() === 'id') {
            id = raw === '#N/A' ? '' : raw;
            return;
          }
          if (raw === '') return; // an empty cell leaves the field as it is
          fields[h] = raw === '#N/A' ? null : raw;
        });
        let outcome: WriteOutcome;
        switch (job.operation) {
          case 'insert':
            outcome = sb.org.create(job.object, fields, ctx);
            break;
          case 'update':
            outcome = id ? sb.org.update(job.object, id, fields, ctx) : { ok: false, errors: [{ statusCode: 'MISSING_ARGUMENT', message: 'Id not specified in an update call', fields: [] }] };
            break;
          case 'upsert': {
            const ext = job.externalIdFieldName ?? 'Id';
            const key = Object.keys(fields).find((k) => k.toLowerCase() === ext.toLowerCase());
            const value = key ? fields[key] : ext === 'Id' ? id : undefined;
            outcome =
              typeof value === 'string' && value !== ''
                ? sb.org.upsert(job.object, ext, value, fields, ctx)
                : { ok: false, errors: [{ statusCode: 'MISSING_ARGUMENT', message: `${ext} not specified`, fields: [] }] };
            break;
          }
          case 'delete':
          case 'hardDelete':
            outcome = sb.org.remove(job.object, id, ctx);
            break;
        }
        if (outcome.ok) job.successful.push({ id: outcome.id, created: outcome.created, row });
        else {
          const e = outcome.errors[0];
          job.failed.push({ id: outcome.id ?? '', error: e ? `${e.statusCode}:${e.message}:${e.fields.join(',')} --` : 'UNKNOWN_EXCEPTION:unknown --', row });
        }
      }
    }
    job.state = 'JobComplete';
  };

  const sendCsv = (reply: FastifyReply, body: string): FastifyReply => reply.code(200).header('content-type', 'text/csv').send(body);

  app.get('/services/data/:version/jobs/ingest/:id', async (request) => ingestInfo(ingestJob(request)));

  app.get('/services/data/:version/jobs/ingest', async () => ({ done: true, records: [...sb.ingestJobs.values()].map(ingestInfo), nextRecordsUrl: null }));

  app.delete('/services/data/:version/jobs/ingest/:id', async (request, reply) => {
    const job = ingestJob(request);
    if (job.timer) clearTimeout(job.timer);
    sb.ingestJobs.delete(job.id);
    return reply.code(204).send();
  });

  const eolOf = (job: { lineEnding: 'LF' | 'CRLF' }) => (job.lineEnding === 'CRLF' ? '\r\n' : '\n');

  app.get('/services/data/:version/jobs/ingest/:id/successfulResults', async (request, reply) => {
    const job = ingestJob(request);
    const d = DELIMITERS[job.columnDelimiter] ?? ',';
    const rows = [['sf__Id', 'sf__Created', ...job.columns], ...job.successful.map((s) => [s.id, String(s.created), ...s.row])];
    return sendCsv(reply, csvLines(rows, d, eolOf(job), 2));
  });

  app.get('/services/data/:version/jobs/ingest/:id/failedResults', async (request, reply) => {
    const job = ingestJob(request);
    const d = DELIMITERS[job.columnDelimiter] ?? ',';
    const rows = [['sf__Id', 'sf__Error', ...job.columns], ...job.failed.map((f) => [f.id, f.error, ...f.row])];
    return sendCsv(reply, csvLines(rows, d, eolOf(job), 2));
  });

  app.get('/services/data/:version/jobs/ingest/:id/unprocessedrecords', async (request, reply) => {
    const job = ingestJob(request);
    const d = DELIMITERS[job.columnDelimiter] ?? ',';
    let unprocessed: string[][] = [];
    if (job.state === 'Aborted' || job.state === 'Open') {
      for (const upload of job.uploads) {
        const rows: string[][] = parse(upload, { delimiter: d, relax_column_count: true, skip_empty_lines: true });
        const header = rows.shift();
        if (header && job.columns.length === 0) job.columns = header;
        unprocessed = unprocessed.concat(rows);
      }
    }
    return sendCsv(reply, csvLines([job.columns, ...unprocessed], d, eolOf(job), 0));
  });

  // ----- query --------------------------------------------------------------------------------

  app.post('/services/data/:version/jobs/query', async (request) => {
    const body = parseJson(createQuery, request.body);
    const plan = planQuery(body.query, sb.now());
    if (plan.aggregate || plan.countOnly) throw bulkError(400, 'INVALIDJOB', 'InvalidJob : Aggregate queries are not supported by Bulk API 2.0 query');
    const now = sb.now();
    const job: QueryJob = {
      id: sb.jobIds.next(),
      operation: body.operation ?? 'query',
      query: body.query,
      plan,
      object: plan.object.name,
      state: 'UploadComplete',
      createdDate: now,
      systemModstamp: now,
      apiVersion: version(request),
      lineEnding: body.lineEnding ?? 'LF',
      columnDelimiter: body.columnDelimiter ?? 'COMMA',
      columns: plan.select.flatMap((s) => (s.kind === 'field' ? [s.path.names.join('.')] : [])),
      rows: [],
    };
    sb.queryJobs.set(job.id, job);
    const urlOf = (object: string, id: string) => `/services/data/v${job.apiVersion}/sobjects/${object}/${id}`;
    job.timer = setTimeout(() => {
      job.state = 'InProgress';
      job.timer = setTimeout(() => {
        const out = runQuery(plan, sb.org.table(plan.object).values(), {
          includeDeleted: job.operation === 'queryAll',
          urlOf,
          lookupParent: (object, id) => sb.org.get(object, id),
        });
        job.rows = out.records.map((r) =>
          job.columns.map((c) => {
            const [a, b] = c.split('.');
            const v = b === undefined ? r[a ?? ''] : (r[a ?? ''] as Record<string, unknown> | null)?.[b];
            return show(v);
          }),
        );
        job.state = 'JobComplete';
        job.systemModstamp = sb.now();
        delete job.timer;
      }, Math.ceil(sb.bulkProcessingMs / 2));
    }, Math.floor(sb.bulkProcessingMs / 2));
    return queryInfo(job);
  });

  app.get('/services/data/:version/jobs/query/:id', async (request) => queryInfo(queryJob(request)));

  app.get('/services/data/:version/jobs/query', async () => ({ done: true, records: [...sb.queryJobs.values()].map(queryInfo), nextRecordsUrl: null }));

  app.patch('/services/data/:version/jobs/query/:id', async (request) => {
    const job = queryJob(request);
    parseJson(stateBody, request.body);
    if (job.timer) clearTimeout(job.timer);
    job.state = 'Aborted';
    return queryInfo(job);
  });

  app.delete('/services/data/:version/jobs/query/:id', async (request, reply) => {
    const job = queryJob(request);
    if (job.timer) clearTimeout(job.timer);
    sb.queryJobs.delete(job.id);
    return reply.code(204).send();
  });

  app.get('/services/data/:version/jobs/query/:id/results', async (request, reply) => {
    const job = queryJob(request);
    if (job.state !== 'JobComplete') throw bulkError(400, 'INVALIDJOBSTATE', `Job ${job.id} is not complete (state ${job.state})`);
    const q = request.query as Record<string, string | undefined>;
    let offset = 0;
    if (q.locator && q.locator !== 'null') {
      offset = Number(Buffer.from(q.locator, 'base64').toString('utf8'));
      if (!Number.isInteger(offset) || offset < 0 || offset > job.rows.length) throw bulkError(400, 'INVALIDLOCATOR', `Invalid locator: ${q.locator}`);
    }
    const max = q.maxRecords ? Number(q.maxRecords) : sb.bulkQueryPageSize;
    if (!Number.isInteger(max) || max < 1) throw bulkError(400, 'INVALIDPARAMETER', `maxRecords must be a positive integer`);
    const page = job.rows.slice(offset, offset + max);
    const next = offset + page.length;
    const d = DELIMITERS[job.columnDelimiter] ?? ',';
    const body = csvLines([job.columns, ...page], d, eolOf(job), Number.MAX_SAFE_INTEGER);
    return reply
      .code(200)
      .header('content-type', 'text/csv')
      .header('Sforce-Locator', next < job.rows.length ? Buffer.from(String(next), 'utf8').toString('base64') : 'null')
      .header('Sforce-NumberOfRecords', String(page.length))
      .send(body);
  });
}
