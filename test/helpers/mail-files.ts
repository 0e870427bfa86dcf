/**
 * Mail as the file transport writes it (GATEHOUSE_SMTP_URL unset): one file per message
 * in `<data dir>/mail`, quoted-printable. For the SMTP transport see ./smtp.ts.
 */
import fs from 'node:fs';
import path from 'node:path';

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
  const dir = path.join(dataDir, 'mail');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(dir)) {
      for (const f of fs.readdirSync(dir).sort().reverse()) {
        const text = fs.readFileSync(path.join(dir, f), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
        if (to !== undefined && !new RegExp(`^To: .*${to.replace(/[.+]/g, '\\$&')}`, 'mi').test(text)) continue;
        const m = link.exec(text);
        if (m) return m[1]!;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}
