/**
 * Salesforce record ids: 15 case-sensitive characters (3-character key prefix that names the
 * object, then pod/instance and a counter) plus a 3-character suffix that makes the 18-character
 * form case-insensitive. The suffix algorithm is Salesforce's documented one: for each 5-character
 * chunk, a bit per upper-case letter, mapped onto `A-Z0-5`.
 */

const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The 3-character suffix for a 15-character id. */
export function idSuffix(id15: string): string {
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let flags = 0;
    for (let i = 0; i < 5; i++) {
      const c = id15.charAt(chunk * 5 + i);
      if (c >= 'A' && c <= 'Z') flags |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET.charAt(flags);
  }
  return suffix;
}

/** 18-character form of a 15- or 18-character id; null when it is not id-shaped. */
export function normalizeId(value: string): string | null {
  if (!/^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$/.test(value)) return null;
  const id15 = value.slice(0, 15);
  return id15 + idSuffix(id15);
}

/** Makes ids for one key prefix: `<prefix>` + instance `5g` + 10-digit base-62 counter + suffix. */
export class IdFactory {
  private counter: number;

  constructor(
    private readonly prefix: string,
    start = 0,
  ) {
    if (prefix.length !== 3) throw new TypeError(`key prefix must have 3 characters: ${prefix}`);
    this.counter = start;
  }

  next(): string {
    this.counter++;
    let n = this.counter;
    let digits = '';
    for (let i = 0; i < 10; i++) {
      digits = BASE62.charAt(n % 62) + digits;
      n = Math.floor(n / 62);
    }
    const id15 = `${this.prefix}5g${digits}`;
    return id15 + idSuffix(id15);
  }

  get issued(): number {
    return this.counter;
  }

  set issued(value: number) {
    this.counter = value;
  }
}
