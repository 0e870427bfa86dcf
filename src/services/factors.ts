/**
 * TOTP enrolment and removal, the account's factor list and recovery codes. Set-ups and
 * confirmations follow the factor lifecycle (core/factor-lifecycle.ts) through
 * factor-changes.ts, shared with passkeys.
 */
import { InvalidCodeError, InvalidRequestError, NoPendingSetupError, TooManyAttemptsError } from '../core/errors.js';
import { newSetup } from '../core/factor-lifecycle.js';
import type { UserStore } from '../store/users.js';
import type { RequestContext } from './context.js';
import { confirmFactor, removeFactor, type ConfirmedFactor, type FactorChangeDeps } from './factor-changes.js';
import { newId, type SecretBox } from './keys.js';
import type { FailureLimiter } from './limits.js';
import { issueRecoveryCodes } from './recovery-codes.js';
import { totpSecretContext } from './second-factor.js';
import { AccountGoneError } from './account-changes.js';
import type { ActiveSession } from './sessions.js';
import { matchTotpStep, newTotpSecret, totpQrSvg, totpUri } from './totp.js';

export interface TotpSetup {
  factorId: string;
  secret: string;
  otpauthUri: string;
  qrSvg: string;
  expiresAt: string;
}

export interface FactorSummary {
  id: string;
  type: string;
  createdAt: string;
}

/** An unconfirmed set-up of the current session (I3): listed so the owner sees it. */
export interface PendingSetupSummary {
  id: string;
  type: string;
  createdAt: string;
  expiresAt: string;
}

export interface FactorServiceOptions {
  issuer: string;
  /**
   * The account's second-factor limiter (Limits.mfaPerAccount): a confirmation checks a
   * code too, so wrong ones count and lock exactly like login and step-up codes.
   */
  codeLimit: FailureLimiter;
}

export class FactorService {
  constructor(
    private readonly changes: FactorChangeDeps,
    private readonly users: UserStore,
    private readonly box: SecretBox,
    private readonly options: FactorServiceOptions,
  ) {}

  async list(
    session: Pick<ActiveSession, 'id' | 'userId'>,
    now: number,
  ): Promise<{ factors: FactorSummary[]; recoveryCodesRemaining: number; pendingSetups: PendingSetupSummary[] }> {
    const iso = (t: number) => new Date(Number(t)).toISOString();
    const rows = await this.changes.factors.listConfirmed(session.userId);
    const setups = await this.changes.setups.listForSession(session.id, now);
    return {
      factors: rows.map((f) => ({ id: f.id, type: f.type, createdAt: iso(f.created_at) })),
      recoveryCodesRemaining: await this.changes.recoveryCodes.remaining(session.userId),
      pendingSetups: setups.map((s) => ({ id: s.id, type: s.type, createdAt: iso(s.created_at), expiresAt: iso(s.expires_at) })),
    };
  }

  /**
   * Starts a TOTP enrolment in this session. The secret is inactive until this session
   * confirms it within SETUP_TTL_SECONDS and before any security change of the account.
   */
  async setupTotp(session: ActiveSession, ctx: RequestContext): Promise<TotpSetup> {
    const epoch = await this.users.epochOf(session.userId);
    if (epoch === undefined) throw new NoPendingSetupError();
    const factorId = newId();
    const secret = newTotpSecret();
    const setup = newSetup(session.id, epoch, ctx.now);
    const stored = await this.changes.setups.replace({
      id: factorId,
      user_id: session.userId,
      session_id: session.id,
      type: 'totp',
      secret_enc: this.box.encrypt(secret, totpSecretContext(factorId)),
      challenge_hash: null,
      account_epoch: setup.accountEpoch,
      created_at: ctx.now,
      expires_at: setup.expiresAt,
    });
    // The session ended while the set-up was being made (a concurrent logout).
    if (!stored) throw new AccountGoneError();
    const otpauthUri = totpUri(secret, this.options.issuer, session.email);
    return { factorId, secret, otpauthUri, qrSvg: await totpQrSvg(otpauthUri), expiresAt: new Date(setup.expiresAt).toISOString() };
  }

  /**
   * Activates this session's TOTP set-up with a code of it. The account's first factor
   * makes the session full and fresh (its token is replaced) and comes with recovery
   * codes; an additional factor needs a fresh existing factor and changes no freshness.
   */
  async confirmTotp(session: ActiveSession, code: string, ctx: RequestContext): Promise<ConfirmedFactor> {
    const setup = await this.changes.setups.findLive(session.id, 'totp', ctx.now);
    if (!setup?.secret_enc) throw new NoPendingSetupError();
    const secret = this.box.decrypt(setup.secret_enc, totpSecretContext(setup.id));
    // Reserve before checking, under the account's code limit like every other code check.
    const limiter = this.options.codeLimit;
    const reservation = await limiter.reserve(session.userId);
    if (!reservation.allowed) {
      throw new TooManyAttemptsError(reservation.retryAfterSeconds, 'Second-factor checks for this account are locked for a while.');
    }
    const step = matchTotpStep(secret, code.replace(/\s/g, ''), ctx.now);
    if (step === null) {
      const seconds = await reservation.attempt.failed();
      if (seconds !== null) await this.changes.log.record('account.locked', session.userId, ctx, { check: 'second_factor', seconds });
      throw new InvalidCodeError();
    }
    // A right code ends the run of failures only once the confirmation is decided: a void or
    // refused confirmation releases its place without counting either way.
    const confirmed = await confirmFactor(this.changes, session, setup, { type: 'totp', amr: ['otp'], details: {} }, ctx, (trx) =>
      this.changes.factors.insert(trx, {
        id: setup.id,
        user_id: session.userId,
        type: 'totp',
        secret_enc: setup.secret_enc,
        // The confirming code counts as used.
        last_used_step: step,
        confirmed_at: ctx.now,
        created_at: ctx.now,
        label: null,
      }),
    ).catch(async (err: unknown) => {
      await reservation.attempt.release();
      throw err;
    });
    await reservation.attempt.succeeded();
    return confirmed;
  }

  async deleteTotp(session: ActiveSession, factorId: string, ctx: RequestContext): Promise<void> {
    await removeFactor(this.changes, session, factorId, 'totp', ctx);
  }

  /** New recovery codes; under the account lock, so they never outlive the last factor. */
  async regenerateRecoveryCodes(session: ActiveSession, ctx: RequestContext): Promise<string[]> {
    const issued = issueRecoveryCodes(this.changes.hasher);
    await this.changes.accounts.apply(session.userId, ctx.now, {
      actingSession: session,
      voidsSetups: false,
      run: async (trx, account) => {
        if (account.factorMethods.length === 0) {
          throw new InvalidRequestError('Add a second factor before creating recovery codes.', [{ path: '', message: 'no second factor' }]);
        }
        await this.changes.recoveryCodes.replaceAll(trx, session.userId, issued.rows, ctx.now);
        await this.changes.log.record('mfa.recovery_codes_regenerated', session.userId, ctx, {}, trx);
      },
    });
    return issued.display;
  }
}
