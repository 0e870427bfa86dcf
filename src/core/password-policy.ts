/**
 * Password rules (NIST SP 800-63B style): length 8–256, and not one of the commonly used
 * passwords. Length is checked before anything is hashed so huge inputs cost nothing.
 * No composition rules: instead the common-password check also sees through the usual
 * decorations (`Password123!` is `password`) and one character repeated.
 */
import { WeakPasswordError } from './errors.js';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

export function checkPasswordPolicy(password: string, commonPasswords: ReadonlySet<string>): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) {
    throw new WeakPasswordError(`Use at least ${PASSWORD_MIN_LENGTH} characters.`);
  }
  if (length > PASSWORD_MAX_LENGTH) {
    throw new WeakPasswordError(`Use at most ${PASSWORD_MAX_LENGTH} characters.`);
  }
  if (isCommon(password, commonPasswords)) {
    throw new WeakPasswordError('This password is too common; choose another.');
  }
}

function isCommon(password: string, commonPasswords: ReadonlySet<string>): boolean {
  const lower = password.toLowerCase();
  if (commonPasswords.has(lower)) return true;
  // One character over and over ("aaaaaaaa") is as guessable as any list entry.
  if (new Set(lower).size === 1) return true;
  // A listed word with digits and symbols stuck on the end ("Qwerty123!").
  const core = lower.replace(/[\d\W_]+$/u, '');
  return core.length >= 4 && commonPasswords.has(core);
}
