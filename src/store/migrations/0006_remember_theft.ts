/**
 * Remember-me theft detection (issue 18). A revoked token keeps its row (the tombstone)
 * with why it was revoked, so a later presentation can still be told apart: a token the
 * browser was told to drop (rotated, signed out, replaced) is evidence of a copy; one
 * revoked elsewhere (password change, the sessions list) is still in the owner's browser.
 * `alarmed_at` lets one replay burst notify once (a conditional UPDATE claims it).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('remember_tokens').addColumn('revoked_reason', 'text').execute();
  await db.schema.alterTable('remember_tokens').addColumn('alarmed_at', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('remember_tokens').dropColumn('alarmed_at').execute();
  await db.schema.alterTable('remember_tokens').dropColumn('revoked_reason').execute();
}
