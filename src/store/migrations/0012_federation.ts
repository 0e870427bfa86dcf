import type { Kysely } from 'kysely';

/**
 * Federated login (issue 14): upstream identities linked to accounts, and the short-lived
 * flows of an upstream sign-in (authorization in progress, then a link waiting for the
 * account's own factors). Flow handles are stored only as hashes; the PKCE verifier,
 * state and nonce sealed with SecretBox.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('federated_identities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('upstream', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('federated_identities_issuer_subject', ['issuer', 'subject'])
    .execute();
  await db.schema.createIndex('federated_identities_user').on('federated_identities').column('user_id').execute();

  await db.schema
    .createTable('federation_flows')
    .addColumn('handle_hash', 'text', (c) => c.primaryKey())
    /** 'authorizing' (sent to the upstream) or 'link_pending' (came back, identity not linked). */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('upstream', 'text', (c) => c.notNull())
    .addColumn('checks_enc', 'text')
    .addColumn('issuer', 'text')
    .addColumn('subject', 'text')
    .addColumn('email', 'text')
    .addColumn('target_user_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('federation_flows_expiry').on('federation_flows').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('federation_flows').execute();
  await db.schema.dropTable('federated_identities').execute();
}
