/**
 * The outbox: mail is written to a table in the same transaction as what caused it, and
 * a background worker sends it. Sending therefore never blocks or breaks a request, and
 * a mail server that is down loses nothing: failed attempts are retried with backoff
 * until the server is back (or the message is three days old).
 */
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { SecretBox } from '../services/keys.js';
import { newId } from '../services/keys.js';
import type { MailOutboxStore } from '../store/mail-outbox.js';
import type { Database } from '../store/schema.js';
import type { MailTransport } from './transport.js';

export interface QueuedMail {
  userId: string | null;
  /** The security event type (also the X-Gatehouse-Event header), or e.g. `email.confirm`. */
  eventType: string;
  to: string;
  subject: string;
  text: string;
}

export interface OutboxOptions {
  from: string;
  /** How often the worker looks for due mail, ms. */
  pollMs?: number;
  /** First retry delay and cap, ms (doubling in between). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Give up on a message this old, ms. */
  maxAgeMs?: number;
  /** The clock (GatehouseConfig.now). */
  now?: () => number;
}

const LEASE_MS = 60_000;
const BATCH = 25;

export const bodyContext = (id: string) => `gatehouse/mail-outbox/${id}`;

export class MailOutbox {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private closed = false;
  private readonly pollMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly maxAgeMs: number;

  constructor(
    private readonly store: MailOutboxStore,
    private readonly transport: MailTransport,
    private readonly box: SecretBox,
    private readonly logger: Logger,
    private readonly options: OutboxOptions,
  ) {
    this.pollMs = options.pollMs ?? 1_000;
    this.retryBaseMs = options.retryBaseMs ?? 1_000;
    this.retryMaxMs = options.retryMaxMs ?? 60_000;
    this.maxAgeMs = options.maxAgeMs ?? 3 * 86_400_000;
  }

  get transportKind(): MailTransport['kind'] {
    return this.transport.kind;
  }

  /**
   * Queues a message; call it inside the transaction that records what the mail is about.
   * The body is encrypted at rest (it may carry a single-use link token).
   */
  async enqueue(trx: Transaction<Database> | Kysely<Database>, mail: QueuedMail, now = (this.options.now ?? Date.now)()): Promise<string> {
    const id = newId();
    await this.store.insert(trx, {
      id,
      user_id: mail.userId,
      event_type: mail.eventType,
      to_address: mail.to,
      subject: mail.subject,
      body_enc: this.box.encrypt(mail.text, bodyContext(id)),
      status: 'pending',
      next_attempt_at: now,
      last_error: null,
      created_at: now,
      sent_at: null,
    });
    this.kick();
    return id;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the worker and waits for an attempt in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    this.transport.close();
  }

  /** Soon after a commit, rather than at the next poll. */
  private kick(): void {
    if (!this.stopped) this.schedule(20);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Never keeps the process alive on its own.
    this.timer = setTimeout(() => void this.tick(), delayMs).unref();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.running) {
      // One pass at a time; come back when this one is done.
      await this.running;
      return this.schedule(0);
    }
    let next = this.pollMs;
    this.running = this.drain()
      .then((result) => {
        if (result.failedAfterMs !== null) next = Math.max(next, result.failedAfterMs);
      })
      .catch((err: unknown) => {
        this.logger.error({ err }, 'mail outbox pass failed');
        next = Math.max(next, this.retryBaseMs);
      });
    await this.running;
    this.running = null;
    this.schedule(next);
  }

  /**
   * Sends every due message once. Stops at the first failed send (the server is probably
   * down): the rest waits for the retry instead of hammering it.
   */
  async drain(now = this.options.now ?? (() => Date.now())): Promise<{ sent: number; failedAfterMs: number | null }> {
    let sent = 0;
    for (;;) {
      if (this.closed) return { sent, failedAfterMs: null };
      const ids = await this.store.due(now(), BATCH);
      if (ids.length === 0) return { sent, failedAfterMs: null };
      for (const id of ids) {
        if (this.closed) return { sent, failedAfterMs: null };
        const row = await this.store.claim(id, now(), LEASE_MS);
        if (!row) continue;
        try {
          const text = this.box.decrypt(row.body_enc, bodyContext(row.id));
          await this.transport.send({
            id: row.id,
            from: this.options.from,
            to: row.to_address,
            subject: row.subject,
            text,
            headers: { 'X-Gatehouse-Event': row.event_type },
          });
          await this.store.markSent(row.id, now());
          sent++;
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          if ((err as { permanent?: unknown }).permanent === true || now() - row.created_at > this.maxAgeMs) {
            await this.store.markFailed(row.id, message);
            this.logger.error({ mailId: row.id, event: row.event_type, attempts: row.attempts, error: message }, 'mail given up');
            continue;
          }
          const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.max(0, row.attempts - 1));
          await this.store.reschedule(row.id, now() + delay, message);
          this.logger.warn(
            { mailId: row.id, event: row.event_type, attempts: row.attempts, retryInMs: delay, error: message },
            'mail not sent; will retry',
          );
          return { sent, failedAfterMs: delay };
        }
      }
    }
  }
}
