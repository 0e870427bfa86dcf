/**
 * A real SMTP server in-process (smtp-server) that keeps every message it receives, for
 * tests that check Gatehouse's mail: headers, bodies, links. It can be stopped and
 * restarted on the same port to play a mail server outage.
 */
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll } from 'vitest';
import { startFastServer, type TestServer } from './server.js';

export interface ReceivedMail {
  from: string;
  /** The recipients as smtp-server parsed them (it decodes punycode domains to Unicode). */
  to: string[];
  /** The RCPT TO addresses byte for byte as the client sent them. */
  rcptRaw: string[];
  raw: string;
  headers: Record<string, string>;
  /** The body after the blank line (7bit/8bit: no transfer decoding needed). */
  text: string;
  event: string | undefined;
}

function parse(raw: string, from: string, to: string[], rcptRaw: string[]): ReceivedMail {
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const text = raw
    .slice(split)
    .replace(/^\r?\n\r?\n/, '')
    .replace(/\r\n/g, '\n');
  return { from, to, rcptRaw, raw, headers, text, event: headers['x-gatehouse-event'] };
}

export class MailSink {
  readonly messages: ReceivedMail[] = [];
  private server: SMTPServer | null = null;
  port = 0;

  async start(port = 0): Promise<void> {
    // Raw RCPT TO lines per connection (id), read from smtp-server's command log.
    const rcpts = new Map<string, string[]>();
    const quiet = () => {};
    const logger = {
      trace: quiet,
      info: quiet,
      warn: quiet,
      error: quiet,
      fatal: quiet,
      debug: (entry: { tnx?: string; cid?: string; command?: string }, _message: string, line?: string) => {
        if (entry?.tnx !== 'command' || !entry.cid || typeof line !== 'string') return;
        if (entry.command === 'MAIL') rcpts.set(entry.cid, []);
        const m = /^RCPT TO:\s*<([^>]*)>/i.exec(line);
        if (m) rcpts.set(entry.cid, [...(rcpts.get(entry.cid) ?? []), m[1]!]);
      },
    };
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: logger as never,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const rcptRaw = rcpts.get(session.id) ?? [];
          this.messages.push(
            parse(
              Buffer.concat(chunks).toString('utf8'),
              from,
              session.envelope.rcptTo.map((r) => r.address),
              rcptRaw,
            ),
          );
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.server.address() as { port: number }).port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Messages to `address` (as the envelope says), optionally of one event type. */
  to(address: string, event?: string): ReceivedMail[] {
    return this.messages.filter((m) => m.to.includes(address) && (event === undefined || m.event === event));
  }

  /** Waits until a message matching `predicate` has arrived. */
  async waitFor(predicate: (m: ReceivedMail) => boolean, timeoutMs = 10_000): Promise<ReceivedMail> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() > until) {
        throw new Error(
          `no matching mail within ${timeoutMs} ms; got: ${this.messages.map((m) => `${m.to.join(',')}:${m.event}`).join(' | ')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  waitForEvent(address: string, event: string, timeoutMs?: number): Promise<ReceivedMail> {
    return this.waitFor((m) => m.to.includes(address) && m.event === event, timeoutMs);
  }
}

/** The `token=` value of the first link in a mail body. */
export function linkToken(mail: ReceivedMail): string {
  const match = /[?&]token=([A-Za-z0-9_-]+)/.exec(mail.text);
  if (!match) throw new Error(`no token link in mail:\n${mail.text}`);
  return match[1]!;
}

/**
 * A fast test server whose mail goes to its own SMTP sink, started before the tests of the
 * calling file (or `describe`) and stopped after them. `env` adds settings.
 */
export function serverWithMailSink(env: Record<string, string> = {}): { readonly server: TestServer; readonly smtp: MailSink } {
  const smtp = new MailSink();
  let server: TestServer | undefined;
  beforeAll(async () => {
    await smtp.start();
    server = await startFastServer({ GATEHOUSE_SMTP_URL: smtp.url, ...env });
  });
  afterAll(async () => {
    await server?.close();
    await smtp.stop();
  });
  return {
    smtp,
    get server() {
      if (!server) throw new Error('the server starts in beforeAll');
      return server;
    },
  };
}
