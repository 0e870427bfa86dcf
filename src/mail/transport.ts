/**
 * Where mail physically goes: real SMTP when GATEHOUSE_SMTP_URL is set, otherwise a file
 * per message in `<dataDir>/mail/` plus a log line (which never carries the body, so a
 * link token never reaches the log).
 */
import fs from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import { parseEmail } from '../core/email.js';

export interface OutgoingMail {
  id: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  headers: Record<string, string>;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'file';
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** The bare address of a `Name <address>` sender (operator configuration), for the SMTP envelope. */
function bareAddress(value: string): string {
  return /<([^<>\s]+)>/.exec(value)?.[1] ?? value.trim();
}

/**
 * A recipient that is not exactly one mailbox in the grammar's stored form (core/email.ts),
 * e.g. an address stored before the grammar (`gatehouse doctor` lists them). Never sent:
 * a mail library would re-parse it and might deliver to another mailbox, or to several.
 * Permanent: the outbox gives the message up at once instead of retrying.
 */
export class RefusedRecipientError extends Error {
  readonly permanent = true;
  constructor() {
    super('recipient is not a single mailbox in the stored form; not sent (see gatehouse doctor)');
  }
}

/** The recipient as the stored, validated mailbox, or a RefusedRecipientError. */
export function recipientOf(stored: string): string {
  const parsed = parseEmail(stored);
  if (!parsed.ok || parsed.email.address !== stored) throw new RefusedRecipientError();
  return parsed.email.address;
}

const oneLine = (value: string) => value.replace(/[\r\n]+/g, ' ');

/**
 * The RFC 5322 message, composed here rather than by nodemailer so the body is never
 * quoted-printable: a link's `token=` must survive intact for people and tools that read
 * the raw message. Body lines stay far below the 998-octet limit; non-ASCII text (e.g. a
 * browser name) travels as 8bit UTF-8.
 */
export function composeMessage(mail: OutgoingMail, date = new Date()): string {
  const body = mail.text.replace(/\r\n?/g, '\n').split('\n');
  const ascii = /^[\x20-\x7e\t]*$/.test(mail.text.replace(/[\r\n]/g, ''));
  const headers = [
    `From: ${oneLine(mail.from)}`,
    `To: ${oneLine(mail.to)}`,
    `Subject: ${oneLine(mail.subject)}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    // Stable per outbox row: a retry after an ambiguous failure carries the same id.
    `Message-ID: <${mail.id}@gatehouse>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : '8bit'}`,
    ...Object.entries(mail.headers).map(([k, v]) => `${k}: ${oneLine(v)}`),
  ];
  return [...headers, '', ...body].join('\r\n') + '\r\n';
}

/**
 * An explicit envelope of address objects: nodemailer takes RCPT TO from here and never
 * parses a recipient string (the raw message's To: header is ours, not read for routing).
 */
export function toNodemailer(mail: OutgoingMail) {
  const to = recipientOf(mail.to);
  return {
    envelope: { from: { name: '', address: bareAddress(mail.from) }, to: [{ name: '', address: to }] },
    raw: composeMessage({ ...mail, to }),
  };
}

export function smtpTransport(url: string, logger: Logger): MailTransport {
  const transporter = nodemailer.createTransport({
    url,
    // A dead or black-holed server must fail an attempt quickly; the outbox retries.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
  });
  return {
    kind: 'smtp',
    async send(mail) {
      const info = await transporter.sendMail(toNodemailer(mail));
      // Belt and braces: what went out as RCPT TO must be exactly the stored mailbox.
      if (info.envelope.to.length !== 1 || info.envelope.to[0] !== mail.to) {
        logger.error({ mailId: mail.id, event: mail.headers['X-Gatehouse-Event'] }, 'SMTP envelope differed from the stored address');
      }
      logger.info({ mailId: mail.id, to: mail.to, event: mail.headers['X-Gatehouse-Event'] }, 'mail sent over SMTP');
    },
    close: () => transporter.close(),
  };
}

export function fileTransport(dir: string, logger: Logger): MailTransport {
  const transporter = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    kind: 'file',
    async send(mail) {
      const info = await transporter.sendMail(toNodemailer(mail));
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = path.join(dir, `${stamp}-${mail.id}.eml`);
      // The message may carry a reset or confirmation link: readable by the owner only.
      // Written under a temporary name and renamed: a reader never sees half a message.
      const partial = path.join(dir, `.${stamp}-${mail.id}.partial`);
      await fs.promises.writeFile(partial, info.message as Buffer, { mode: 0o600 });
      await fs.promises.rename(partial, file);
      logger.info(
        { mailId: mail.id, to: mail.to, subject: mail.subject, event: mail.headers['X-Gatehouse-Event'], file },
        'mail written to file (GATEHOUSE_SMTP_URL is not set)',
      );
    },
    close: () => transporter.close(),
  };
}
