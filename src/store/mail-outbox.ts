import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, MailOutboxTable } from './schema.js';

export type OutboxRow = Selectable<MailOutboxTable>;

export class MailOutboxStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Transaction<Database> | Kysely<Database>, row: Omit<OutboxRow, 'attempts'>): Promise<void> {
    await trx.insertInto('mail_outbox').values(row).execute();
  }

  /** Ids of pending messages whose next attempt is due, oldest first. */
  async due(now: number, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('mail_outbox')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .orderBy('created_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Takes a due message for one attempt: pushes its next attempt out by the lease, so no
   * other worker (or instance) sends it meanwhile. Null when someone else took it.
   */
  async claim(id: string, now: number, leaseMs: number): Promise<OutboxRow | null> {
    const row = await this.db
      .updateTable('mail_outbox')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: now + leaseMs }))
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .returningAll()
      .executeTakeFirst();
    return row ?? null;
  }

  /** Sent: the body (which may hold a link token) is dropped. */
  async markSent(id: string, now: number): Promise<void> {
    await this.db
      .updateTable('mail_outbox')
      .set({ status: 'sent', sent_at: now, body_enc: '', last_error: null })
      .where('id', '=', id)
      .execute();
  }

  async reschedule(id: string, nextAttemptAt: number, error: string): Promise<void> {
    await this.db
      .updateTable('mail_outbox')
      .set({ next_attempt_at: nextAttemptAt, last_error: error.slice(0, 500) })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  async markFailed(id: string, error: string): Promise<void> {
    await this.db
      .updateTable('mail_outbox')
      .set({ status: 'failed', body_enc: '', last_error: error.slice(0, 500) })
      .where('id', '=', id)
      .execute();
  }

  /** Deletes the sent messages (their bodies are already gone) sent at or before `sentBefore`; the number deleted. */
  async deleteSent(sentBefore: number): Promise<number> {
    const result = await this.db
      .deleteFrom('mail_outbox')
      .where('status', '=', 'sent')
      .where('sent_at', '<=', sentBefore)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Whether a message of this type went (or is going) to this account since `since`. */
  async queuedSince(trx: Transaction<Database> | Kysely<Database>, userId: string, eventType: string, since: number): Promise<boolean> {
    const row = await trx
      .selectFrom('mail_outbox')
      .select('id')
      .where('user_id', '=', userId)
      .where('event_type', '=', eventType)
      .where('created_at', '>=', since)
      .executeTakeFirst();
    return row !== undefined;
  }

  counts(): Promise<Array<{ status: string; n: number }>> {
    return this.db
      .selectFrom('mail_outbox')
      .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute();
  }
}
