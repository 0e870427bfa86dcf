/**
 * Enrolling and removing second factors, and recovery codes. Each change keeps
 * users.factor_methods (what the gate reads) in step, in the same transaction.
 */
import type { Kysely } from 'kysely';
import { InvalidCodeError, InvalidRequestError, TooManyAttemptsError } from '../core/errors.js';
import { completeSecondFactor } from '../core/session-state.js';
import type { FactorStore, RecoveryCodeStore } from '../store/factors.js';
import type { Database } from '../store/schema.js';
import type { RequestContext } from './context.js';
import { newId, type KeyedHasher, type SecretBox } from './keys.js';
import type { FailureLimiter } from './limits.js';
import { removeFactor, settleFactorAdded } from './factor-changes.js';
import { issueRecoveryCodes } from './recovery-codes.js';
import { totpSecretContext } from './second-factor.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession, IssuedSession, SessionService } from './sessions.js';
import { matchTotpStep, newTotpSecret, totpQrSvg, totpUri } from './totp.js';

export interface TotpSetup {
  factorId: string;
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

export interface FactorSummary {
  id: string;
  type: string;
  createdAt: string;
}

export class FactorService {
  /** Run after a confirmed factor is removed (trusted devices are revoked here). */
  readonly factorRemovedHooks: Array<(userId: string) => Promise<void>> = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly factors: FactorStore,
    private readonly recoveryCodes: RecoveryCodeStore,
    private readonly box: SecretBox,
    private readonly hasher: KeyedHasher,
    private readonly sessions: SessionService,
    private readonly log: SecurityLog,
    private readonly options: {
      issuer: string;
      mfaRequired: 'off' | 'all';
      /**
       * The account's second-factor limiter (Limits.mfaPerAccount): a confirmation checks a
       * code too, so wrong ones count and lock exactly like login and step-up codes.
       */
      codeLimit: FailureLimiter;
    },
  ) {}

  async list(userId: string): Promise<{ factors: FactorSummary[]; recoveryCodesRemaining: number }> {
    const rows = await this.factors.listConfirmed(userId);
    return {
      factors: rows.map((f) => ({ id: f.id, type: f.type, createdAt: new Date(f.created_at).toISOString() })),
      recoveryCodesRemaining: await this.recoveryCodes.remaining(userId),
    };
  }

  /** Starts a TOTP enrolment; the factor stays inactive until confirmed with a code. */
  async setupTotp(session: ActiveSession, ctx: RequestContext): Promise<TotpSetup> {
    await this.factors.deleteUnconfirmed(session.userId, 'totp');
    const factorId = newId();
    const secret = newTotpSecret();
    await this.factors.insert({
      id: factorId,
      user_id: session.userId,
      type: 'totp',
      secret_enc: this.box.encrypt(secret, totpSecretContext(factorId)),
      last_used_step: null,
      confirmed_at: null,
      created_at: ctx.now,
      label: null,
    });
    const otpauthUri = totpUri(secret, this.options.issuer, session.email);
    return { factorId, secret, otpauthUri, qrSvg: await totpQrSvg(otpauthUri) };
  }

  /**
   * Activates the pending TOTP set-up. The session counts as having just verified a
   * second factor (its token is replaced) and the confirming code counts as used.
   */
  async confirmTotp(
    session: ActiveSession,
    code: string,
    ctx: RequestContext,
  ): Promise<{ recoveryCodes: string[] | null; session: IssuedSession }> {
    const pending = await this.factors.latestUnconfirmed(session.userId, 'totp');
    if (!pending?.secret_enc) throw new InvalidRequestError('Start TOTP setup first.', [{ path: 'code', message: 'no TOTP setup in progress' }]);
    const secret = this.box.decrypt(pending.secret_enc, totpSecretContext(pending.id));
    // Reserve before checking: any session of the account may call this, so unbounded
    // guessing would let one confirm an enrolment in progress (and become fresh).
    const limiter = this.options.codeLimit;
    const reservation = await limiter.reserve(session.userId);
    if (!reservation.allowed) {
      throw new TooManyAttemptsError(reservation.retryAfterSeconds, 'Second-factor checks for this account are locked for a while.');
    }
    const step = matchTotpStep(secret, code.replace(/\s/g, ''), ctx.now);
    if (step === null) {
      const seconds = await reservation.attempt.failed();
      if (seconds !== null) await this.log.record('account.locked', session.userId, ctx, { check: 'second_factor', seconds });
      throw new InvalidCodeError();
    }
    // A right code ends the run of failures (and settles this attempt) whatever happens next.
    await reservation.attempt.succeeded();

    // Recovery codes come with the account's first factor only.
    const hadFactor = session.factorMethods.length > 0;
    const recoveryCodes = await this.db.transaction().execute(async (trx) => {
      if (!(await this.factors.confirm(trx, pending.id, ctx.now, step))) throw new InvalidCodeError();
      const codes = await settleFactorAdded(this.changeDeps(), trx, session.userId, hadFactor, ctx.now);
      await this.log.record('mfa.factor_added', session.userId, ctx, { type: 'totp', factorId: pending.id }, trx);
      return codes;
    });
    const issued = await this.sessions.advance(session, completeSecondFactor(session.facts, ['otp'], ctx.now, this.sessions.times));
    return { recoveryCodes, session: issued };
  }

  async deleteTotp(session: ActiveSession, factorId: string, ctx: RequestContext): Promise<void> {
    await removeFactor(this.changeDeps(), session, factorId, 'totp', ctx);
  }

  private changeDeps() {
    const { db, factors, recoveryCodes, log, hasher } = this;
    return { db, factors, recoveryCodes, log, hasher, mfaRequired: this.options.mfaRequired, hooks: this.factorRemovedHooks };
  }

  async regenerateRecoveryCodes(session: ActiveSession, ctx: RequestContext): Promise<string[]> {
    if (session.factorMethods.length === 0) {
      throw new InvalidRequestError('Add a second factor before creating recovery codes.', [{ path: '', message: 'no second factor' }]);
    }
    const issued = issueRecoveryCodes(this.hasher);
    await this.db.transaction().execute(async (trx) => {
      await this.recoveryCodes.replaceAll(trx, session.userId, issued.rows, ctx.now);
      await this.log.record('mfa.recovery_codes_regenerated', session.userId, ctx, {}, trx);
    });
    return issued.display;
  }
}
