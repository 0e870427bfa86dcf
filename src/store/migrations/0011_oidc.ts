import type { Kysely } from 'kysely';

/**
 * Gatehouse as an OpenID Provider (issue 14): the provider's storage (codes, tokens,
 * grants, provider sessions, interactions), its signing keys (encrypted) and its clients.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // oidc-provider's models, one row each. `account_id` lets a factor removal or a password
  // reset delete every grant and token of the account in one statement.
  await db.schema
    .createTable('oidc_payloads')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'text')
    .addColumn('uid', 'text')
    .addColumn('user_code', 'text')
    .addColumn('account_id', 'text')
    .addColumn('expires_at', 'bigint')
    .addColumn('consumed_at', 'bigint')
    .addPrimaryKeyConstraint('oidc_payloads_pk', ['model', 'id'])
    .execute();
  await db.schema.createIndex('oidc_payloads_grant').on('oidc_payloads').column('grant_id').execute();
  await db.schema.createIndex('oidc_payloads_uid').on('oidc_payloads').column('uid').execute();
  await db.schema.createIndex('oidc_payloads_account').on('oidc_payloads').column('account_id').execute();
  await db.schema.createIndex('oidc_payloads_expiry').on('oidc_payloads').column('expires_at').execute();

  // Signing keys: the private JWK sealed with SecretBox. One row per (generation, alg): the
  // unique pair lets several instances create the first generation at once without forking.
  await db.schema
    .createTable('oidc_signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('jwk_enc', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .addUniqueConstraint('oidc_signing_keys_generation_alg', ['generation', 'alg'])
    .execute();

  // Registered relying parties; the secret (confidential clients) sealed with SecretBox.
  await db.schema
    .createTable('oidc_clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('secret_enc', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
