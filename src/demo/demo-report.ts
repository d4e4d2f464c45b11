/**
 * What `crmhub demo` found, step by step: the JSON printed by `crmhub demo --json` and what the
 * terminal view renders. Every figure is measured in the run, against the sandboxes.
 */
import type { JsonValue } from '../core/types.ts';

export interface DemoStep {
  name: string;
  ok: boolean;
  /** One line: what was seen, or why the step failed. */
  detail: string;
  durationMs: number;
}

export interface DemoReport {
  /** True when every story step passed (exit 0). */
  ok: boolean;
  durationMs: number;
  steps: DemoStep[];
  unification: {
    /** People in the sample pool. */
    people: number;
    /** Records each CRM held before the sync, and how many the pull read. */
    perCrm: Record<string, { records: number; read: number }>;
    recordsRead: number;
    /** Distinct person profiles the pool's emails resolve to. */
    unifiedProfiles: number;
    /** People whose profile holds the record id of every CRM that has them. */
    fullyLinked: number;
    /** People found in 1, 2 and 3 CRMs before the sync. */
    byCrmCount: Record<string, number>;
  } | null;
  events: { sent: number; identify: number; track: number; page: number; accepted: boolean } | null;
  sync: {
    /** Per connector: records created and updated by the push, calls and ms. */
    perCrm: Record<string, { created: number; updated: number; deadLetters: number }>;
    pendingAfter: number;
    durationMs: number;
  } | null;
  traits: Record<string, { checked: number; matching: number; sample: Record<string, JsonValue> | null }> | null;
  propagation: {
    source: string;
    field: string;
    value: string;
    /** ms from the rep's edit to crmhub's confirmed write in each other CRM. */
    reachedMs: Record<string, number | null>;
    /** Values read back from each CRM afterwards. */
    readBack: Record<string, JsonValue>;
    /** Write calls sent back to the source CRM after its own edit came round (echo): must be 0. */
    echoWrites: number;
  } | null;
  conflict: {
    field: string;
    rule: string;
    profileValue: JsonValue;
    remoteValue: JsonValue;
    resolution: string;
    /** The value every CRM holds in the end. */
    finalValues: Record<string, JsonValue>;
  } | null;
  rateLimit: {
    connector: string;
    limit: string;
    rateLimited: number;
    records: number;
    delivered: number;
    deadLetters: number;
  } | null;
  apiCalls: Record<
    string,
    {
      calls: number;
      /** Pages to read every record (100 per page) + writes at the CRM's largest batch (one per record without batch writes). */
      minimum: number;
      writes: number;
      recordsWritten: number;
      /** Calls the CRM answered 429 during the pull and push (retried; nothing lost). */
      rateLimited: number;
      byRoute: Record<string, number>;
    }
  > | null;
  /** Where things ran (temp folder with the database and crmhub's log). */
  workDir: string;
}
