/**
 * Changing the account's e-mail address (★): a link with a single-use token goes to the
 * new address; following it (no session needed) changes the address and tells the old one.
 * At request time the old address is told too (`account.email_change_requested`, contract
 * v1.1), with a single-use cancel link that voids exactly that change and signs out the
 * session that asked: changing the recovery address is a takeover path, and its owner
 * must be able to stop it before it completes.
 */
import type { Kysely } from 'kysely';
import { EmailTakenError, InvalidRequestError, InvalidTokenError, NotFoundError } from '../core/errors.js';
import { normaliseEmail, requireEmail, type EmailAddress } from '../core/email.js';
import type { EmailChangeCancelStore, EmailChangeStore, PasswordResetStore } from '../store/account-tokens.js';
import type { Database } from '../store/schema.js';
import type { UserStore } from '../store/users.js';
import { AccountGoneError, type AccountChanges } from './account-changes.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { LinkMailChannel } from './link-mail.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession } from './sessions.js';

export const EMAIL_CHANGE_TTL_MS = 24 * 3_600_000;

export interface CancelResult {
  /** `email_change_cancelled`: this change was pending and is now void; otherwise it was already confirmed, replaced or expired. */
  status: 'email_change_cancelled' | 'change_not_pending';
  /** Whether the session that asked for the change was still live and is now signed out. */
  sessionRevoked: boolean;
}
/** 256 bits, base64url. */
export const MAILED_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === '23505' || /UNIQUE constraint failed/i.test(e?.message ?? '');
}

export class EmailChangeService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountChanges,
    private readonly users: UserStore,
    private readonly changes: EmailChangeStore,
    private readonly resets: PasswordResetStore,
    private readonly cancels: EmailChangeCancelStore,
    private readonly linkMail: LinkMailChannel,
    private readonly log: SecurityLog,
    private readonly pagesUrl: () => string,
    /** Runs after a session row was deleted (its remember-me chain ends too). */
    private readonly afterSessionRevoked: (sessionId: string) => Promise<void> = async () => {},
  ) {}

  /**
   * `session`: the session asking, which the cancel link will sign out. The change is a
   * new recovery path: it is written under the account lock by a session that must still
   * be current then, so a concurrent password reset (which voids open changes) cannot be
   * outlived by a change requested from a session it revoked.
   */
  async request(
    session: Pick<ActiveSession, 'id' | 'userId' | 'tokenHash' | 'facts' | 'risk'>,
    newEmail: string,
    ctx: RequestContext,
  ): Promise<EmailAddress> {
    const userId = session.userId;
    const parsed = requireEmail(newEmail);
    const { address: email, key: normalized } = parsed;
    const user = await this.users.findById(userId);
    if (!user) throw new NotFoundError();
    if (normalized === user.email_normalized) {
      throw new InvalidRequestError('That is already the address of your account.', [{ path: 'email', message: 'unchanged' }]);
    }
    // Sign-up already tells whether an address is registered, so saying it here leaks nothing new.
    if (await this.users.findByNormalizedEmail(normalized)) throw new EmailTakenError();

    const token = randomToken();
    const link = `${this.pagesUrl()}/confirm-email?token=${token}`;
    const cancelToken = randomToken();
    const cancelLink = `${this.pagesUrl()}/cancel-email-change?token=${cancelToken}`;
    const changeId = newId();
    // ★: judged again under the lock with the factors the account has then.
    await this.accounts.apply(userId, ctx.now, {
      actingSession: session,
      voidsSetups: false,
      fresh: { session: session.facts, risk: session.risk },
      run: async (trx) => {
        // Only the newest request can be confirmed.
        await this.changes.voidOpen(trx, userId, ctx.now);
        await this.changes.insert(trx, {
          id: changeId,
          user_id: userId,
          new_email: email,
          token_hash: hashToken(token),
          created_at: ctx.now,
          expires_at: ctx.now + EMAIL_CHANGE_TTL_MS,
          used_at: null,
        });
        await this.cancels.insert(trx, {
          id: newId(),
          user_id: userId,
          change_id: changeId,
          session_id: session.id,
          token_hash: hashToken(cancelToken),
          created_at: ctx.now,
          expires_at: ctx.now + EMAIL_CHANGE_TTL_MS,
          used_at: null,
        });
        // The public event names the new address only; the links go to the mail listener.
        await this.log.record('account.email_change_requested', userId, ctx, { to: email }, trx);
        // The address as it stands under the lock (a concurrent confirmation may have moved it).
        const current = await trx.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirstOrThrow();
        await this.linkMail.emit(
          'email_change.links',
          { userId, currentEmail: current.email, newEmail: email, confirmLink: link, cancelLink },
          ctx,
          trx,
        );
      },
    });
    return parsed;
  }

  async confirm(token: string, ctx: RequestContext): Promise<{ email: string }> {
    if (!MAILED_TOKEN_SHAPE.test(token)) throw new InvalidTokenError();
    const tokenHash = hashToken(token);
    const usable = await this.changes.findUsable(tokenHash, ctx.now);
    if (!usable) throw new InvalidTokenError();
    try {
      // A security change (the recovery address): under the account lock, voiding set-ups.
      return await this.accounts.apply(usable.user_id, ctx.now, {
        voidsSetups: true,
        run: async (trx) => {
          const change = await this.changes.consume(trx, tokenHash, ctx.now);
          if (!change || change.user_id !== usable.user_id) throw new InvalidTokenError();
          const user = await trx.selectFrom('users').select(['id', 'email']).where('id', '=', change.user_id).executeTakeFirst();
          if (!user) throw new InvalidTokenError();
          const normalized = normaliseEmail(change.new_email);
          const taken = await trx
            .selectFrom('users')
            .select('id')
            .where('email_normalized', '=', normalized)
            .where('id', '!=', user.id)
            .executeTakeFirst();
          if (taken) throw new EmailTakenError();
          await trx
            .updateTable('users')
            .set({ email: change.new_email, email_normalized: normalized, updated_at: ctx.now })
            .where('id', '=', user.id)
            .execute();
          await this.changes.voidOpen(trx, user.id, ctx.now);
          // Reset links already mailed to the old address must not outlive its control of the account.
          await this.resets.voidOpen(trx, user.id, ctx.now);
          await this.log.record('account.email_changed', user.id, ctx, { from: user.email, to: change.new_email }, trx);
          return { email: change.new_email };
        },
      });
    } catch (err) {
      if (err instanceof AccountGoneError) throw new InvalidTokenError();
      if (isUniqueViolation(err)) throw new EmailTakenError();
      throw err;
    }
  }

  /**
   * The cancel link (old address): in one transaction, spends the token (conditional
   * UPDATE: single use), voids the one change it was issued for if still pending, and
   * deletes the session that asked. It issues no session and needs none: the token is the
   * credential, and it can do nothing but this.
   */
  async cancel(token: string, ctx: RequestContext): Promise<CancelResult> {
    if (!MAILED_TOKEN_SHAPE.test(token)) throw new InvalidTokenError();
    const tokenHash = hashToken(token);
    const usable = await this.cancels.findUsable(tokenHash, ctx.now);
    if (!usable) throw new InvalidTokenError();
    // Under the account lock: a cancel and a confirmation (or a password change) of the
    // same account run one after the other, never interleaved.
    const result = await this.accounts
      .apply(usable.user_id, ctx.now, {
        voidsSetups: false,
        run: async (trx) => {
          const row = await this.cancels.consume(trx, tokenHash, ctx.now);
          if (!row || row.user_id !== usable.user_id) throw new InvalidTokenError();
          const voided = await this.changes.voidOne(trx, row.change_id, ctx.now);
          let sessionRevoked = false;
          if (row.session_id) {
            const deleted = await trx
              .deleteFrom('sessions')
              .where('id', '=', row.session_id)
              .where('user_id', '=', row.user_id)
              .executeTakeFirst();
            sessionRevoked = Number(deleted.numDeletedRows) > 0;
          }
          await this.log.record('account.email_change_cancelled', row.user_id, ctx, { changeVoided: voided, sessionRevoked }, trx);
          return { userId: row.user_id, sessionId: row.session_id, voided, sessionRevoked };
        },
      })
      .catch((err: unknown) => {
        if (err instanceof AccountGoneError) throw new InvalidTokenError();
        throw err;
      });
    if (result.sessionId) await this.afterSessionRevoked(result.sessionId);
    return { status: result.voided ? 'email_change_cancelled' : 'change_not_pending', sessionRevoked: result.sessionRevoked };
  }
}
