/** Single-use, expiring tokens mailed to a person: e-mail change confirmations and password resets. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, EmailChangesTable, PasswordResetsTable } from './schema.js';

type Db = Transaction<Database> | Kysely<Database>;
export type EmailChangeRow = Selectable<EmailChangesTable>;
export type PasswordResetRow = Selectable<PasswordResetsTable>;

export class EmailChangeStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Db, row: EmailChangeRow): Promise<void> {
    await trx.insertInto('email_changes').values(row).execute();
  }

  /**
   * Uses the token: a conditional UPDATE, so of two parallel confirmations exactly one
   * gets the row. Null when unknown, used or expired.
   */
  async consume(trx: Db, tokenHash: string, now: number): Promise<EmailChangeRow | null> {
    const row = await trx
      .updateTable('email_changes')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return row ?? null;
  }

  /** Voids every open request of the account (a newer request, a password change or reset). */
  async voidOpen(trx: Db, userId: string, now: number): Promise<void> {
    await trx.updateTable('email_changes').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }
}

export class PasswordResetStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Db, row: PasswordResetRow): Promise<void> {
    await trx.insertInto('password_resets').values(row).execute();
  }

  /** A usable token's row, without using it (to check the new password before spending it). */
  findUsable(tokenHash: string, now: number): Promise<PasswordResetRow | undefined> {
    return this.db
      .selectFrom('password_resets')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  }

  /** Uses the token atomically (conditional UPDATE); null when someone else used it first. */
  async consume(trx: Db, tokenHash: string, now: number): Promise<PasswordResetRow | null> {
    const row = await trx
      .updateTable('password_resets')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return row ?? null;
  }

  async voidOpen(trx: Db, userId: string, now: number): Promise<void> {
    await trx.updateTable('password_resets').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }
}
