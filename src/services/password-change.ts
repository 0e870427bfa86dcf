/**
 * Password change (★): the current password is checked under the per-account password
 * limiter, the new one against the policy; then, under the account lock, every other
 * session, every remember-me token and every trusted device of the account is revoked.
 * Of two concurrent changes from different sessions, the first revokes the second's
 * session before the second takes the lock: the second answers 401 (AccountChanges).
 * Freshness is judged again under the lock (a first factor confirmed meanwhile counts).
 */
import { InvalidCredentialsError, TooManyAttemptsError } from '../core/errors.js';
import { normaliseEmail } from '../core/email.js';
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import type { UserStore } from '../store/users.js';
import { AccountGoneError, type AccountChanges } from './account-changes.js';
import type { RequestContext } from './context.js';
import type { Limits } from './limits.js';
import { assertAcceptablePassword, type PasswordHasher } from './passwords.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession } from './sessions.js';

export class PasswordChangeService {
  constructor(
    private readonly accounts: AccountChanges,
    private readonly users: UserStore,
    private readonly passwords: PasswordHasher,
    private readonly limits: Limits,
    private readonly log: SecurityLog,
    private readonly revokeAccountAccess: (userId: string, keepSessionId: string | undefined, trx: Transaction<Database>) => Promise<void>,
  ) {}

  async change(session: ActiveSession, currentPassword: string, newPassword: string, ctx: RequestContext): Promise<void> {
    assertAcceptablePassword(newPassword);
    const key = normaliseEmail(session.email);
    const reservation = await this.limits.passwordPerAccount.reserve(key);
    if (!reservation.allowed) throw new TooManyAttemptsError(reservation.retryAfterSeconds);
    let user;
    try {
      user = await this.users.findById(session.userId);
      if (!user || currentPassword.length > 1024 || !(await this.passwords.verify(user.password_hash, currentPassword))) {
        if (user) await this.log.record('password_change.failed', user.id, ctx);
        const seconds = await reservation.attempt.failed();
        if (seconds !== null) await this.log.record('account.locked', session.userId, ctx, { check: 'password', seconds });
        throw new InvalidCredentialsError();
      }
      await reservation.attempt.succeeded();
    } finally {
      await reservation.attempt.release();
    }
    const newHash = await this.passwords.hash(newPassword);
    await this.accounts.apply(user.id, ctx.now, {
      actingSession: session,
      voidsSetups: true,
      fresh: { session: session.facts, risk: session.risk },
      run: async (trx, account) => {
        // Checked against the password as it is now, not as read before the lock.
        if (account.passwordHash !== user.password_hash) throw new AccountGoneError();
        await this.users.updatePasswordHash(user.id, newHash, ctx.now, trx);
        await this.revokeAccountAccess(user.id, session.id, trx);
        await this.log.record('account.password_changed', user.id, ctx, {}, trx);
      },
    });
  }
}
