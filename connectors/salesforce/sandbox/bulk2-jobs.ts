/** Bulk API 2.0 job records kept by the sandbox. */
import type { SoqlPlan } from './soql.ts';

export type IngestOperation = 'insert' | 'update' | 'upsert' | 'delete' | 'hardDelete';
export type JobState = 'Open' | 'UploadComplete' | 'InProgress' | 'JobComplete' | 'Failed' | 'Aborted';

export interface IngestJob {
  id: string;
  object: string;
  operation: IngestOperation;
  externalIdFieldName?: string;
  lineEnding: 'LF' | 'CRLF';
  columnDelimiter: string;
  state: JobState;
  createdDate: number;
  systemModstamp: number;
  apiVersion: string;
  /** Raw CSV uploads, in order. */
  uploads: string[];
  columns: string[];
  successful: { id: string; created: boolean; row: string[] }[];
  failed: { id: string; error: string; row: string[] }[];
  unprocessed: string[][];
  errorMessage?: string;
  timer?: NodeJS.Timeout;
}

export interface QueryJob {
  id: string;
  operation: 'query' | 'queryAll';
  query: string;
  plan: SoqlPlan;
  object: string;
  state: JobState;
  createdDate: number;
  systemModstamp: number;
  apiVersion: string;
  lineEnding: 'LF' | 'CRLF';
  columnDelimiter: string;
  columns: string[];
  rows: string[][];
  timer?: NodeJS.Timeout;
}
