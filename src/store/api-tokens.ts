import type { Kysely, Selectable, Transaction } from 'kysely';
import type { ApiTokensTable, Database } from './schema.js';

export type ApiTokenRow = Selectable<ApiTokensTable>;

/** A token row joined with what the gate needs of its account (as for a session). */
export interface ApiTokenWithAccount extends ApiTokenRow {
  factor_methods: string;
  roles: string;
  mfa_due_at: number | null;
}

export class ApiTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Transaction<Database> | Kysely<Database>, row: ApiTokenRow): Promise<void> {
    await trx.insertInto('api_tokens').values(row).execute();
  }

  /** The token for a hash with its account's policy facts, only while its account exists (one indexed read). */
  findByHash(tokenHash: string): Promise<ApiTokenWithAccount | undefined> {
    return this.db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .selectAll('api_tokens')
      .select(['users.factor_methods', 'users.roles', 'users.mfa_due_at'])
      .where('api_tokens.token_hash', '=', tokenHash)
      .executeTakeFirst();
  }

  listForUser(userId: string): Promise<ApiTokenRow[]> {
    return this.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').orderBy('id').execute();
  }

  /** Deletes one of the account's tokens; false when the account has no such token. */
  async deleteForUser(trx: Transaction<Database> | Kysely<Database>, userId: string, id: string): Promise<boolean> {
    const result = await trx.deleteFrom('api_tokens').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async countForUser(trx: Transaction<Database> | Kysely<Database>, userId: string): Promise<number> {
    const row = await trx
      .selectFrom('api_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async deleteAllForUser(trx: Transaction<Database> | Kysely<Database>, userId: string): Promise<number> {
    const result = await trx.deleteFrom('api_tokens').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Records use, at most once per `intervalMs`: a conditional write, so the gate rarely writes. */
  async touch(id: string, now: number, intervalMs: number): Promise<void> {
    await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - intervalMs)]))
      .execute();
  }
}
