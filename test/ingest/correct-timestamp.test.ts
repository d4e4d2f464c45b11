import { describe, expect, it } from 'vitest';
import { correctTimestamp } from '../../src/ingest/correct-timestamp.ts';

describe('correctTimestamp', () => {
  it('moves the client time onto the server clock: receivedAt − (sentAt − timestamp)', () => {
    // Device clock 1 hour slow: event 10 s before sending.
    expect(
      correctTimestamp({ timestamp: '2024-05-01T09:00:00.000Z', sentAt: '2024-05-01T09:00:10.000Z', receivedAt: '2024-05-01T10:00:11.000Z' }),
    ).toBe('2024-05-01T10:00:01.000Z');
  });

  it('uses the timestamp as is without sentAt, and receivedAt without either', () => {
    expect(correctTimestamp({ timestamp: '2024-05-01T09:00:00Z', sentAt: null, receivedAt: '2024-05-01T10:00:00Z' })).toBe('2024-05-01T09:00:00.000Z');
    expect(correctTimestamp({ timestamp: null, sentAt: '2024-05-01T09:00:00Z', receivedAt: '2024-05-01T10:00:00Z' })).toBe('2024-05-01T10:00:00.000Z');
  });

  it('never returns a time after receivedAt', () => {
    expect(correctTimestamp({ timestamp: '2024-05-01T09:00:30Z', sentAt: '2024-05-01T09:00:00Z', receivedAt: '2024-05-01T10:00:00Z' })).toBe(
      '2024-05-01T10:00:00.000Z',
    );
  });

  it('handles time-zone offsets', () => {
    expect(correctTimestamp({ timestamp: '2024-05-01T11:00:00+02:00', sentAt: '2024-05-01T11:00:05+02:00', receivedAt: '2024-05-01T09:00:05Z' })).toBe(
      '2024-05-01T09:00:00.000Z',
    );
  });
});
