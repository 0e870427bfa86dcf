/**
 * Mail as the file transport writes it (GATEHOUSE_SMTP_URL unset): one file per message
 * in `<data dir>/mail`, quoted-printable. For the SMTP transport see ./smtp.ts.
 */
import fs from 'node:fs';
import path from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The files in the mail folder (only the finished `.eml` ones with `emlOnly`), newest (by
 * file name) first, soft line breaks and `=3D` undone.
 */
function mailTexts(dataDir: string, emlOnly = false): string[] {
  const dir = path.join(dataDir, 'mail');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => !emlOnly || f.endsWith('.eml'))
    .sort()
    .reverse()
    .map((f) => decodeMail(fs.readFileSync(path.join(dir, f), 'utf8')));
}

/** A message file's text with quoted-printable soft line breaks and `=3D` undone. */
export const decodeMail = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');

/** Whether `text` (a message or its header) has a `To:` line naming `to`. */
export const addressedTo = (text: string, to: string) => new RegExp(`^To: .*${to.replace(/[.+]/g, '\\$&')}`, 'mi').test(text);

export interface MailedTokenOptions {
  /** Only messages to this address. */
  to?: string;
  /** Where the token stands; the first group is the token. */
  link?: RegExp;
  timeoutMs?: number;
}

/** The token in the newest mailed link (by file name) that matches; null when none comes within the timeout. */
export async function mailedToken(dataDir: string, options: MailedTokenOptions = {}): Promise<string | null> {
  const { to, link = /[?&]token=([A-Za-z0-9_\-.~]+)/, timeoutMs = 15_000 } = options;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const text of mailTexts(dataDir)) {
      if (to !== undefined && !addressedTo(text, to)) continue;
      const m = link.exec(text);
      if (m) return m[1]!;
    }
    await sleep(100);
  }
  return null;
}

export interface MailedLinkOptions {
  /** The recipient (its `To:` header). */
  to: string;
  /** The message's `X-Gatehouse-Event` header, e.g. `password_reset.requested`. */
  event: string;
  /** The path of the link, e.g. `/confirm-email`; the link carries `?token=`. */
  linkPath: string;
  timeoutMs?: number;
}

/**
 * Waits for the newest mail of `event` to `to` and returns its text and its `linkPath`
 * link; throws when that mail has no such link or none comes within the timeout.
 */
export async function mailedMessage(dataDir: string, options: MailedLinkOptions): Promise<{ raw: string; link: URL }> {
  const { to, event, linkPath, timeoutMs = 10_000 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const raw of mailTexts(dataDir, true)) {
      const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
      if (!addressedTo(head, to) || !head.includes(`X-Gatehouse-Event: ${event}`)) continue;
      const link = new RegExp(`https?://\\S+${linkPath}\\?token=[A-Za-z0-9_-]+`).exec(raw);
      if (!link) throw new Error(`no ${linkPath} link in:\n${raw}`);
      return { raw, link: new URL(link[0]) };
    }
    if (Date.now() > deadline) throw new Error(`no ${event} mail to ${to} in ${path.join(dataDir, 'mail')}`);
    await sleep(50);
  }
}

/** The `linkPath` link in the newest mail of `event` to `to` (see `mailedMessage`). */
export async function mailedLink(dataDir: string, options: MailedLinkOptions): Promise<URL> {
  return (await mailedMessage(dataDir, options)).link;
}

/** Whether any mail so far mentions `to` (for "nothing was sent"). */
export function anyMailTo(dataDir: string, to: string): boolean {
  return mailTexts(dataDir).some((text) => text.includes(to));
}

/** The finished messages of `event` to `to` so far, newest first (for counting, or mail without a link). */
export function mailsOf(dataDir: string, options: { to: string; event: string }): string[] {
  return mailTexts(dataDir, true).filter((raw) => {
    const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
    return addressedTo(head, options.to) && head.includes(`X-Gatehouse-Event: ${options.event}`);
  });
}

/** Waits for the newest message of `event` to `to` (see `mailsOf`); throws when none comes within the timeout. */
export async function mailOf(dataDir: string, options: { to: string; event: string; timeoutMs?: number }): Promise<string> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const found = mailsOf(dataDir, options)[0];
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${options.event} mail to ${options.to} in ${path.join(dataDir, 'mail')}`);
    await sleep(50);
  }
}
