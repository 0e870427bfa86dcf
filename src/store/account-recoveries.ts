/** One-time recovery links after an admin's factor reset: hashed, single use, expiring. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { AccountRecoveriesTable, Database } from './schema.js';

type Db = Transaction<Database> | Kysely<Database>;
export type AccountRecoveryRow = Selectable<AccountRecoveriesTable>;

export class AccountRecoveryStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Db, row: AccountRecoveryRow): Promise<void> {
    await trx.insertInto('account_recoveries').values(row).execute();
  }

  /** A newer reset's link replaces every open one of the account. */
  async voidOpen(trx: Db, userId: string, now: number): Promise<void> {
    await trx.updateTable('account_recoveries').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }

  /** A usable link's row, without using it (the password is checked before the link is spent). */
  findUsable(tokenHash: string, now: number): Promise<AccountRecoveryRow | undefined> {
    return this.db
      .selectFrom('account_recoveries')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  }

  /** Uses the link: a conditional UPDATE, so of parallel uses exactly one gets the row. */
  async consume(trx: Db, tokenHash: string, now: number): Promise<AccountRecoveryRow | null> {
    const row = await trx
      .updateTable('account_recoveries')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return row ?? null;
  }

  deleteExpired(now: number): Promise<unknown> {
    return this.db.deleteFrom('account_recoveries').where('expires_at', '<=', now).execute();
  }
}
