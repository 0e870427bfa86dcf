/**
 * Stores for long-lived browser credentials: remember-me tokens and trusted devices.
 * Both hold only SHA-256 hashes of their tokens. Single use of a remember-me token is a
 * conditional UPDATE, never read-then-write.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, RememberTokensTable, TrustedDevicesTable } from './schema.js';
import { lockAccountAndSession } from './sessions.js';

export type RememberTokenRow = Selectable<RememberTokensTable>;
export type TrustedDeviceRow = Selectable<TrustedDevicesTable>;

/**
 * Why a chain ended. `replayed`, `logout` and `superseded` mean the legitimate browser
 * was told to drop its token (or the chain is known stolen): presenting one of their
 * tokens later proves a copy. `session_revoked` and `account` end a chain from elsewhere;
 * the owner's browser still holds its token and presents it in good faith.
 */
export type RevokeReason = 'replayed' | 'logout' | 'superseded' | 'session_revoked' | 'account';

export class RememberTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Starts a chain for a session that is still live; false when it ended meanwhile (a
   * logout racing the request that asked to be remembered). The account row, then the
   * session row are locked first (`lockAccountAndSession`), so the chain is either refused
   * here or revoked with the session: never left live behind a logout.
   */
  async insertForLiveSession(row: RememberTokenRow & { session_id: string }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await lockAccountAndSession(trx, row.user_id, row.session_id))) return false;
      await trx.insertInto('remember_tokens').values(row).execute();
      return true;
    });
  }

  /**
   * Consumes `tokenHash` and stores its successor in one transaction, so a replay that
   * revokes the family always revokes the successor too. Undefined when the token is not
   * (or no longer) usable, or any token of its chain has been revoked.
   */
  rotate(tokenHash: string, now: number, successor: (used: RememberTokenRow) => RememberTokenRow): Promise<RememberTokenRow | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const used = await trx
        .updateTable('remember_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        // A chain is revoked as a whole: one revoked row means the chain is over.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('remember_tokens as chain')
                .select('chain.id')
                .whereRef('chain.family_id', '=', 'remember_tokens.family_id')
                .where('chain.revoked_at', 'is not', null),
            ),
          ),
        )
        .returningAll()
        .executeTakeFirst();
      if (!used) return undefined;
      await trx.insertInto('remember_tokens').values(successor(used)).execute();
      return used;
    });
  }

  /** Whether any token of the chain has been revoked (then the whole chain is over). */
  async familyRevoked(familyId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('remember_tokens')
      .select('id')
      .where('family_id', '=', familyId)
      .where('revoked_at', 'is not', null)
      .executeTakeFirst();
    return row !== undefined;
  }

  findByHash(tokenHash: string): Promise<RememberTokenRow | undefined> {
    return this.db.selectFrom('remember_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  async attachSession(id: string, sessionId: string): Promise<void> {
    await this.db.updateTable('remember_tokens').set({ session_id: sessionId }).where('id', '=', id).execute();
  }

  /**
   * Revokes every token of a chain not revoked yet (the first reason stays); the number
   * revoked. Rows already revoked keep their time and reason: the tombstone says why.
   */
  async revokeFamily(familyId: string, now: number, reason: RevokeReason): Promise<number> {
    const result = await this.db
      .updateTable('remember_tokens')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('family_id', '=', familyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** The sessions a chain's tokens were issued to or restored into. */
  async sessionsOfFamily(familyId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('remember_tokens')
      .select('session_id')
      .distinct()
      .where('family_id', '=', familyId)
      .where('session_id', 'is not', null)
      .execute();
    return rows.map((r) => r.session_id).filter((s): s is string => s !== null);
  }

  /**
   * Claims the chain's alarm: true for exactly one caller per `windowMs` (a conditional
   * UPDATE, so parallel replays on any number of instances notify once).
   */
  async claimAlarm(familyId: string, now: number, windowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('remember_tokens')
      .set({ alarmed_at: now })
      .where('family_id', '=', familyId)
      .where((eb) => eb.or([eb('alarmed_at', 'is', null), eb('alarmed_at', '<=', now - windowMs)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Families that issued a token to this session (normally at most one). */
  async familiesOfSession(sessionId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('remember_tokens').select('family_id').distinct().where('session_id', '=', sessionId).execute();
    return rows.map((r) => r.family_id);
  }

  async revokeAllForUser(
    userId: string,
    now: number,
    reason: RevokeReason,
    trx: Transaction<Database> | Kysely<Database> = this.db,
  ): Promise<void> {
    await trx
      .updateTable('remember_tokens')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  /**
   * Deletes the tokens whose chain expired at or before `before` (used, revoked or not);
   * the number deleted. The caller keeps tombstones past the chain's own expiry.
   */
  async deleteExpired(before: number): Promise<number> {
    const result = await this.db.deleteFrom('remember_tokens').where('expires_at', '<=', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

export class TrustedDeviceStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: TrustedDeviceRow): Promise<void> {
    await this.db.insertInto('trusted_devices').values(row).execute();
  }

  /** Marks a live device of this account as used; false when there is none. */
  async use(userId: string, tokenHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('trusted_devices')
      .set({ last_used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  listForUser(userId: string, now: number): Promise<TrustedDeviceRow[]> {
    return this.db
      .selectFrom('trusted_devices')
      .selectAll()
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .execute();
  }

  async deleteForUser(userId: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('trusted_devices').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async deleteByHash(tokenHash: string): Promise<void> {
    await this.db.deleteFrom('trusted_devices').where('token_hash', '=', tokenHash).execute();
  }

  async deleteAllForUser(userId: string, trx: Transaction<Database> | Kysely<Database> = this.db): Promise<void> {
    await trx.deleteFrom('trusted_devices').where('user_id', '=', userId).execute();
  }

  /** Deletes the devices past their expiry; the number deleted. */
  async deleteExpired(now: number): Promise<number> {
    const result = await this.db.deleteFrom('trusted_devices').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
