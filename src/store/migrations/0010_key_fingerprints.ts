import type { Kysely } from 'kysely';

/**
 * Fingerprints (not the keys) of every GATEHOUSE_SECRET_KEY that has written data here:
 * an instance started with a key that matches none of them refuses to start.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('key_fingerprints')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('key_fingerprints').execute();
}
