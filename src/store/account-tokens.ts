/** Single-use, expiring tokens mailed to a person: e-mail change confirmations and cancels, password resets. */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, EmailChangeCancelsTable, EmailChangesTable, PasswordResetsTable } from './schema.js';

type Db = Transaction<Database> | Kysely<Database>;
export type EmailChangeRow = Selectable<EmailChangesTable>;
export type PasswordResetRow = Selectable<PasswordResetsTable>;
export type EmailChangeCancelRow = Selectable<EmailChangeCancelsTable>;

type MailedTokenTable = 'email_changes' | 'email_change_cancels' | 'password_resets';
/**
 * The columns both tables share, which is all the common code touches, under one table
 * name for the type checker (`name` below is the real table).
 */
type MailedTokenDb = Kysely<{ mailed_token: Pick<PasswordResetsTable, 'user_id' | 'token_hash' | 'expires_at' | 'used_at'> }>;

/** The single-use rules both kinds of mailed token share; one table each. */
class MailedTokenStore<T extends MailedTokenTable, Row extends Selectable<Database[T]>> {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly table: T,
  ) {}

  private as(trx: Db): MailedTokenDb {
    return trx as unknown as MailedTokenDb;
  }

  private get name(): 'mailed_token' {
    return this.table as unknown as 'mailed_token';
  }

  async insert(trx: Db, row: Row): Promise<void> {
    await (trx as Kysely<Database>)
      .insertInto(this.table)
      .values(row as never)
      .execute();
  }

  /**
   * Uses the token: a conditional UPDATE, so of two parallel uses exactly one gets the
   * row. Null when unknown, used or expired.
   */
  async consume(trx: Db, tokenHash: string, now: number): Promise<Row | null> {
    const row = await this.as(trx)
      .updateTable(this.name)
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    return (row as Row | undefined) ?? null;
  }

  /**
   * A usable token's row, without using it: to check a new password before spending the
   * link, and to know which account to lock before consuming it.
   */
  async findUsable(tokenHash: string, now: number): Promise<Row | undefined> {
    const row = await this.as(this.db)
      .selectFrom(this.name)
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row as Row | undefined;
  }

  /** Voids every open token of the account (a newer request, a password change or reset). */
  async voidOpen(trx: Db, userId: string, now: number): Promise<void> {
    await this.as(trx).updateTable(this.name).set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }

  /** Deletes the tokens past their expiry (used or not); the number deleted. */
  async deleteExpired(now: number): Promise<number> {
    const result = await this.as(this.db).deleteFrom(this.name).where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

export class EmailChangeStore extends MailedTokenStore<'email_changes', EmailChangeRow> {
  constructor(db: Kysely<Database>) {
    super(db, 'email_changes');
  }

  /**
   * Voids this one change if it is still open (conditional UPDATE); false when it was
   * already confirmed, replaced by a newer request, voided or expired.
   */
  async voidOne(trx: Db, changeId: string, now: number): Promise<boolean> {
    const result = await trx
      .updateTable('email_changes')
      .set({ used_at: now })
      .where('id', '=', changeId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

/**
 * Cancel links of e-mail changes (to the old address). Single use like the others; never
 * voided in bulk: it is the old owner's way back, and it grants nothing but a cancel.
 */
export class EmailChangeCancelStore extends MailedTokenStore<'email_change_cancels', EmailChangeCancelRow> {
  constructor(db: Kysely<Database>) {
    super(db, 'email_change_cancels');
  }
}

export class PasswordResetStore extends MailedTokenStore<'password_resets', PasswordResetRow> {
  constructor(db: Kysely<Database>) {
    super(db, 'password_resets');
  }
}
