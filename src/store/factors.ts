import type { Kysely, Transaction } from 'kysely';
import type { Database, FactorRow, FactorSetupRow } from './schema.js';
import { lockAccountAndSession } from './sessions.js';

function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

export class FactorStore {
  constructor(private readonly db: Kysely<Database>) {}

  listConfirmed(userId: string): Promise<FactorRow[]> {
    return this.db.selectFrom('factors').selectAll().where('user_id', '=', userId).orderBy('created_at', 'asc').execute();
  }

  findForUser(userId: string, id: string): Promise<FactorRow | undefined> {
    return this.db.selectFrom('factors').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  }

  /** Inserts a confirmed factor (inside the account-locked transaction that confirms it). */
  async insert(trx: Transaction<Database>, row: FactorRow): Promise<void> {
    await trx.insertInto('factors').values(row).execute();
  }

  /**
   * Accepts a TOTP step only if it is later than every step accepted before, in one
   * conditional update, so a code can never be accepted twice, even in parallel.
   */
  async claimTotpStep(factorId: string, step: number): Promise<boolean> {
    const result = await this.db
      .updateTable('factors')
      .set({ last_used_step: step })
      .where('id', '=', factorId)
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async delete(trx: Transaction<Database> | Kysely<Database>, userId: string, factorId: string): Promise<boolean> {
    const result = await trx.deleteFrom('factors').where('id', '=', factorId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Keeps users.factor_methods (read by the gate) in step with the confirmed factors. Only
   * called under the account lock (AccountChanges), so concurrent changes cannot interleave
   * between this read and the write (I4).
   */
  async refreshFactorMethods(trx: Transaction<Database>, userId: string, now: number): Promise<string[]> {
    const methods = await this.methodsOf(trx, userId);
    // An account that has a factor again no longer waits for an admin reset's recovery link.
    const recovered = methods.length > 0 ? { factors_reset_at: null } : {};
    await trx
      .updateTable('users')
      .set({ factor_methods: JSON.stringify(methods), updated_at: now, ...recovered })
      .where('id', '=', userId)
      .execute();
    return methods;
  }

  /** The account's second-factor methods, read from its confirmed factors (not the cached list). */
  async methodsOf(trx: Transaction<Database>, userId: string): Promise<string[]> {
    const rows = await trx.selectFrom('factors').select('type').distinct().where('user_id', '=', userId).execute();
    const types = rows.map((r) => r.type).sort();
    return types.length ? [...types, 'recovery_code'] : [];
  }
}

export class RecoveryCodeStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Replaces all codes of the account with new ones (hashes only). */
  async replaceAll(
    trx: Transaction<Database> | Kysely<Database>,
    userId: string,
    rows: { id: string; code_hash: string }[],
    now: number,
  ): Promise<void> {
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    await trx
      .insertInto('recovery_codes')
      .values(rows.map((r) => ({ ...r, user_id: userId, used_at: null, created_at: now })))
      .execute();
  }

  /** Uses a code once: a conditional update, so parallel uses yield exactly one success. */
  async consume(userId: string, codeHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('recovery_codes')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async remaining(userId: string): Promise<number> {
    const row = await this.db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async deleteAll(trx: Transaction<Database> | Kysely<Database>, userId: string): Promise<void> {
    await trx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
  }
}

/**
 * Unconfirmed factor set-ups (I3): each belongs to one session and one account epoch and
 * expires. Confirming consumes it with a conditional DELETE, so it is used at most once.
 */
export class FactorSetupStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * A new set-up replaces the session's earlier set-up of the same type. False when the
   * session ended meanwhile (a concurrent logout).
   *
   * Lock order: the account row, the session row, then its set-ups, as account changes and
   * a session's ending do (its DELETE cascades to them). Taking the old set-up first
   * deadlocked against a concurrent logout on PostgreSQL, and the session before the account
   * against a concurrent e-mail change (both found by the model search).
   */
  async replace(row: FactorSetupRow): Promise<boolean> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        if (!(await lockAccountAndSession(trx, row.user_id, row.session_id))) return false;
        await trx.deleteFrom('factor_setups').where('session_id', '=', row.session_id).where('type', '=', row.type).execute();
        await trx.insertInto('factor_setups').values(row).execute();
        return true;
      });
    } catch (err) {
      if (isForeignKeyViolation(err)) return false;
      throw err;
    }
  }

  /** The session's unexpired set-up of this type (whether still valid is decided under the lock). */
  findLive(sessionId: string, type: string, now: number): Promise<FactorSetupRow | undefined> {
    return this.db
      .selectFrom('factor_setups')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('type', '=', type)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  }

  listForSession(sessionId: string, now: number): Promise<FactorSetupRow[]> {
    return this.db
      .selectFrom('factor_setups')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'asc')
      .execute();
  }

  /** Uses the set-up once, and only while it is unexpired and of the account's current epoch. */
  async consume(trx: Transaction<Database>, id: string, sessionId: string, epoch: number, now: number): Promise<boolean> {
    const result = await trx
      .deleteFrom('factor_setups')
      .where('id', '=', id)
      .where('session_id', '=', sessionId)
      .where('account_epoch', '=', epoch)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** Voids every set-up of the account (a security change; the epoch moves too). */
  async deleteForAccount(trx: Transaction<Database>, userId: string): Promise<void> {
    await trx.deleteFrom('factor_setups').where('user_id', '=', userId).execute();
  }

  async deleteExpired(now: number): Promise<number> {
    const result = await this.db.deleteFrom('factor_setups').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
