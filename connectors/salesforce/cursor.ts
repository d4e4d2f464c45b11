/**
 * The pull cursor: keyset position (last SystemModstamp + last Id), an optional `nextRecordsUrl`
 * of the query in progress, and where getDeleted last stopped. Stored by the engine verbatim.
 */
import { z } from 'zod';
import { CrmhubError } from '../../src/connector-kit/errors.ts';

const cursorSchema = z.object({
  /** Last SystemModstamp seen (ISO-8601). */
  ts: z.string().optional(),
  /** Last Id at `ts` (tie breaker). */
  id: z.string().optional(),
  /** `nextRecordsUrl` of the running query; its locator expires after ~15 minutes of disuse. */
  next: z.string().optional(),
  /** getDeleted's `latestDateCovered` (ISO-8601). */
  del: z.string().optional(),
  /** This cursor belongs to a full (reconciliation) read. */
  full: z.boolean().optional(),
});
export type PullCursor = z.infer<typeof cursorSchema>;

export function parseCursor(value: string | null): PullCursor {
  if (value === null || value === '') return {};
  try {
    return cursorSchema.parse(JSON.parse(value));
  } catch (cause) {
    throw new CrmhubError('config', 'stored Salesforce cursor is not readable; reset it to pull from the start', {
      code: 'BAD_CURSOR',
      cause,
      context: { connector: 'salesforce' },
    });
  }
}

export function formatCursor(cursor: PullCursor): string {
  return JSON.stringify(cursor);
}
