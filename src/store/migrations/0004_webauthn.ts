import type { Kysely } from 'kysely';

/**
 * WebAuthn / passkeys. A credential is a `factors` row of type `webauthn` (so the gate's
 * users.factor_methods follows it) plus its public data here. Challenges are stored as
 * hashes, bound to one session and one purpose, single-use and short-lived.
 * `sessions.webauthn_at` is when a user-verified WebAuthn check last succeeded in the
 * session (GATEHOUSE_STEP_UP_PHISHING_RESISTANT reads it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('webauthn_credentials')
    .addColumn('factor_id', 'text', (c) => c.primaryKey().references('factors.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('credential_id', 'text', (c) => c.notNull().unique())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('user_verified', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('aaguid', 'text', (c) => c.notNull())
    .addColumn('sign_count_regressions', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_used_at', 'bigint')
    .execute();
  await db.schema.createIndex('webauthn_credentials_user').on('webauthn_credentials').column('user_id').execute();

  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('challenge_hash', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('webauthn_challenges_session').on('webauthn_challenges').columns(['session_id', 'purpose']).execute();

  await db.schema.alterTable('sessions').addColumn('webauthn_at', 'bigint').execute();
}
