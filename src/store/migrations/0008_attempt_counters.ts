import type { Kysely } from 'kysely';

/**
 * Consecutive-failure limits (wrong passwords, wrong second-factor codes) per account:
 * settled failures since the last success, the lock, and the attempts in flight
 * (services/limits.ts states the invariant). Replaces rate-limiter-flexible's
 * rate_limits_password_account / rate_limits_mfa_account tables, which are left alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('attempt_counters')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_failure_at', 'bigint')
    .addColumn('locked_until', 'bigint')
    .addColumn('inflight', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('inflight_expires_at', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
