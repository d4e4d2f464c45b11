/**
 * The pull cursor, opaque to the engine. Pipedrive's `update_time` has one-second resolution and
 * `updated_since` is inclusive (getPersons docs), so the cursor keeps the last second delivered
 * (`since`) with a content hash per record delivered at it (`seen`): the next pull re-reads that
 * second and skips what it already delivered unchanged, yet still sees a same-second edit.
 * While one query is paged, `page` holds Pipedrive's own `next_cursor` and `hw`/`hwSeen` collect
 * the new high-water second.
 */
import { z } from 'zod';
import { CrmhubError } from '../../src/connector-kit/errors.ts';

const pullCursorSchema = z.object({
  since: z.string().nullable(),
  seen: z.record(z.string(), z.string()),
  page: z.string().nullable(),
  hw: z.string().optional(),
  hwSeen: z.record(z.string(), z.string()).optional(),
  /** A full pass (ordered by id) in progress; `startedAt` is where pulls go on after it. */
  full: z.literal(true).optional(),
  startedAt: z.string().optional(),
});
export type PullCursor = z.infer<typeof pullCursorSchema>;

export function encodePullCursor(cursor: PullCursor): string {
  return JSON.stringify({ v: 1, ...cursor });
}

export function decodePullCursor(raw: string): PullCursor {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = null;
  }
  const parsed = pullCursorSchema.safeParse(json);
  if (!parsed.success) {
    throw new CrmhubError('internal', 'Pipedrive: stored cursor is not one this connector wrote', { code: 'PIPEDRIVE_BAD_CURSOR', context: { connector: 'pipedrive' } });
  }
  return parsed.data;
}
