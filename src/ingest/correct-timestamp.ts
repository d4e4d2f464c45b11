/**
 * Clock-skew correction of client event times, as Segment does it
 * (https://segment.com/docs/connections/spec/common/#clock-skew): the device clock may be wrong,
 * but the interval between `timestamp` and `sentAt` is measured on that same clock, so
 * `receivedAt − (sentAt − timestamp)` is the event time on the server's clock.
 */

export interface ClientTimes {
  /** When the event happened, device clock (ISO-8601); null when the client sent none. */
  timestamp: string | null;
  /** When the client sent the request, device clock (ISO-8601); null when absent. */
  sentAt: string | null;
  /** When the server received the request (ISO-8601, server clock). */
  receivedAt: string;
}

/**
 * The corrected event time as ISO-8601 (UTC, ms precision).
 * - `timestamp` and `sentAt` → `receivedAt − (sentAt − timestamp)`;
 * - only `timestamp` → `timestamp` (nothing to correct it with);
 * - neither → `receivedAt`.
 * A result later than `receivedAt` (a `timestamp` after `sentAt`) is clamped to `receivedAt`: an
 * event cannot have happened after it reached us.
 */
export function correctTimestamp(times: ClientTimes): string {
  const received = Date.parse(times.receivedAt);
  const timestamp = times.timestamp === null ? Number.NaN : Date.parse(times.timestamp);
  if (Number.isNaN(timestamp)) return new Date(received).toISOString();
  const sentAt = times.sentAt === null ? Number.NaN : Date.parse(times.sentAt);
  const corrected = Number.isNaN(sentAt) ? timestamp : received - (sentAt - timestamp);
  return new Date(Math.min(corrected, received)).toISOString();
}
