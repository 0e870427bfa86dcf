/**
 * Recovery codes: 16 Crockford base32 characters (80 bits), shown as four groups of four.
 * Users may type them in any letter case, with or without separators, and with the
 * look-alike letters Crockford base32 folds (I, L → 1; O → 0).
 */

export const RECOVERY_CODE_COUNT = 10;
export const RECOVERY_CODE_LENGTH = 16;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Turns 10 random bytes (80 bits) into a code's canonical form. */
export function encodeRecoveryCode(randomBytes: Uint8Array): string {
  if (randomBytes.length * 8 < RECOVERY_CODE_LENGTH * 5) throw new RangeError('need 80 random bits');
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of randomBytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < RECOVERY_CODE_LENGTH) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** How a code is shown to the user: XXXX-XXXX-XXXX-XXXX. */
export function formatRecoveryCode(canonical: string): string {
  return canonical.match(/.{1,4}/g)!.join('-');
}

/** Canonical form of what a user typed, or null if it cannot be a recovery code. */
export function normaliseRecoveryCode(input: string): string | null {
  const cleaned = input
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\-_.]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  if (cleaned.length !== RECOVERY_CODE_LENGTH) return null;
  for (const ch of cleaned) if (!ALPHABET.includes(ch)) return null;
  return cleaned;
}
