import type { Kysely, Transaction } from 'kysely';
import type { Database, FactorRow } from './schema.js';

export class FactorStore {
  constructor(private readonly db: Kysely<Database>) {}

  listConfirmed(userId: string): Promise<FactorRow[]> {
    return this.db
      .selectFrom('factors')
      .selectAll()
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .orderBy('created_at', 'asc')
      .execute();
  }

  findForUser(userId: string, id: string): Promise<FactorRow | undefined> {
    return this.db.selectFrom('factors').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  }

  latestUnconfirmed(userId: string, type: string): Promise<FactorRow | undefined> {
    return this.db
      .selectFrom('factors')
      .selectAll()
      .where('user_id', '=', userId)
      .where('type', '=', type)
      .where('confirmed_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
  }

  async insert(row: FactorRow): Promise<void> {
    await this.db.insertInto('factors').values(row).execute();
  }

  /** Unconfirmed set-ups of this type are replaced by a new one. */
  async deleteUnconfirmed(userId: string, type: string): Promise<void> {
    await this.db.deleteFrom('factors').where('user_id', '=', userId).where('type', '=', type).where('confirmed_at', 'is', null).execute();
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

  async confirm(trx: Transaction<Database> | Kysely<Database>, factorId: string, now: number, step: number): Promise<boolean> {
    const result = await trx
      .updateTable('factors')
      .set({ confirmed_at: now, last_used_step: step })
      .where('id', '=', factorId)
      .where('confirmed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async delete(trx: Transaction<Database> | Kysely<Database>, userId: string, factorId: string): Promise<boolean> {
    const result = await trx.deleteFrom('factors').where('id', '=', factorId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** Keeps users.factor_methods (read by the gate) in step with the confirmed factors. */
  async refreshFactorMethods(trx: Transaction<Database> | Kysely<Database>, userId: string, now: number): Promise<string[]> {
    const rows = await trx
      .selectFrom('factors')
      .select('type')
      .distinct()
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .execute();
    const types = rows.map((r) => r.type).sort();
    const methods = types.length ? [...types, 'recovery_code'] : [];
    await trx.updateTable('users').set({ factor_methods: JSON.stringify(methods), updated_at: now }).where('id', '=', userId).execute();
    return methods;
  }
}

export class RecoveryCodeStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Replaces all codes of the account with new ones (hashes only). */
  async replaceAll(trx: Transaction<Database> | Kysely<Database>, userId: string, rows: { id: string; code_hash: string }[], now: number): Promise<void> {
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
