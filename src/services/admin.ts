/**
 * Operator actions on someone else's account (docs/policy.md): roles, listing and revoking
 * sessions, unlocking, and resetting second factors. None of them hands anyone a session:
 * a factor reset leaves the account reachable only through a one-time recovery link mailed
 * to its owner, which together with the password gives an *enrolling* session (I13 in
 * docs/security.md). A reset needs an admin's own fresh second factor, decided again here
 * so the library function is as strict as the HTTP route.
 */
import type { Kysely, Transaction } from 'kysely';
import {
  EnrollmentRequiredError,
  InvalidCredentialsError,
  InvalidRequestError,
  InvalidTokenError,
  NotFoundError,
  TooManyAttemptsError,
} from '../core/errors.js';
import { normaliseEmail } from '../core/email.js';
import { authorize } from '../core/requirements.js';
import { ROLE_SHAPE } from '../core/role-policy.js';
import type { AccountRecoveryStore } from '../store/account-recoveries.js';
import type { Database, UserRow } from '../store/schema.js';
import type { UserStore } from '../store/users.js';
import type { AccountChanges } from './account-changes.js';
import type { AuthService, LoginResult } from './auth.js';
import type { RequestContext } from './context.js';
import { MAILED_TOKEN_SHAPE } from './email-change.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { Limits } from './limits.js';
import type { PasswordHasher } from './passwords.js';
import { parseRoles, type PolicyService } from './policy.js';
import type { LinkMailChannel } from './link-mail.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession, SessionService, SessionTransport } from './sessions.js';

export const ADMIN_ROLE = 'admin';
/** A recovery link works once, for a day. */
export const ACCOUNT_RECOVERY_TTL_MS = 24 * 3_600_000;

/** Who acts: an admin's session (HTTP, library with a request), or the operator at the host (CLI, library). */
export type Actor = { kind: 'admin'; session: ActiveSession } | { kind: 'operator'; via: 'cli' | 'library' };

function by(actor: Actor): Record<string, string> {
  return actor.kind === 'admin' ? { by: actor.session.userId, byEmail: actor.session.email } : { by: actor.via };
}

export interface AdminDeps {
  db: Kysely<Database>;
  accounts: AccountChanges;
  users: UserStore;
  sessions: SessionService;
  recoveries: AccountRecoveryStore;
  passwords: PasswordHasher;
  limits: Limits;
  log: SecurityLog;
  policy: PolicyService;
  auth: AuthService;
  /** Every way into the account (sessions, remember-me, trusted devices, mailed links, OIDC grants). */
  revokeAccountAccess(userId: string, keep: undefined, trx: Transaction<Database>): Promise<void>;
  /** Sessions and their remember-me chains only. */
  revokeSignIns(userId: string, trx: Transaction<Database>): Promise<void>;
  revokeApiTokens(userId: string, ctx: RequestContext, trx: Transaction<Database>): Promise<unknown>;
  /** Hands the recovery link to mail, in the transaction that stored its token (never in the event). */
  linkMail: LinkMailChannel;
  pagesUrl(): string;
}

export class AdminService {
  constructor(private readonly deps: AdminDeps) {}

  /** An account by id or e-mail address. */
  async findUser(idOrEmail: string): Promise<UserRow> {
    const user = idOrEmail.includes('@')
      ? await this.deps.users.findByNormalizedEmail(normaliseEmail(idOrEmail))
      : await this.deps.users.findById(idOrEmail);
    if (!user) throw new NotFoundError('No such account.');
    return user;
  }

  /**
   * Sets an account's roles. An account that becomes subject to a role's `mfa: required`
   * gets its grace period from now (and a reminder); one that no longer is loses its due time.
   */
  async setRoles(userId: string, roles: string[], actor: Actor, ctx: RequestContext): Promise<{ roles: string[]; dueAt: number | null }> {
    const clean = [...new Set(roles)].sort();
    const bad = clean.find((r) => !ROLE_SHAPE.test(r));
    if (bad !== undefined || clean.length > 16) {
      throw new InvalidRequestError('Role names look like "admin" (at most 16 roles).', [
        { path: 'roles', message: `refused: ${bad ?? 'too many'}` },
      ]);
    }
    const { policy, log } = this.deps;
    const dueAt = await this.deps.accounts.apply(userId, ctx.now, {
      actingSession: actor.kind === 'admin' ? actor.session : undefined,
      voidsSetups: false,
      run: async (trx) => {
        const row = await trx.selectFrom('users').select(['roles', 'mfa_due_at']).where('id', '=', userId).executeTakeFirstOrThrow();
        const wasSubject = policy.requiresFactor(parseRoles(row.roles));
        const subject = policy.requiresFactor(clean);
        const due = !subject
          ? null
          : wasSubject && row.mfa_due_at !== null
            ? Number(row.mfa_due_at)
            : ctx.now + policy.settings.deployment.enrolmentGraceSeconds * 1000;
        await trx
          .updateTable('users')
          .set({ roles: JSON.stringify(clean), mfa_due_at: due, updated_at: ctx.now })
          .where('id', '=', userId)
          .execute();
        await log.record('account.roles_changed', userId, ctx, { roles: clean, ...by(actor) }, trx);
        if (subject && !wasSubject)
          await log.record('account.enrolment_reminder', userId, ctx, { dueAt: new Date(due!).toISOString() }, trx);
        return due;
      },
    });
    return { roles: clean, dueAt };
  }

  async listSessions(userId: string, now: number) {
    const rows = await this.deps.sessions.list(userId, now);
    const iso = (t: number) => new Date(t).toISOString();
    return rows.map((r) => ({
      id: r.id,
      state: r.state,
      ip: r.ip,
      userAgent: r.user_agent,
      createdAt: iso(r.created_at),
      lastSeenAt: iso(r.last_seen_at),
    }));
  }

  /** Signs the account out everywhere (sessions and remember-me chains). */
  async revokeSessions(userId: string, actor: Actor, ctx: RequestContext): Promise<void> {
    if (actor.kind === 'admin') this.assertAdmin(actor.session, ctx.now, false);
    await this.deps.accounts.apply(userId, ctx.now, {
      actingSession: actor.kind === 'admin' ? actor.session : undefined,
      voidsSetups: true,
      run: async (trx) => {
        await this.deps.revokeSignIns(userId, trx);
        await this.deps.log.record('admin.sessions_revoked', userId, ctx, by(actor), trx);
      },
    });
  }

  /** Lifts a lockout: the account's failed-password and failed-code counters start again. */
  async unlock(userId: string, actor: Actor, ctx: RequestContext): Promise<void> {
    if (actor.kind === 'admin') this.assertAdmin(actor.session, ctx.now, false);
    const user = await this.findUser(userId);
    await this.deps.limits.passwordPerAccount.reset(user.email_normalized);
    await this.deps.limits.mfaPerAccount.reset(user.id);
    await this.deps.log.record('admin.account_unlocked', user.id, ctx, by(actor));
  }

  /**
   * Removes every second factor of the account and every way into it, and mails its owner
   * a one-time recovery link. Only an admin session with a fresh second factor of its own
   * may do it, never on its own account. Returns nothing a caller could sign in with.
   */
  async resetFactors(admin: ActiveSession, userId: string, ctx: RequestContext): Promise<void> {
    this.assertAdmin(admin, ctx.now, true);
    if (admin.userId === userId)
      throw new InvalidRequestError('Admins reset their own factors from their settings, not through the admin path.');
    const token = randomToken();
    const link = `${this.deps.pagesUrl()}/recover?token=${token}`;
    await this.deps.accounts.apply(userId, ctx.now, {
      actingSession: admin,
      voidsSetups: true,
      run: async (trx) => {
        await trx.deleteFrom('webauthn_credentials').where('user_id', '=', userId).execute();
        await trx.deleteFrom('factors').where('user_id', '=', userId).execute();
        await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
        await trx
          .updateTable('users')
          .set({ factor_methods: '[]', factors_reset_at: ctx.now, updated_at: ctx.now })
          .where('id', '=', userId)
          .execute();
        await this.deps.revokeAccountAccess(userId, undefined, trx);
        await this.deps.revokeApiTokens(userId, ctx, trx);
        await this.deps.recoveries.voidOpen(trx, userId, ctx.now);
        await this.deps.recoveries.insert(trx, {
          id: newId(),
          user_id: userId,
          token_hash: hashToken(token),
          admin_id: admin.userId,
          created_at: ctx.now,
          expires_at: ctx.now + ACCOUNT_RECOVERY_TTL_MS,
          used_at: null,
        });
        await this.deps.log.record('admin.factors_reset', userId, ctx, by({ kind: 'admin', session: admin }), trx);
        // The link goes to mail only, in this transaction: the event row never holds it.
        const owner = await trx.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirstOrThrow();
        await this.deps.linkMail.emit(
          'account_recovery.link',
          { userId, to: owner.email, byEmail: admin.email, recoveryLink: link },
          ctx,
          trx,
        );
      },
    });
  }

  /**
   * The owner uses the recovery link with the account's password: an enrolling session
   * (a new factor must be set up before anything else). The link is spent only once the
   * password is right; wrong passwords count towards the account's lockout.
   */
  async recover(token: string, password: string, transport: SessionTransport, ctx: RequestContext): Promise<LoginResult> {
    if (!MAILED_TOKEN_SHAPE.test(token)) throw new InvalidTokenError();
    const tokenHash = hashToken(token);
    const usable = await this.deps.recoveries.findUsable(tokenHash, ctx.now);
    const user = usable ? await this.deps.users.findById(usable.user_id) : undefined;
    if (!usable || !user) throw new InvalidTokenError();
    const reservation = await this.deps.limits.passwordPerAccount.reserve(user.email_normalized);
    if (!reservation.allowed) throw new TooManyAttemptsError(reservation.retryAfterSeconds);
    try {
      if (password.length > 1024 || !(await this.deps.passwords.verify(user.password_hash, password))) {
        await this.deps.log.record('login.failed', user.id, ctx, { via: 'recovery_link' });
        await reservation.attempt.failed();
        throw new InvalidCredentialsError();
      }
      await reservation.attempt.succeeded();
    } finally {
      await reservation.attempt.release();
    }
    const epoch = await this.deps.accounts.apply(user.id, ctx.now, {
      voidsSetups: true,
      run: async (trx, account) => {
        const used = await this.deps.recoveries.consume(trx, tokenHash, ctx.now);
        if (!used || used.user_id !== user.id) throw new InvalidTokenError();
        await this.deps.log.record('account.recovered', user.id, ctx, { resetBy: used.admin_id }, trx);
        return account.epoch + 1; // voidsSetups moves the epoch on
      },
    });
    const result = await this.deps.auth.establish({ id: user.id, email: user.email }, [], { kind: 'recovery_link' }, ctx, transport, false);
    // A factor reset (or any other security change) that came between the link's use and
    // the session's creation ended every way in before this session existed: so does this
    // session (found by the model search on PostgreSQL: a session that outlived a reset).
    const overtaken = await this.deps.accounts.apply(user.id, ctx.now, {
      voidsSetups: false,
      run: async (trx, account) => {
        if (account.epoch === epoch) return false;
        await this.deps.sessions.revokeWithin(trx, user.id, result.session.id);
        return true;
      },
    });
    if (overtaken) throw new InvalidTokenError();
    return result;
  }

  /** Role and (for resets) freshness, decided by the core as the gate would for /api/admin. */
  private assertAdmin(session: ActiveSession, now: number, fresh: boolean): void {
    const view = this.deps.policy.gateView(session, now);
    // A factor reset needs the admin's own second factor: a password-fresh admin without one never qualifies.
    if (fresh && view.account.factorMethods.length === 0 && (session.roles ?? []).includes(ADMIN_ROLE)) throw new EnrollmentRequiredError();
    const denied = authorize(
      { session: 'full', fresh, role: ADMIN_ROLE },
      { kind: 'session', session: session.facts, account: view.account },
      now,
      view.freshness,
    );
    if (denied) throw denied;
  }
}
