import type { Kysely, Transaction } from 'kysely';
import { hotRead, type DatabaseHandle } from './database.js';
import type { Database, UserRow } from './schema.js';
import { rolesOf } from './json-columns.js';

export class UserStore {
  private readonly byId: (id: string) => Promise<UserRow[]>;

  /** With `handle`, `findById` (read on most requests) runs as a kept prepared statement (`hotRead`). */
  constructor(
    private readonly db: Kysely<Database>,
    handle?: DatabaseHandle,
  ) {
    const query = (id: string) => this.db.selectFrom('users').selectAll().where('id', '=', id);
    this.byId = handle
      ? (hotRead<UserRow>(handle, 'user_by_id', query('')) as (id: string) => Promise<UserRow[]>)
      : (id) => query(id).execute();
  }

  findByNormalizedEmail(emailNormalized: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email_normalized', '=', emailNormalized).executeTakeFirst();
  }

  async findById(id: string): Promise<UserRow | undefined> {
    return (await this.byId(id))[0];
  }

  /** Returns false when the normalised email is already taken (unique index). */
  async insert(
    user: Omit<UserRow, 'factor_methods' | 'security_epoch' | 'roles' | 'mfa_due_at' | 'factors_reset_at'>,
    trx?: Transaction<Database>,
  ): Promise<boolean> {
    const result = await (trx ?? this.db)
      .insertInto('users')
      .values({ ...user, factor_methods: '[]' })
      .onConflict((oc) => oc.column('email_normalized').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async updatePasswordHash(
    id: string,
    passwordHash: string,
    now: number,
    trx: Transaction<Database> | Kysely<Database> = this.db,
  ): Promise<void> {
    await trx.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute();
  }

  /** Replaces the hash only while it is still `expected` (a rehash at login); false otherwise. */
  async replacePasswordHash(id: string, expected: string, passwordHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: now })
      .where('id', '=', id)
      .where('password_hash', '=', expected)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Locks the account for a security change: the first statement of the transaction, it
   * takes the user row's write lock (a row lock on PostgreSQL, the write lock on SQLite)
   * until commit, so changes to one account run one after another on every instance.
   */
  async lockForChange(
    trx: Transaction<Database>,
    id: string,
  ): Promise<{ epoch: number; passwordHash: string; roles: string[] } | undefined> {
    const row = await trx
      .updateTable('users')
      .set((eb) => ({ security_epoch: eb.ref('security_epoch') }))
      .where('id', '=', id)
      .returning(['security_epoch', 'password_hash', 'roles'])
      .executeTakeFirst();
    return row ? { epoch: Number(row.security_epoch), passwordHash: row.password_hash, roles: rolesOf(row) } : undefined;
  }

  /** Moves the account to a new epoch: unconfirmed set-ups of earlier epochs are void. */
  async bumpEpoch(trx: Transaction<Database>, id: string, now: number): Promise<void> {
    await trx
      .updateTable('users')
      .set((eb) => ({ security_epoch: eb('security_epoch', '+', 1), updated_at: now }))
      .where('id', '=', id)
      .execute();
  }

  async epochOf(id: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('users').select('security_epoch').where('id', '=', id).executeTakeFirst();
    return row ? Number(row.security_epoch) : undefined;
  }
}
