/**
 * Sign-up, login, second-factor verification, step-up, re-authentication and logout.
 * Every path that establishes or raises a session goes through the core state machine.
 */
import { EmailTakenError, InvalidCredentialsError, NoPendingAuthenticationError, TooManyAttemptsError } from '../core/errors.js';
import { normaliseEmail, requireEmail } from '../core/email.js';
import type { SecurityEventName } from '../core/events.js';
import {
  awaitsSecondFactor,
  completeSecondFactor,
  recordPassword,
  startSession,
  type FirstFactor,
  type MfaPolicy,
} from '../core/session-state.js';
import { factorMethodsOf } from '../store/json-columns.js';
import type { UserStore } from '../store/users.js';
import type { RequestContext } from './context.js';
import { newId } from './keys.js';
import type { Attempt, Limits } from './limits.js';
import { assertAcceptablePassword, type PasswordHasher } from './passwords.js';
import type { CodeMethod, SecondFactorVerifier } from './second-factor.js';
import type { SecurityLog } from './security-log.js';
import type { PolicyService } from './policy.js';
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
  /** When a role's grace period for enrolling a second factor ends (reminder), if one runs. */
  enrolmentDueAt: number | null;
}

export interface AuthPolicy {
  mfaRequired: MfaPolicy;
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
    /** Risk signals and MFA by role (services/policy.ts): consulted in `establish` and before every factor check. */
    private readonly signInPolicy?: PolicyService,
  ) {}

  async signup(input: { email: string; password: string; transport: SessionTransport }, ctx: RequestContext): Promise<LoginResult> {
    // The one grammar (core/email.ts): the stored form is the only address mail ever goes to.
    const { address: email, key: emailNormalized } = requireEmail(input.email);
    assertAcceptablePassword(input.password);
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
    // A refused address is a 400 decided by its spelling alone, before any lookup: it says
    // nothing about which accounts exist (no stored address fails the grammar once
    // `gatehouse doctor` is clean).
    const emailKey = requireEmail(input.email).key;
    // Length is checked before hashing, so a megabyte "password" costs nothing.
    if (input.password.length > 1024) throw new InvalidCredentialsError();

    const byAddress = await this.limits.passwordPerAddress.reserve(ctx.ip);
    if (!byAddress.allowed) throw new TooManyAttemptsError(byAddress.retryAfterSeconds);
    const byAccount = await this.limits.passwordPerAccount.reserve(emailKey);
    const user = await this.users.findByNormalizedEmail(emailKey);
    if (!byAccount.allowed) throw new TooManyAttemptsError(byAccount.retryAfterSeconds);

    try {
      const valid = user
        ? await this.passwords.verify(user.password_hash, input.password)
        : await this.passwords.verifyDummy(input.password);
      if (!user || !valid) {
        if (user) await this.log.record('login.failed', user.id, ctx);
        await this.settleFailure(byAccount.attempt, user?.id ?? null, ctx);
        throw new InvalidCredentialsError();
      }
      await byAccount.attempt.succeeded();
    } finally {
      await byAccount.attempt.release();
    }
    await this.limits.passwordPerAddress.refund(ctx.ip);
    let verifiedHash = user.password_hash;
    if (this.passwords.needsRehash(user.password_hash)) {
      // Conditional: never write the checked password over one changed meanwhile.
      const rehashed = await this.passwords.hash(input.password);
      if (await this.users.replacePasswordHash(user.id, user.password_hash, rehashed, ctx.now)) verifiedHash = rehashed;
    }
    const factorMethods = factorMethodsOf(user);
    const trusted = factorMethods.length > 0 && (await this.deviceTrust.isTrusted(user.id, input.deviceToken, ctx.now));
    const factor: FirstFactor = trusted ? { kind: 'password_on_trusted_device' } : { kind: 'password' };
    const result = await this.establish({ id: user.id, email: user.email }, factorMethods, factor, ctx, input.transport, input.remember);
    // A password change or reset that committed while this password was being checked
    // revoked every session but could not see this one: the password checked is no longer
    // the account's. Re-read after the insert: a change committing later deletes the row.
    const current = await this.users.findById(user.id);
    if (current?.password_hash !== verifiedHash) {
      await this.sessions.revoke(result.session.id);
      throw new InvalidCredentialsError();
    }
    return result;
  }

  /** Opens a new session after a first factor, in whatever state the state machine says (after the policy raised what it must). */
  async establish(
    user: PublicUser,
    factorMethods: string[],
    factor: FirstFactor,
    ctx: RequestContext,
    transport: SessionTransport,
    remember: boolean,
  ): Promise<LoginResult> {
    const decided = this.signInPolicy
      ? await this.signInPolicy.decideSignIn(user.id, factorMethods, factor, ctx)
      : {
          account: { hasSecondFactor: factorMethods.length > 0, mfaPolicy: this.policy.mfaRequired },
          factor,
          methods: factorMethods,
          risk: null,
          dueAt: null,
        };
    const account = this.policy.mfaRequired === 'all' ? { ...decided.account, mfaPolicy: 'all' as const } : decided.account;
    const facts = startSession(account, decided.factor, ctx.now, this.sessions.times);
    const outcome: LoginOutcome =
      facts.state === 'full' ? 'authenticated' : facts.state === 'pending' ? 'mfa_required' : 'enrollment_required';
    const risk = decided.risk?.signals ?? [];
    const events: Array<[SecurityEventName, Record<string, unknown>]> = [];
    if (outcome === 'authenticated') events.push(['login.succeeded', { amr: facts.amr, risk }]);
    else if (outcome === 'mfa_required') events.push(['login.challenged', { risk }]);
    if (decided.dueAt !== null && outcome === 'authenticated') {
      events.push(['account.enrolment_reminder', { dueAt: new Date(decided.dueAt).toISOString() }]);
    }
    // The session and its sign-in events: one write transaction.
    const session = await this.log.recordWith(
      (trx) => this.sessions.create(user.id, facts, ctx, { transport, remember, risk: decided.risk }, trx),
      user.id,
      ctx,
      events,
    );
    return { outcome, user, session, methods: decided.methods, enrolmentDueAt: decided.dueAt };
  }

  /** pending → full. */
  /** `response` is the WebAuthn assertion when `method` is `webauthn` (then `code` is unused). */
  async verifySecondFactor(
    session: ActiveSession,
    method: CodeMethod,
    code: string,
    ctx: RequestContext,
    response?: unknown,
  ): Promise<IssuedSession> {
    if (!awaitsSecondFactor(session.facts, session.factorMethods)) throw new NoPendingAuthenticationError();
    this.signInPolicy?.assertMethodCounts(session, method);
    const amr = await this.verifier.verify(
      { userId: session.userId, method, code, pendingSessionId: session.id, sessionId: session.id, response },
      ctx,
    );
    const next = completeSecondFactor(session.facts, amr, ctx.now, this.sessions.times);
    return this.log.recordWith((trx) => this.sessions.advance(session, next, ctx.now, trx), session.userId, ctx, [
      ['mfa.verified', { method }],
      ['login.succeeded', { amr: next.amr }],
    ]);
  }

  /** A fresh second-factor check inside a full session. */
  async stepUp(session: ActiveSession, method: CodeMethod, code: string, ctx: RequestContext, response?: unknown): Promise<IssuedSession> {
    this.signInPolicy?.assertMethodCounts(session, method);
    const amr = await this.verifier.verify({ userId: session.userId, method, code, sessionId: session.id, response }, ctx);
    const issued = await this.sessions.advance(session, completeSecondFactor(session.facts, amr, ctx.now, this.sessions.times), ctx.now);
    await this.log.record('mfa.step_up', session.userId, ctx, { method });
    return issued;
  }

  /** A fresh password check inside a full session. */
  async reauthenticate(session: ActiveSession, password: string, ctx: RequestContext): Promise<IssuedSession> {
    const reservation = await this.limits.passwordPerAccount.reserve(normaliseEmail(session.email));
    if (!reservation.allowed) throw new TooManyAttemptsError(reservation.retryAfterSeconds);
    try {
      const user = await this.users.findById(session.userId);
      if (!user || password.length > 1024 || !(await this.passwords.verify(user.password_hash, password))) {
        await this.settleFailure(reservation.attempt, session.userId, ctx);
        throw new InvalidCredentialsError();
      }
      await reservation.attempt.succeeded();
    } finally {
      await reservation.attempt.release();
    }
    return this.sessions.advance(session, recordPassword(session.facts, ctx.now), ctx.now);
  }

  /**
   * Counts a wrong password. The one failure that locks the account records account.locked
   * (once per lockout, also under parallel attempts).
   */
  private async settleFailure(attempt: Attempt, userId: string | null, ctx: RequestContext): Promise<void> {
    const seconds = await attempt.failed();
    if (seconds !== null && userId) await this.log.record('account.locked', userId, ctx, { check: 'password', seconds });
  }

  async logout(session: ActiveSession | null): Promise<void> {
    if (session) await this.sessions.revoke(session.id);
  }
}
