import type { Kysely } from 'kysely';

/**
 * The per-address limiters' tables (rate-limiter-flexible's layout), created here rather
 * than by the library at start-up: instances starting together on an empty PostgreSQL
 * database raced on `CREATE TABLE IF NOT EXISTS` (duplicate pg_type). The migrator runs
 * under its own lock. Deployments that already have them keep them (IF NOT EXISTS).
 */
const TABLES = ['rate_limits_password_address', 'rate_limits_bad_body_address', 'rate_limits_reset_account', 'rate_limits_reset_address'];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await db.schema
      .createTable(table)
      .ifNotExists()
      .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('expire', 'bigint')
      .execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) await db.schema.dropTable(table).ifExists().execute();
}
