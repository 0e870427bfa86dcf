/**
 * Mail for Gatehouse: the transport chosen by configuration, the outbox and its worker,
 * the security-notification listener and the link-mail listener.
 */
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config.js';
import type { SecretBox } from '../services/keys.js';
import type { LinkMailChannel } from '../services/link-mail.js';
import type { SecurityLog } from '../services/security-log.js';
import { MailOutboxStore } from '../store/mail-outbox.js';
import type { Database } from '../store/schema.js';
import { subscribeLinkMail } from './link-mail.js';
import { notificationListener } from './notifications.js';
import { MailOutbox, type OutboxOptions } from './outbox.js';
import { fileTransport, smtpTransport } from './transport.js';

export { NOTIFIED_EVENT_TYPES } from './notifications.js';

export interface Mail {
  outbox: MailOutbox;
  store: MailOutboxStore;
  /** Starts the background sender (unref'd timer). */
  start(): void;
  /** Stops it, waiting for a send in flight. */
  stop(): Promise<void>;
}

export function createMail(
  deps: {
    config: GatehouseConfig;
    db: Kysely<Database>;
    box: SecretBox;
    logger: Logger;
    log: SecurityLog;
    linkMail: LinkMailChannel;
    /** The public URL of the pages (mailed links point at them). */
    pagesUrl: () => string;
  },
  options: Partial<OutboxOptions> = {},
): Mail {
  const { config, db, box, logger, log, linkMail, pagesUrl } = deps;
  const mailLogger = logger.child({ component: 'mail' });
  const transport = config.smtpUrl
    ? smtpTransport(config.smtpUrl, mailLogger)
    : fileTransport(path.join(config.dataDir, 'mail'), mailLogger);
  const store = new MailOutboxStore(db);
  const outbox = new MailOutbox(store, transport, box, mailLogger, { from: config.mailFrom, now: config.now, ...options });
  // Read at enqueue time: with PORT=0 the public URL is only known after listen.
  // Links in mails point at pages: `pagesUrl` is the public URL and the pages' base path.
  const setting = () => ({ productName: config.productName, publicUrl: pagesUrl() });
  log.onEvent(notificationListener({ outbox, store, setting }));
  subscribeLinkMail(linkMail, outbox, setting);
  return { outbox, store, start: () => outbox.start(), stop: () => outbox.stop() };
}
