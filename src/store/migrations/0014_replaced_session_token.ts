import type { Kysely } from 'kysely';

/**
 * A session keeps the token it had until moments ago (hash and deadline). Only logout
 * accepts it: a logout sent while a parallel request replaced the token (a factor
 * confirmation, a step-up) must still end the session, not answer 204 and leave it live.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('replaced_token_hash', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('replaced_until', 'bigint').execute();
  await db.schema.createIndex('sessions_replaced_token_hash').on('sessions').column('replaced_token_hash').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_replaced_token_hash').execute();
  await db.schema.alterTable('sessions').dropColumn('replaced_until').execute();
  await db.schema.alterTable('sessions').dropColumn('replaced_token_hash').execute();
}
