import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/** Random bytes drawn in bulk: one `randomFillSync` per 4 KiB instead of a crypto call per id. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

/**
 * A sortable unique id: `<prefix>_` + 9 base-36 chars of milliseconds + a 4-char in-millisecond
 * counter + 12 random hex chars. Ids made later in one process sort after earlier ones, which
 * keeps primary-key inserts append-only (index locality) and gives the outbox a stable order.
 */
export function newId(prefix: string): string {
  const now = Date.now();
  if (now === lastMs) counter += 1;
  else {
    lastMs = now;
    counter = 0;
  }
  const time = now.toString(36).padStart(9, '0');
  const seq = counter.toString(36).padStart(4, '0');
  return `${prefix}_${time}${seq}${randomHex(6)}`;
}
