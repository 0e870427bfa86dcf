/** TOTP codes for tests: at a given step, at distinct steps, and codes that are wrong. */
import crypto from 'node:crypto';
import { totpCodeAt } from '../../src/services/totp.js';

/** The code for the step `offsetSteps` after the current one. */
export function totpAt(secret: string, offsetSteps = 0): string {
  return totpCodeAt(secret, Date.now() + offsetSteps * 30_000);
}

/**
 * TOTP codes at distinct steps: a step's code is single-use, and so is every earlier
 * step, so hand them out oldest first (from `offset`: previous step, current, next).
 */
export class TotpClock {
  constructor(
    readonly secret: string,
    private offset = -1,
  ) {}
  next(): string {
    if (this.offset > 1) throw new Error('out of TOTP steps within the drift window: use recovery codes');
    return totpAt(this.secret, this.offset++);
  }
}

/** `n` distinct six-digit codes, none valid for `secret` within two steps of now. */
export function wrongTotpCodes(secret: string, n: number, salt = 0): string[] {
  const valid = new Set([-2, -1, 0, 1, 2].map((o) => totpAt(secret, o)));
  const out: string[] = [];
  for (let i = salt; out.length < n; i++) {
    const code = String((i * 7919) % 1_000_000).padStart(6, '0');
    if (!valid.has(code) && !out.includes(code)) out.push(code);
  }
  return out;
}

/** One code that is wrong for `secret` near now (a random one unless `salt` is given). */
export function wrongTotp(secret: string, salt = crypto.randomInt(0, 1_000_000)): string {
  return wrongTotpCodes(secret, 1, salt)[0]!;
}
