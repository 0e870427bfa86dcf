/**
 * The channel for mail that carries a single-use link (`LinkMailEvents` in core/events.ts).
 * Use cases raise the event inside the transaction that stored the link's token; the mail
 * module's listener queues the message in that same transaction, so either both happen or
 * neither. Services depend on this channel, never on mail.
 */
import type { Transaction } from 'kysely';
import type { LinkMailEventName, LinkMailEvents } from '../core/events.js';
import type { Database } from '../store/schema.js';
import type { RequestContext } from './context.js';

export type LinkMailListener<K extends LinkMailEventName> = (
  event: LinkMailEvents[K],
  ctx: RequestContext,
  trx: Transaction<Database>,
) => Promise<void>;

export class LinkMailChannel {
  private readonly listeners: { [K in LinkMailEventName]?: LinkMailListener<K> } = {};

  /** One listener per event: the mail module. */
  on<K extends LinkMailEventName>(type: K, listener: LinkMailListener<K>): void {
    if (this.listeners[type]) throw new Error(`a listener for ${type} is already registered`);
    (this.listeners as Record<K, LinkMailListener<K>>)[type] = listener;
  }

  /**
   * Hands the link to the mail listener. Without one the link could never arrive, so
   * this throws (and the transaction that stored its token rolls back).
   */
  async emit<K extends LinkMailEventName>(
    type: K,
    event: LinkMailEvents[K],
    ctx: RequestContext,
    trx: Transaction<Database>,
  ): Promise<void> {
    const listener = this.listeners[type] as LinkMailListener<K> | undefined;
    if (!listener) throw new Error(`no mail listener for ${type}`);
    await listener(event, ctx, trx);
  }
}
