/**
 * Sign-up, login, second-factor verification, step-up, re-authentication and logout.
 * Every path that establishes or raises a session goes through the core state machine.
 */
import {
  EmailTakenError,
  InvalidCredentialsError,
  InvalidRequestError,
  NoPendingAuthenticationError,
  TooManyAttemptsError,
} from '../core/errors.js';
import { looksLikeEmail, normaliseEmail } from '../core/email.js';
import { completeSecondFactor, recordPassword, startSession, type FirstFactor } from '../core/session-state.js';
import type { UserStore } from '../store/users.js';
import type { RequestContext } from './context.js';
import { newId } from './keys.js';
import type { Limits, Reservation } from './limits.js';
import { assertAcceptablePassword, type PasswordHasher } from './passwords.js';
import type { CodeMethod, SecondFactorVerifier } from './second-factor.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession, IssuedSession, SessionService, SessionTransport } from './sessions.js';

export interface PublicUser {
  id: string;
  email: string;
}

export type LoginOutcome = 'authenticated' | 'mfa_required' | 'enrollment_required';

export interface LoginResult {
  outcome: LoginOutcome;
  user: PublicUser;
  session: IssuedSession;
  /** Second-factor methods to offer when the outcome is mfa_required. */
  methods: string[];
}

export interface AuthPolicy {
  mfaRequired: 'off' | 'all';
  pendingTtlSeconds: number;
}

/**
 * Decides whether a trusted-device cookie may stand in for the second factor at this
 * login. The default trusts nothing.
 */
export interface DeviceTrust {
  isTrusted(userId: string, deviceToken: string | undefined, now: number): Promise<boolean>;
}

const trustNothing: DeviceTrust = { isTrusted: async () => false };

export class AuthService {
  constructor(
    private readonly users: UserStore,
    private readonly sessions: SessionService,
    private readonly passwords: PasswordHasher,
    private readonly verifier: SecondFactorVerifier,
    private readonly limits: Limits,
    private readonly log: SecurityLog,
    private readonly policy: AuthPolicy,
    private readonly deviceTrust: DeviceTrust = trustNothing,
  ) {}

  async signup(
    input: { email: string; password: string; transport: SessionTransport },
    ctx: RequestContext,
  ): Promise<LoginResult> {
    const email = input.email.normalize('NFKC').trim();
    if (!looksLikeEmail(email)) throw new InvalidRequestError('Enter a valid email address.', [{ path: 'email', message: 'not an email address' }]);
    assertAcceptablePassword(input.password);
    const emailNormalized = normaliseEmail(email);
    if (await this.users.findByNormalizedEmail(emailNormalized)) throw new EmailTakenError();
    const user = { id: newId(), email, email_normalized: emailNormalized, created_at: ctx.now, updated_at: ctx.now };
    const inserted = await this.users.insert({ ...user, password_hash: await this.passwords.hash(input.password) });
    if (!inserted) throw new EmailTakenError();
    await this.log.record('account.created', user.id, ctx);
    return this.establish({ id: user.id, email }, [], { kind: 'password' }, ctx, input.transport, false);
  }

  async login(
    input: { email: string; password: string; transport: SessionTransport; remember: boolean; deviceToken?: string },
    ctx: RequestContext,
  ): Promise<LoginResult> {
    const emailKey = normaliseEmail(input.email);
    // Length is checked before hashing, so a megabyte "password" costs nothing.
    if (input.password.length > 1024 || emailKey.length > 254) throw new InvalidCredentialsError();

    const byAddress = await this.limits.passwordPerAddress.reserve(ctx.ip);
    if (!byAddress.allowed) throw new TooManyAttemptsError(byAddress.retryAfterSeconds);
    const byAccount = await this.limits.passwordPerAccount.reserve(emailKey);
    const user = await this.users.findByNormalizedEmail(emailKey);
    if (!byAccount.allowed) throw new TooManyAttemptsError(byAccount.retryAfterSeconds);

    const valid = user ? await this.passwords.verify(user.password_hash, input.password) : await this.passwords.verifyDummy(input.password);
    if (!user || !valid) {
      if (user) await this.log.record('login.failed', user.id, ctx);
      await this.lockIfLast(byAccount, emailKey, user?.id ?? null, ctx);
      throw new InvalidCredentialsError();
    }

    await this.limits.passwordPerAccount.reset(emailKey);
    await this.limits.passwordPerAddress.refund(ctx.ip);
    if (this.passwords.needsRehash(user.password_hash)) {
      await this.users.updatePasswordHash(user.id, await this.passwords.hash(input.password), ctx.now);
    }
    const factorMethods = JSON.parse(user.factor_methods) as string[];
    const trusted = factorMethods.length > 0 && (await this.deviceTrust.isTrusted(user.id, input.deviceToken, ctx.now));
    const factor: FirstFactor = trusted ? { kind: 'password_on_trusted_device' } : { kind: 'password' };
    return this.establish({ id: user.id, email: user.email }, factorMethods, factor, ctx, input.transport, input.remember);
  }

  /** Opens a new session after a first factor, in whatever state the state machine says. */
  async establish(
    user: PublicUser,
    factorMethods: string[],
    factor: FirstFactor,
    ctx: RequestContext,
    transport: SessionTransport,
    remember: boolean,
  ): Promise<LoginResult> {
    const facts = startSession(
      { hasSecondFactor: factorMethods.length > 0, mfaPolicy: this.policy.mfaRequired },
      factor,
      ctx.now,
      this.sessions.times,
    );
    const session = await this.sessions.create(user.id, facts, ctx, { transport, remember });
    const outcome: LoginOutcome =
      facts.state === 'full' ? 'authenticated' : facts.state === 'pending' ? 'mfa_required' : 'enrollment_required';
    if (outcome === 'authenticated') await this.log.record('login.succeeded', user.id, ctx, { amr: facts.amr });
    return { outcome, user, session, methods: factorMethods };
  }

  /** pending → full. */
  /** `response` is the WebAuthn assertion when `method` is `webauthn` (then `code` is unused). */
  async verifySecondFactor(session: ActiveSession, method: CodeMethod, code: string, ctx: RequestContext, response?: unknown): Promise<IssuedSession> {
    if (session.facts.state !== 'pending') throw new NoPendingAuthenticationError();
    const amr = await this.verifier.verify({ userId: session.userId, method, code, pendingSessionId: session.id, sessionId: session.id, response }, ctx);
    const next = completeSecondFactor(session.facts, amr, ctx.now, this.sessions.times);
    const issued = await this.sessions.advance(session, next);
    await this.log.record('mfa.verified', session.userId, ctx, { method });
    await this.log.record('login.succeeded', session.userId, ctx, { amr: next.amr });
    return issued;
  }

  /** A fresh second-factor check inside a full session. */
  async stepUp(session: ActiveSession, method: CodeMethod, code: string, ctx: RequestContext, response?: unknown): Promise<IssuedSession> {
    const amr = await this.verifier.verify({ userId: session.userId, method, code, sessionId: session.id, response }, ctx);
    const issued = await this.sessions.advance(session, completeSecondFactor(session.facts, amr, ctx.now, this.sessions.times));
    await this.log.record('mfa.step_up', session.userId, ctx, { method });
    return issued;
  }

  /** A fresh password check inside a full session. */
  async reauthenticate(session: ActiveSession, password: string, ctx: RequestContext): Promise<IssuedSession> {
    const reservation = await this.limits.passwordPerAccount.reserve(normaliseEmail(session.email));
    if (!reservation.allowed) throw new TooManyAttemptsError(reservation.retryAfterSeconds);
    const user = await this.users.findById(session.userId);
    if (!user || password.length > 1024 || !(await this.passwords.verify(user.password_hash, password))) {
      await this.lockIfLast(reservation, normaliseEmail(session.email), session.userId, ctx);
      throw new InvalidCredentialsError();
    }
    await this.limits.passwordPerAccount.reset(normaliseEmail(session.email));
    return this.sessions.advance(session, recordPassword(session.facts, ctx.now));
  }

  /**
   * The one failure that used up the account's last password attempt starts the lockout
   * and records account.locked (once per lockout, also under parallel attempts).
   */
  private async lockIfLast(reservation: Reservation, emailKey: string, userId: string | null, ctx: RequestContext): Promise<void> {
    if (!this.limits.passwordPerAccount.isLast(reservation)) return;
    const seconds = await this.limits.passwordPerAccount.lock(emailKey);
    if (userId) await this.log.record('account.locked', userId, ctx, { check: 'password', seconds });
  }

  async logout(session: ActiveSession | null): Promise<void> {
    if (session) await this.sessions.revoke(session.id);
  }
}
