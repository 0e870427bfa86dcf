import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';

interface DemoBankTables {
  demo_transactions: {
    id: string;
    user_id: string;
    counterparty: string;
    amount_cents: number;
    memo: string | null;
    at: number;
  };
}

export interface Transaction {
  id: string;
  counterparty: string;
  amountCents: number;
  memo: string | null;
  at: string;
}

/** The demo bank's own table, kept beside Gatehouse's in the same database. */
export class DemoBankStore {
  private readonly db: Kysely<DemoBankTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<DemoBankTables>;
  }

  /**
   * Creates the demo's table. Instances starting together on an empty PostgreSQL database
   * race on CREATE … IF NOT EXISTS (a duplicate type, relation or index name): the loser
   * tries again and finds what the winner made; a few tries settle any number of instances.
   */
  async migrate(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.createTable();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if ((code !== '23505' && code !== '42P07') || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  }

  private async createTable(): Promise<void> {
    await this.db.schema
      .createTable('demo_transactions')
      .ifNotExists()
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('counterparty', 'text', (c) => c.notNull())
      .addColumn('amount_cents', 'bigint', (c) => c.notNull())
      .addColumn('memo', 'text')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .execute();
    await sql`create index if not exists demo_transactions_user_at on demo_transactions (user_id, at)`.execute(this.db);
  }

  async list(userId: string): Promise<Transaction[]> {
    const rows = await this.db
      .selectFrom('demo_transactions')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('at', 'desc')
      .limit(100)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      counterparty: r.counterparty,
      amountCents: -Number(r.amount_cents),
      memo: r.memo,
      at: new Date(Number(r.at)).toISOString(),
    }));
  }

  async transfer(userId: string, to: string, amountCents: number, memo: string | null, now: number): Promise<string> {
    const id = crypto.randomUUID();
    await this.db
      .insertInto('demo_transactions')
      .values({ id, user_id: userId, counterparty: to, amount_cents: amountCents, memo, at: now })
      .execute();
    return id;
  }
}
