import { sql, type Kysely } from 'kysely';

/**
 * The factor lifecycle inside the state machine (docs/security.md, I1–I4):
 *
 * - `users.security_epoch` counts the account's security changes (factor added or removed,
 *   password changed or reset, e-mail changed). Every such change runs in a transaction
 *   whose first statement updates the user row, which serialises changes per account on
 *   SQLite and PostgreSQL, and bumps the epoch.
 * - `factor_setups` holds unconfirmed set-ups (a TOTP secret, a passkey registration
 *   challenge), each bound to the session that began it, the epoch it began in and a short
 *   expiry. `factors` now holds confirmed factors only.
 *
 * Unconfirmed TOTP rows and passkey registration challenges of earlier versions belonged
 * to no session: they are void under these rules and are dropped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('security_epoch', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('factor_setups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text')
    .addColumn('challenge_hash', 'text')
    .addColumn('account_epoch', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('factor_setups_session').on('factor_setups').columns(['session_id', 'type']).execute();
  await db.schema.createIndex('factor_setups_user').on('factor_setups').column('user_id').execute();

  await sql`DELETE FROM factors WHERE confirmed_at IS NULL`.execute(db);
  await sql`DELETE FROM webauthn_challenges WHERE purpose = 'register'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('factor_setups').execute();
  await db.schema.alterTable('users').dropColumn('security_epoch').execute();
}
