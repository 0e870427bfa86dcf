/**
 * Password rules (NIST SP 800-63B style): length 8–256, and not one of the commonly used
 * passwords. Length is checked before anything is hashed so huge inputs cost nothing.
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
  if (commonPasswords.has(password.toLowerCase())) {
    throw new WeakPasswordError('This password is too common; choose another.');
  }
}
