/**
 * Constant-time comparison of secrets. Both sides are hashed first (SHA-256), so the comparison
 * takes the same time whatever the lengths — `timingSafeEqual` alone throws on unequal lengths,
 * and branching on the length would leak it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** True when `given` equals `expected`, compared over raw bytes in constant time. */
export function safeEqual(given: string | Buffer, expected: string | Buffer): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** True when `given` equals any of `expected`; every candidate is compared (no early exit). */
export function safeEqualAny(given: string | Buffer, expected: readonly (string | Buffer)[]): boolean {
  let found = false;
  for (const candidate of expected) found = safeEqual(given, candidate) || found;
  return found;
}
