import type { Kysely } from 'kysely';

/**
 * The cancel link of an e-mail change, mailed to the *old* address when the change is
 * requested (contract v1.1). One row per change: single use, stored as SHA-256, bound to
 * that change and to the session that asked for it (which the link signs out). It dies
 * with its change (same expiry; deleted with it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('email_change_cancels')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('change_id', 'text', (c) => c.notNull().unique().references('email_changes.id').onDelete('cascade'))
    // No foreign key: the session may end (and its row go) before the link is used.
    .addColumn('session_id', 'text')
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('email_change_cancels_user').on('email_change_cancels').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('email_change_cancels').execute();
}
