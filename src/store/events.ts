import type { Kysely, Transaction } from 'kysely';
import type { Database, EventsTable } from './schema.js';

export class EventStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(trx: Transaction<Database> | Kysely<Database>, event: EventsTable): Promise<void> {
    await trx.insertInto('events').values(event).execute();
  }

  listForUser(userId: string, limit: number): Promise<EventsTable[]> {
    return this.db
      .selectFrom('events')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }
}
