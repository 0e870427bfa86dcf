import crypto from 'node:crypto';
import { encodeRecoveryCode, formatRecoveryCode, normaliseRecoveryCode, RECOVERY_CODE_COUNT } from '../core/recovery-code-format.js';
import type { KeyedHasher } from './keys.js';
import { newId } from './keys.js';

export interface IssuedRecoveryCodes {
  /** Shown to the user once. */
  display: string[];
  /** What is stored: keyed hashes only. */
  rows: { id: string; code_hash: string }[];
}

export function issueRecoveryCodes(hasher: KeyedHasher): IssuedRecoveryCodes {
  const display: string[] = [];
  const rows: { id: string; code_hash: string }[] = [];
  for (let i = 0; i < RECOVERY_CODE_COUNT; i++) {
    const canonical = encodeRecoveryCode(crypto.randomBytes(10));
    display.push(formatRecoveryCode(canonical));
    rows.push({ id: newId(), code_hash: hasher.hash(canonical) });
  }
  return { display, rows };
}

/** Every stored hash the typed code may have (current key, then previous keys); [] when it cannot be a code. */
export function recoveryCodeHashes(hasher: KeyedHasher, input: string): string[] {
  const canonical = normaliseRecoveryCode(input);
  return canonical === null ? [] : hasher.candidates(canonical);
}
