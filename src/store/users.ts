import type { Kysely } from 'kysely';
import type { Database, UserRow } from './schema.js';

export class UserStore {
  constructor(private readonly db: Kysely<Database>) {}

  findByNormalizedEmail(emailNormalized: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email_normalized', '=', emailNormalized).executeTakeFirst();
  }

  findById(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Returns false when the normalised email is already taken (unique index). */
  async insert(user: Omit<UserRow, 'factor_methods'>): Promise<boolean> {
    const result = await this.db
      .insertInto('users')
      .values({ ...user, factor_methods: '[]' })
      .onConflict((oc) => oc.column('email_normalized').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async updatePasswordHash(id: string, passwordHash: string, now: number): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute();
  }
}
