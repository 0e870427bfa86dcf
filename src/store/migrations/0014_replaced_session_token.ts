import type { Kysely } from 'kysely';

/**
 * Session tokens replaced moments ago (hash, session, deadline). Only logout accepts one:
 * a logout sent while a parallel request replaced the token (a factor confirmation, a
 * step-up) must still end the session, not answer 204 and leave it live. One row per
 * replaced token, so a token replaced twice in a row still ends its session.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('replaced_session_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('until', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('replaced_session_tokens_session').on('replaced_session_tokens').column('session_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('replaced_session_tokens').execute();
}
