/**
 * Password reset. Proving control of the mailbox replaces the password and nothing more:
 * no session is issued, every way into the account is revoked, and the next login still
 * needs the second factor. `forgot` answers the same, with the same work, whether or not
 * the address belongs to an account; the mail itself goes out later, from the outbox.
 */
import type { Kysely, Transaction } from 'kysely';
import { InvalidTokenError, TooManyAttemptsError } from '../core/errors.js';
import { requireEmail } from '../core/email.js';
import type { EmailChangeStore, PasswordResetStore } from '../store/account-tokens.js';
import type { Database } from '../store/schema.js';
import type { UserStore } from '../store/users.js';
import { AccountGoneError, type AccountChanges } from './account-changes.js';
import type { RequestContext } from './context.js';
import { MAILED_TOKEN_SHAPE } from './email-change.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { LinkMailChannel } from './link-mail.js';
import { createLimiter, type AttemptLimiter, type LimiterBackend, type Limits } from './limits.js';
import { assertAcceptablePassword, type PasswordHasher } from './passwords.js';
import type { SecurityLog } from './security-log.js';

export const PASSWORD_RESET_TTL_MS = 30 * 60_000;

export interface PasswordResetLimits {
  /** Reset mails per account (silently not sent beyond it: the answer must not differ). */
  perAccount: AttemptLimiter;
  /** Requests per client address (answered 429). */
  perAddress: AttemptLimiter;
}

export class PasswordResetService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountChanges,
    private readonly users: UserStore,
    private readonly resets: PasswordResetStore,
    private readonly changes: EmailChangeStore,
    private readonly passwords: PasswordHasher,
    private readonly limits: Limits,
    private readonly resetLimits: PasswordResetLimits,
    private readonly log: SecurityLog,
    private readonly revokeAccountAccess: (userId: string, keepSessionId: undefined, trx: Transaction<Database>) => Promise<void>,
    private readonly revokeApiTokens: (userId: string, ctx: RequestContext, trx: Transaction<Database>) => Promise<unknown>,
    private readonly pagesUrl: () => string,
    private readonly linkMail: LinkMailChannel,
  ) {}

  private readonly inFlight = new Set<Promise<void>>();
  /** Where failures of the detached work are reported. */
  onError: (err: unknown) => void = () => {};

  /**
   * Answers before anything depends on the address: the lookup, the token and the mail
   * are done after the response, so known and unknown addresses take the same time.
   */
  async forgot(email: string, ctx: RequestContext): Promise<void> {
    // Decided by the spelling alone, before any lookup: a 400 here says nothing about accounts.
    const key = requireEmail(email).key;
    const byAddress = await this.resetLimits.perAddress.reserve(ctx.ip);
    if (!byAddress.allowed) throw new TooManyAttemptsError(byAddress.retryAfterSeconds);
    // Started on a later turn of the event loop: SQLite calls are synchronous, and they must
    // not run before the response is written.
    const work = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.issue(key, ctx));
    // Under a flood, the caller waits for its own work (backpressure) rather than queueing without bound.
    if (this.inFlight.size >= 64) return work.catch(this.onError);
    const task: Promise<void> = work.catch(this.onError).finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  /** Waits for detached `forgot` work (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** `key`: the grammar's matching key of the address asked for. */
  private async issue(key: string, ctx: RequestContext): Promise<void> {
    // Everything below runs for known and unknown addresses alike, up to the one insert.
    const byAccount = await this.resetLimits.perAccount.reserve(key);
    const user = await this.users.findByNormalizedEmail(key);
    const token = randomToken();
    const tokenHash = hashToken(token);
    const link = `${this.pagesUrl()}/reset-password?token=${token}`;
    await this.db.transaction().execute(async (trx) => {
      if (!user || !byAccount.allowed) {
        // Same shape of work: a read on the same index the real path writes to.
        await trx.selectFrom('password_resets').select('id').where('token_hash', '=', tokenHash).executeTakeFirst();
        return;
      }
      await this.resets.voidOpen(trx, user.id, ctx.now);
      await this.resets.insert(trx, {
        id: newId(),
        user_id: user.id,
        token_hash: tokenHash,
        created_at: ctx.now,
        expires_at: ctx.now + PASSWORD_RESET_TTL_MS,
        used_at: null,
      });
      // The public event carries no link; the link goes to the mail listener only.
      await this.log.record('password_reset.requested', user.id, ctx, {}, trx);
      await this.linkMail.emit('password_reset.link', { userId: user.id, to: user.email, resetLink: link }, ctx, trx);
    });
  }

  async reset(token: string, password: string, ctx: RequestContext): Promise<void> {
    if (!MAILED_TOKEN_SHAPE.test(token)) throw new InvalidTokenError();
    const tokenHash = hashToken(token);
    // Look before using it: a weak password must not spend the link.
    const usable = await this.resets.findUsable(tokenHash, ctx.now);
    if (!usable) throw new InvalidTokenError();
    assertAcceptablePassword(password);
    const passwordHash = await this.passwords.hash(password);
    // Under the account lock: sessions, remember-me tokens, trusted devices (whatever is
    // registered) and open links go in the same transaction as the new password.
    const user = await this.accounts
      .apply(usable.user_id, ctx.now, {
        voidsSetups: true,
        run: async (trx) => {
          const used = await this.resets.consume(trx, tokenHash, ctx.now);
          if (!used || used.user_id !== usable.user_id) throw new InvalidTokenError();
          const row = await trx.selectFrom('users').select(['id', 'email_normalized']).where('id', '=', used.user_id).executeTakeFirst();
          if (!row) throw new InvalidTokenError();
          await this.users.updatePasswordHash(row.id, passwordHash, ctx.now, trx);
          await this.revokeAccountAccess(row.id, undefined, trx);
          await this.revokeApiTokens(row.id, ctx, trx);
          await this.log.record('account.password_changed', row.id, ctx, { via: 'reset' }, trx);
          await this.log.record('password_reset.completed', row.id, ctx, {}, trx);
          return row;
        },
      })
      .catch((err: unknown) => {
        // The account went away between the look-up and the lock: the link is as good as unknown.
        if (err instanceof AccountGoneError) throw new InvalidTokenError();
        throw err;
      });
    // The owner proved control of the mailbox: earlier wrong passwords no longer count.
    await this.limits.passwordPerAccount.reset(user.email_normalized);
  }
}

/** Reset mails: 5 per account per hour; requests: 60 per client address per 15 minutes. */
export async function createPasswordResetLimits(backend: LimiterBackend): Promise<PasswordResetLimits> {
  return {
    perAccount: await createLimiter(backend, 'reset_account', { points: 5, windowSeconds: 3600, blockSeconds: 3600 }),
    perAddress: await createLimiter(backend, 'reset_address', { points: 60, windowSeconds: 900, blockSeconds: 900 }),
  };
}
