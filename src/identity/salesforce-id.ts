const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/**
 * Salesforce record ids come as 15-character case-sensitive ids (UI, reports) or 18-character
 * case-insensitive ones (API). The 3 extra characters encode, per 5-character chunk, which
 * characters are upper case, so both forms of one record normalise to the same 18-char id.
 * An 18-char id whose case was lost (lower-cased by some tool) gets its case back from the suffix.
 * Returns null when `raw` is not an id of either length.
 */
export function toSalesforceId18(raw: string): string | null {
  if (!/^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/.test(raw)) return null;
  let base = raw.slice(0, 15);
  if (raw.length === 18) {
    let restored = '';
    for (let chunk = 0; chunk < 3; chunk += 1) {
      const bits = SUFFIX_ALPHABET.indexOf(raw.charAt(15 + chunk).toUpperCase());
      if (bits < 0) return null;
      for (let i = 0; i < 5; i += 1) {
        const c = base.charAt(chunk * 5 + i);
        restored += (bits & (1 << i)) !== 0 ? c.toUpperCase() : c.toLowerCase();
      }
    }
    base = restored;
  }
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk += 1) {
    let bits = 0;
    for (let i = 0; i < 5; i += 1) {
      const c = base.charAt(chunk * 5 + i);
      if (c >= 'A' && c <= 'Z') bits |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET.charAt(bits);
  }
  return base + suffix;
}
