/**
 * Bulk API 2.0 path: the exact job requests (create, CSV upload, UploadComplete, poll, results) and
 * every row's result matched back to its record, successes and failures alike.
 */
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseBulkError } from '../../../connectors/salesforce/errors.ts';
import { API, INSTANCE, apiHeaders, makeConnector } from './helpers.ts';

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});
afterAll(() => nock.enableNetConnect());

const json = { 'Content-Type': 'application/json' };
const JOB = '7505fEXAMPLE4C2AAM';

describe('Bulk API 2.0 writes', () => {
  it('switches to an ingest job at the threshold and matches successful and failed rows to refs', async () => {
    const { connector } = makeConnector({ bulkThreshold: 3, bulkPollIntervalMs: 1 });
    const csv = 'Crmhub_Id__c,LastName,Email\nprf_1,Lovelace,ada@example.com\nprf_2,,#N/A\nprf_3,"Hopper, Grace",grace@example.com\n';
    const scope = nock(INSTANCE, { reqheaders: apiHeaders })
      .post(`${API}/jobs/ingest`, { object: 'Contact', operation: 'upsert', externalIdFieldName: 'Crmhub_Id__c', contentType: 'CSV', lineEnding: 'LF', columnDelimiter: 'COMMA' })
      .reply(200, { id: JOB, state: 'Open', object: 'Contact', operation: 'upsert' }, json)
      .put(`${API}/jobs/ingest/${JOB}/batches`, csv)
      .matchHeader('content-type', 'text/csv')
      .reply(201, '')
      .patch(`${API}/jobs/ingest/${JOB}`, { state: 'UploadComplete' })
      .reply(200, { id: JOB, state: 'UploadComplete' }, json)
      .get(`${API}/jobs/ingest/${JOB}`)
      .reply(200, { id: JOB, state: 'InProgress' }, json)
      .get(`${API}/jobs/ingest/${JOB}`)
      .reply(200, { id: JOB, state: 'JobComplete', numberRecordsProcessed: 3, numberRecordsFailed: 1 }, json)
      .get(`${API}/jobs/ingest/${JOB}/successfulResults`)
      .reply(
        200,
        '"sf__Id","sf__Created",Crmhub_Id__c,LastName,Email\n"003000000000003AAA","true",prf_3,"Hopper, Grace",grace@example.com\n"003000000000001AAA","false",prf_1,Lovelace,ada@example.com\n',
        { 'Content-Type': 'text/csv' },
      )
      .get(`${API}/jobs/ingest/${JOB}/failedResults`)
      .reply(200, '"sf__Id","sf__Error",Crmhub_Id__c,LastName,Email\n"","REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",prf_2,,#N/A\n', {
        'Content-Type': 'text/csv',
      });
    const outcomes = await connector.write('Contact', [
      { ref: 'one', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_1' }, fields: { LastName: 'Lovelace', Email: 'ada@example.com' } },
      { ref: 'two', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_2' }, fields: { Email: null } },
      { ref: 'three', upsertKey: { field: 'Crmhub_Id__c', value: 'prf_3' }, fields: { LastName: 'Hopper, Grace', Email: 'grace@example.com' } },
    ]);
    scope.done();
    const byRef = Object.fromEntries(outcomes.map((o) => [o.ref, o]));
    expect(byRef['one']).toEqual({ ref: 'one', ok: true, remoteId: '003000000000001AAA', created: false });
    expect(byRef['three']).toEqual({ ref: 'three', ok: true, remoteId: '003000000000003AAA', created: true });
    const two = byRef['two'];
    expect(two?.ok).toBe(false);
    if (two !== undefined && !two.ok) {
      expect(two.error.kind).toBe('payload');
      expect(two.error.code).toBe('REQUIRED_FIELD_MISSING');
      expect(two.error.context.field).toBe('LastName');
    }
  });

  it('reports rows of an aborted job as transient so they are retried', async () => {
    const { connector } = makeConnector({ bulkThreshold: 2, bulkPollIntervalMs: 1 });
    nock(INSTANCE, { reqheaders: apiHeaders })
      .post(`${API}/jobs/ingest`)
      .reply(200, { id: JOB, state: 'Open' }, json)
      .put(`${API}/jobs/ingest/${JOB}/batches`)
      .reply(201, '')
      .patch(`${API}/jobs/ingest/${JOB}`)
      .reply(200, { id: JOB, state: 'UploadComplete' }, json)
      .get(`${API}/jobs/ingest/${JOB}`)
      .reply(200, { id: JOB, state: 'Aborted', errorMessage: 'aborted by admin' }, json);
    const outcomes = await connector.write('Account', [
      { ref: 'x', remoteId: '001000000000001AAA', fields: { Name: 'X' } },
      { ref: 'y', remoteId: '001000000000002AAA', fields: { Name: 'Y' } },
    ]);
    expect(outcomes.map((o) => o.ref).sort()).toEqual(['x', 'y']);
    for (const o of outcomes) expect(!o.ok && o.error.kind).toBe('transient');
  });

  it('parses sf__Error cells into code, message and fields', () => {
    expect(parseBulkError('REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --')).toEqual({
      statusCode: 'REQUIRED_FIELD_MISSING',
      message: 'Required fields are missing: [LastName]',
      fields: ['LastName'],
    });
    expect(parseBulkError('DUPLICATES_DETECTED:Use one of these records?:--')).toEqual({ statusCode: 'DUPLICATES_DETECTED', message: 'Use one of these records?:' });
  });
});
