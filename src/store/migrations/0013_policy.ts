import type { Kysely } from 'kysely';

/**
 * Policy (issue 15): roles on accounts, the enrolment due time of an account that became
 * subject to a role's `required`, a session's risk assessment, and operator-initiated
 * account recovery (a factor reset by an admin, finished by a one-time mailed link).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('roles', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
  await db.schema.alterTable('users').addColumn('mfa_due_at', 'bigint').execute();
  // Set while an admin's factor reset waits for the user's recovery link: password alone signs nobody in.
  await db.schema.alterTable('users').addColumn('factors_reset_at', 'bigint').execute();
  await db.schema.alterTable('sessions').addColumn('risk', 'text').execute();
  await db.schema
    .createTable('account_recoveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('admin_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('account_recoveries_user').on('account_recoveries').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('account_recoveries').execute();
  await db.schema.alterTable('sessions').dropColumn('risk').execute();
  await db.schema.alterTable('users').dropColumn('factors_reset_at').execute();
  await db.schema.alterTable('users').dropColumn('mfa_due_at').execute();
  await db.schema.alterTable('users').dropColumn('roles').execute();
}
