import type { Kysely, Transaction } from 'kysely';
import { hotRead, type DatabaseHandle } from './database.js';
import type { Database, SessionRow } from './schema.js';

/**
 * Locks the account row, then the session row (false: the session has ended), in the order
 * every account change takes them (users, then sessions). A write that adds a row referring
 * to both (a set-up, a remember-me token) must take them in this order: taking the session
 * first, the row's foreign key to the account then waited for an account change (an e-mail
 * change locks the account row) that waited for the session: a deadlock on PostgreSQL (found
 * by the long model search). No-op UPDATEs: row locks on PostgreSQL, the write lock on SQLite.
 */
export async function lockAccountAndSession(trx: Transaction<Database>, userId: string, sessionId: string): Promise<boolean> {
  await trx
    .updateTable('users')
    .set((eb) => ({ security_epoch: eb.ref('security_epoch') }))
    .where('id', '=', userId)
    .execute();
  return lockSession(trx, sessionId, { userId });
}

/**
 * Locks a session row until the transaction ends (a no-op UPDATE); false when no such
 * session exists (ended, or not of `userId`, or no longer holding `tokenHash`).
 */
export async function lockSession(
  trx: Transaction<Database>,
  sessionId: string,
  match: { userId?: string; tokenHash?: string } = {},
): Promise<boolean> {
  let q = trx
    .updateTable('sessions')
    .set((eb) => ({ last_seen_at: eb.ref('last_seen_at') }))
    .where('id', '=', sessionId);
  if (match.userId !== undefined) q = q.where('user_id', '=', match.userId);
  if (match.tokenHash !== undefined) q = q.where('token_hash', '=', match.tokenHash);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A session row joined with what the gate needs of its account: one indexed read. */
export interface SessionWithAccount extends SessionRow {
  email: string;
  factor_methods: string;
  roles: string;
  mfa_due_at: number | null;
  /** users.created_at (the session row has its own created_at). */
  account_created_at: number;
}

export class SessionStore {
  private readonly byTokenHash: (tokenHash: string) => Promise<SessionWithAccount[]>;

  /** With `handle`, the gate's lookup by token runs as a kept prepared statement (`hotRead`). */
  constructor(
    private readonly db: Kysely<Database>,
    handle?: DatabaseHandle,
  ) {
    const query = (tokenHash: string) => this.withAccount().where('sessions.token_hash', '=', tokenHash);
    this.byTokenHash = handle
      ? (hotRead<SessionWithAccount>(handle, 'session_by_token_hash', query('')) as (tokenHash: string) => Promise<SessionWithAccount[]>)
      : (tokenHash) => query(tokenHash).execute();
  }

  private withAccount() {
    return this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .select(['users.email', 'users.factor_methods', 'users.roles', 'users.mfa_due_at', 'users.created_at as account_created_at']);
  }

  /** The gate's one read per request. */
  async findByTokenHash(tokenHash: string): Promise<SessionWithAccount | undefined> {
    return (await this.byTokenHash(tokenHash))[0];
  }

  /** The session that held this token until its replacement, while the token's deadline has not passed. */
  async findByReplacedTokenHash(tokenHash: string, now: number): Promise<SessionWithAccount | undefined> {
    return this.withAccount()
      .innerJoin('replaced_session_tokens as replaced', 'replaced.session_id', 'sessions.id')
      .where('replaced.token_hash', '=', tokenHash)
      .where('replaced.until', '>', now)
      .executeTakeFirst();
  }

  async insert(
    row: Omit<SessionRow, 'mfa_attempts' | 'risk'> & { risk?: string | null },
    trx: Transaction<Database> | Kysely<Database> = this.db,
  ): Promise<void> {
    await trx.insertInto('sessions').values(row).execute();
  }

  /**
   * Replaces the token and the assurance facts, but only if the presented token is still
   * current: two parallel verifications cannot both win. The replaced token is kept until
   * `replacedUntil` for logout alone, in the same transaction.
   */
  async replace(
    id: string,
    expectedTokenHash: string,
    changes: Partial<
      Pick<SessionRow, 'token_hash' | 'state' | 'amr' | 'password_at' | 'mfa_at' | 'expires_at' | 'last_seen_at' | 'webauthn_at'>
    >,
    replacedUntil: number,
    trx?: Transaction<Database>,
  ): Promise<boolean> {
    const run = async (t: Transaction<Database>) => {
      const result = await t
        .updateTable('sessions')
        .set(changes)
        .where('id', '=', id)
        .where('token_hash', '=', expectedTokenHash)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await t
        .insertInto('replaced_session_tokens')
        .values({ token_hash: expectedTokenHash, session_id: id, until: replacedUntil })
        .execute();
      return true;
    };
    return trx ? run(trx) : this.db.transaction().execute(run);
  }

  /**
   * Reserves one second-factor attempt in a session awaiting its factor (pending, or
   * enrolling after the account gained a factor elsewhere). Returns the attempt number,
   * or null when the session has no attempts left (or is gone).
   */
  async reserveMfaAttempt(id: string, maxAttempts: number): Promise<number | null> {
    const row = await this.db
      .updateTable('sessions')
      .set((eb) => ({ mfa_attempts: eb('mfa_attempts', '+', 1) }))
      .where('id', '=', id)
      .where('state', '!=', 'full')
      .where('mfa_attempts', '<', maxAttempts)
      .returning('mfa_attempts')
      .executeTakeFirst();
    return row ? Number(row.mfa_attempts) : null;
  }

  /**
   * True while the session exists with this token (not revoked, not replaced). An UPDATE
   * rather than a read, so it also locks the session row until the account change commits:
   * a concurrent logout then waits (or has already won), in the same order everywhere, so
   * no deadlock with the set-ups that cascade from the session.
   */
  isCurrent(trx: Transaction<Database>, id: string, tokenHash: string): Promise<boolean> {
    return lockSession(trx, id, { tokenHash });
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', id).execute();
  }

  async listForUser(userId: string, now: number): Promise<SessionRow[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }

  /** Deletes the session only while it still awaits a factor (a parallel success may have completed it). */
  async deletePending(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).where('state', '!=', 'full').execute();
  }

  async deleteForUser(userId: string, id: string, trx: Transaction<Database> | Kysely<Database> = this.db): Promise<boolean> {
    const result = await trx.deleteFrom('sessions').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** Revokes every session of the account except `keepId` (if given). */
  async deleteAllForUser(userId: string, keepId?: string, trx: Transaction<Database> | Kysely<Database> = this.db): Promise<void> {
    let q = trx.deleteFrom('sessions').where('user_id', '=', userId);
    if (keepId) q = q.where('id', '!=', keepId);
    await q.execute();
  }

  /** Deletes the sessions past their absolute expiry; the number deleted. */
  async deleteExpired(now: number): Promise<number> {
    // Replaced tokens past their deadline go too (not counted: they name no session any more).
    await this.db.deleteFrom('replaced_session_tokens').where('until', '<=', now).execute();
    const result = await this.db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
