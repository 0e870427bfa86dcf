/** The form an email address is matched in (contract: NFKC, trimmed, lower-cased). */
export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

/** A deliberately simple shape check: one @, something on each side, no spaces or controls. */
export function looksLikeEmail(email: string): boolean {
  return email.length <= 254 && /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u.test(email);
}
