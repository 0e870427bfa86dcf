/**
 * The append-only security log. Every security-relevant thing that happens to an account
 * is recorded here; the account's event list and the notifications are fed from it.
 */
import type { Kysely, Transaction } from 'kysely';
import type { SecurityEventName } from '../core/events.js';
import type { EventStore } from '../store/events.js';
import type { Database, EventsTable } from '../store/schema.js';
import type { RequestContext } from './context.js';
import { newId } from './keys.js';

/** A recorded event. Its type is closed: a new event gets its name in core/events.ts (the public event map follows). */
export interface SecurityEvent extends Omit<EventsTable, 'type'> {
  type: SecurityEventName;
  parsedDetails: Record<string, unknown>;
}

/** Called after an event is stored (in the same transaction when there is one). */
export type EventListener = (event: SecurityEvent, trx: Transaction<Database> | Kysely<Database>) => Promise<void>;

export class SecurityLog {
  private readonly listeners: EventListener[] = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly store: EventStore,
  ) {}

  onEvent(listener: EventListener): void {
    this.listeners.push(listener);
  }

  /**
   * Runs `change` and records `events` after it, in one transaction: the change is never
   * without its events, and one commit replaces several (the login's second step).
   */
  async recordWith<T>(
    change: (trx: Transaction<Database>) => Promise<T>,
    userId: string,
    ctx: RequestContext,
    events: Array<[SecurityEventName, Record<string, unknown>]>,
  ): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const result = await change(trx);
      for (const [type, details] of events) await this.record(type, userId, ctx, details, trx);
      return result;
    });
  }

  async record(
    type: SecurityEventName,
    userId: string | null,
    ctx: RequestContext,
    details: Record<string, unknown> = {},
    trx?: Transaction<Database>,
  ): Promise<void> {
    const event: SecurityEvent = {
      id: newId(),
      user_id: userId,
      type,
      at: ctx.now,
      ip: ctx.ip,
      user_agent: ctx.userAgent.slice(0, 512),
      details: JSON.stringify(details),
      parsedDetails: details,
    };
    const run = async (t: Transaction<Database> | Kysely<Database>) => {
      const { parsedDetails: _unused, ...row } = event;
      await this.store.insert(t, row);
      for (const listener of this.listeners) await listener(event, t);
    };
    if (trx) await run(trx);
    else await this.db.transaction().execute(run);
  }

  list(userId: string, limit = 100) {
    return this.store.listForUser(userId, limit);
  }
}
