/**
 * Changing the account's e-mail address (★): a link with a single-use token goes to the
 * new address; following it (no session needed) changes the address and tells the old one.
 */
import type { Kysely } from 'kysely';
import { EmailTakenError, InvalidRequestError, InvalidTokenError, NotFoundError } from '../core/errors.js';
import { looksLikeEmail, normaliseEmail } from '../core/email.js';
import type { MailOutbox } from '../mail/outbox.js';
import type { EmailChangeStore, PasswordResetStore } from '../store/account-tokens.js';
import type { Database } from '../store/schema.js';
import type { UserStore } from '../store/users.js';
import { AccountGoneError, type AccountChanges } from './account-changes.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { SecurityLog } from './security-log.js';

export const EMAIL_CHANGE_TTL_MS = 24 * 3_600_000;
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
    private readonly outbox: MailOutbox,
    private readonly log: SecurityLog,
    private readonly publicUrl: () => string,
  ) {}

  async request(userId: string, newEmail: string, ctx: RequestContext): Promise<void> {
    const email = newEmail.normalize('NFKC').trim();
    if (!looksLikeEmail(email)) throw new InvalidRequestError('Enter a valid email address.', [{ path: 'email', message: 'not an email address' }]);
    const normalized = normaliseEmail(email);
    const user = await this.users.findById(userId);
    if (!user) throw new NotFoundError();
    if (normalized === user.email_normalized) {
      throw new InvalidRequestError('That is already the address of your account.', [{ path: 'email', message: 'unchanged' }]);
    }
    // Sign-up already tells whether an address is registered, so saying it here leaks nothing new.
    if (await this.users.findByNormalizedEmail(normalized)) throw new EmailTakenError();

    const token = randomToken();
    const link = `${this.publicUrl()}/confirm-email?token=${token}`;
    await this.db.transaction().execute(async (trx) => {
      // Only the newest request can be confirmed.
      await this.changes.voidOpen(trx, userId, ctx.now);
      await this.changes.insert(trx, {
        id: newId(),
        user_id: userId,
        new_email: email,
        token_hash: hashToken(token),
        created_at: ctx.now,
        expires_at: ctx.now + EMAIL_CHANGE_TTL_MS,
        used_at: null,
      });
      await this.log.record('account.email_change_requested', userId, ctx, { to: email }, trx);
      await this.outbox.enqueue(
        trx,
        {
          userId,
          eventType: 'account.email_change_requested',
          to: email,
          subject: 'Gatehouse: confirm your new e-mail address',
          text: [
            'Hello,',
            '',
            `Someone asked to use this address (${email}) for a Gatehouse account`,
            `that now uses ${user.email}.`,
            '',
            'To confirm, open this link. It works once, for 24 hours:',
            '',
            link,
            '',
            `When:    ${new Date(ctx.now).toUTCString().replace('GMT', 'UTC')}`,
            `From IP: ${ctx.ip}`,
            `Browser: ${ctx.userAgent.replace(/[\p{Cc}\p{Cf}]/gu, ' ').slice(0, 200) || 'unknown'}`,
            '',
            'If you did not ask for this, ignore this message: nothing changes',
            'unless the link is opened.',
            '',
            '-- ',
            `Gatehouse, ${this.publicUrl()}`,
            '',
          ].join('\n'),
        },
        ctx.now,
      );
    });
  }

  async confirm(token: string, ctx: RequestContext): Promise<{ email: string }> {
    if (!MAILED_TOKEN_SHAPE.test(token)) throw new InvalidTokenError();
    const tokenHash = hashToken(token);
    const usable = await this.changes.findUsable(tokenHash, ctx.now);
    if (!usable) throw new InvalidTokenError();
    try {
      // A security change (the recovery address): under the account lock, voiding set-ups.
      return await this.accounts.apply(usable.user_id, ctx.now, { voidsSetups: true, run: async (trx) => {
        const change = await this.changes.consume(trx, tokenHash, ctx.now);
        if (!change || change.user_id !== usable.user_id) throw new InvalidTokenError();
        const user = await trx.selectFrom('users').select(['id', 'email']).where('id', '=', change.user_id).executeTakeFirst();
        if (!user) throw new InvalidTokenError();
        const normalized = normaliseEmail(change.new_email);
        const taken = await trx.selectFrom('users').select('id').where('email_normalized', '=', normalized).where('id', '!=', user.id).executeTakeFirst();
        if (taken) throw new EmailTakenError();
        await trx.updateTable('users').set({ email: change.new_email, email_normalized: normalized, updated_at: ctx.now }).where('id', '=', user.id).execute();
        await this.changes.voidOpen(trx, user.id, ctx.now);
        // Reset links already mailed to the old address must not outlive its control of the account.
        await this.resets.voidOpen(trx, user.id, ctx.now);
        await this.log.record('account.email_changed', user.id, ctx, { from: user.email, to: change.new_email }, trx);
        return { email: change.new_email };
      } });
    } catch (err) {
      if (err instanceof AccountGoneError) throw new InvalidTokenError();
      if (isUniqueViolation(err)) throw new EmailTakenError();
      throw err;
    }
  }
}
