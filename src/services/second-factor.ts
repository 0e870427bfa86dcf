/**
 * Checking a second-factor code: TOTP (with replay protection) or a recovery code
 * (single use), under the account-wide lockout and, during login, the per-session limit.
 * Used by login verification and step-up alike, so both obey the same limits.
 */
import { InvalidCodeError, TooManyAttemptsError } from '../core/errors.js';
import type { AuthMethod } from '../core/session-state.js';
import type { FactorStore, RecoveryCodeStore } from '../store/factors.js';
import type { RequestContext } from './context.js';
import type { KeyedHasher, SecretBox } from './keys.js';
import { MFA_ATTEMPTS_PER_PENDING_SESSION, type Limits } from './limits.js';
import { recoveryCodeHashes } from './recovery-codes.js';
import type { SecurityLog } from './security-log.js';
import type { SessionService } from './sessions.js';
import { matchTotpStep } from './totp.js';

export type CodeMethod = 'totp' | 'recovery_code' | 'webauthn';

/** Checks a WebAuthn assertion (src/services/webauthn.ts); null when not acceptable. */
export interface AssertionChecker {
  check(userId: string, sessionId: string, response: unknown, ctx: RequestContext): Promise<AuthMethod[] | null>;
}

export interface CodeCheck {
  userId: string;
  method: CodeMethod;
  code: string;
  /** Set during login: the pending session whose attempts are counted and revoked after five. */
  pendingSessionId?: string;
  /** The session the WebAuthn challenge was issued to (login or step-up). */
  sessionId?: string;
  /** A WebAuthn assertion (method `webauthn`). */
  response?: unknown;
}

/** The AAD that binds an encrypted TOTP secret to its factor row. */
export function totpSecretContext(factorId: string): string {
  return `factor:${factorId}`;
}

export class SecondFactorVerifier {
  constructor(
    private readonly factors: FactorStore,
    private readonly recoveryCodes: RecoveryCodeStore,
    private readonly box: SecretBox,
    private readonly hasher: KeyedHasher,
    private readonly limits: Limits,
    private readonly sessions: SessionService,
    private readonly log: SecurityLog,
    /** Passkey assertions; null where WebAuthn is not offered. */
    private readonly assertions: AssertionChecker | null,
  ) {}

  /** Resolves with the amr values for the verified method, or throws. */
  async verify(check: CodeCheck, ctx: RequestContext): Promise<AuthMethod[]> {
    let sessionAttempt = 0;
    if (check.pendingSessionId) {
      const attempt = await this.sessions.reserveMfaAttempt(check.pendingSessionId, MFA_ATTEMPTS_PER_PENDING_SESSION);
      if (attempt === null) {
        await this.sessions.revokePending(check.pendingSessionId);
        throw new TooManyAttemptsError(1, 'Too many wrong codes; sign in again.');
      }
      sessionAttempt = attempt;
    }

    const reservation = await this.limits.mfaPerAccount.reserve(check.userId);
    if (!reservation.allowed) {
      // account.locked was recorded by the failure that started the lockout (below).
      throw new TooManyAttemptsError(reservation.retryAfterSeconds, 'Second-factor checks for this account are locked for a while.');
    }

    const attempt = reservation.attempt;
    let lockedFor: number | null = null;
    try {
      const amr = await this.checkCode(check, ctx);
      if (amr) {
        await attempt.succeeded();
        if (check.method === 'recovery_code') {
          const remaining = await this.recoveryCodes.remaining(check.userId);
          await this.log.record('mfa.recovery_code_used', check.userId, ctx, { remaining });
        }
        return amr;
      }
      await this.log.record('mfa.failed', check.userId, ctx, { method: check.method });
      // Exactly one failure reaches the limit (settled atomically): it starts the lockout
      // and records account.locked, once per lockout however many run in parallel.
      lockedFor = await attempt.failed();
    } finally {
      await attempt.release();
    }
    if (lockedFor !== null) await this.log.record('account.locked', check.userId, ctx, { check: 'second_factor', seconds: lockedFor });
    if (check.pendingSessionId && sessionAttempt >= MFA_ATTEMPTS_PER_PENDING_SESSION) {
      await this.sessions.revokePending(check.pendingSessionId);
      throw new TooManyAttemptsError(lockedFor ?? 1, 'Too many wrong codes; sign in again.');
    }
    throw new InvalidCodeError();
  }

  private async checkCode(check: CodeCheck, ctx: RequestContext): Promise<AuthMethod[] | null> {
    if (check.method === 'webauthn') {
      const sessionId = check.sessionId ?? check.pendingSessionId;
      if (!this.assertions || !sessionId) return null;
      return this.assertions.check(check.userId, sessionId, check.response, ctx);
    }
    return (await this.checkOneTimeCode(check, ctx.now)) ? ['otp'] : null;
  }

  private async checkOneTimeCode(check: CodeCheck, now: number): Promise<boolean> {
    if (check.method === 'recovery_code') {
      // Codes issued before a key rotation are stored under the previous key (keys.ts).
      for (const codeHash of recoveryCodeHashes(this.hasher, check.code)) {
        if (await this.recoveryCodes.consume(check.userId, codeHash, now)) return true;
      }
      return false;
    }
    const code = check.code.replace(/\s/g, '');
    for (const factor of await this.factors.listConfirmed(check.userId)) {
      if (factor.type !== 'totp' || !factor.secret_enc) continue;
      const secret = this.box.decrypt(factor.secret_enc, totpSecretContext(factor.id));
      const step = matchTotpStep(secret, code, now);
      // A matching code of an already-used (or earlier) step is a replay: refused.
      if (step !== null && (await this.factors.claimTotpStep(factor.id, step))) return true;
    }
    return false;
  }
}
