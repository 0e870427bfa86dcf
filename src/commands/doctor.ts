/**
 * `gatehouse doctor`: lists stored data that the current rules refuse, without changing
 * anything. Today: e-mail addresses stored before the strict grammar (core/email.ts).
 *
 * - `invalid`: the stored address is not one bare mailbox (a display name, a list, an
 *   invisible character, a look-alike domain, ...). The account can no longer sign in by
 *   that address (login answers 400), and no mail is sent to it (the outbox gives such a
 *   message up): a mail library would re-parse it and might deliver elsewhere.
 * - `not_canonical`: the address is valid but not stored in its canonical form (e.g. an
 *   internationalised domain in Unicode, an upper-case domain) or its matching key is the
 *   old one; login and reset look accounts up by the new key, so they miss it.
 * - pending e-mail changes whose new address is invalid (they can no longer be confirmed
 *   safely) and queued mail to an address that would be refused.
 *
 * What an operator should do is in docs/security.md ("Stored e-mail addresses").
 */
import { loadConfig } from '../config.js';
import { parseEmail } from '../core/email.js';
import { openDatabase } from '../store/database.js';

export interface AddressFinding {
  kind: 'account' | 'pending_change' | 'queued_mail';
  /** The user (account, pending change) or outbox message id. */
  id: string;
  userId: string | null;
  /** The stored value, with invisible and control characters escaped for the terminal. */
  stored: string;
  status: 'invalid' | 'not_canonical';
  /** Why, or (not_canonical) what the canonical form would be. */
  reason: string;
  /** For not_canonical: the canonical stored form and key. */
  canonical?: { address: string; key: string };
}

const HELP = `Usage: gatehouse doctor [--json]

Lists stored data that current rules refuse, changing nothing: e-mail addresses of accounts,
pending e-mail changes and queued mail that are not one bare mailbox in canonical form.
Uses the same environment as the server (GATEHOUSE_DATABASE_URL, GATEHOUSE_DATA_DIR).
Exit code 0: nothing found; 1: findings (see docs/security.md, "Stored e-mail addresses").

  --json   print the findings as JSON
`;

/** Shows what a terminal would hide or act on. */
export function visible(value: string): string {
  return [...value]
    .map((ch) =>
      /[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}]/u.test(ch) && ch !== ' ' ? `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}` : ch,
    )
    .join('');
}

function check(
  kind: AddressFinding['kind'],
  id: string,
  userId: string | null,
  stored: string,
  storedKey: string | null,
): AddressFinding | null {
  const parsed = parseEmail(stored);
  if (!parsed.ok) return { kind, id, userId, stored: visible(stored), status: 'invalid', reason: parsed.message };
  const { address, key } = parsed.email;
  if (address !== stored || (storedKey !== null && key !== storedKey)) {
    return {
      kind,
      id,
      userId,
      stored: visible(stored),
      status: 'not_canonical',
      reason: `canonical form ${address}${storedKey !== null && key !== storedKey ? ` (key ${key}, stored key ${visible(storedKey)})` : ''}`,
      canonical: { address, key },
    };
  }
  return null;
}

export async function findAddressProblems(env: NodeJS.ProcessEnv = process.env, now = Date.now()): Promise<AddressFinding[]> {
  const config = loadConfig(env);
  const database = await openDatabase(config.databaseUrl);
  const { db } = database;
  const findings: AddressFinding[] = [];
  const add = (f: AddressFinding | null) => {
    if (f) findings.push(f);
  };
  try {
    for (const u of await db.selectFrom('users').select(['id', 'email', 'email_normalized']).orderBy('created_at').execute()) {
      add(check('account', u.id, u.id, u.email, u.email_normalized));
    }
    const changes = await db
      .selectFrom('email_changes')
      .select(['id', 'user_id', 'new_email'])
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
    for (const c of changes) add(check('pending_change', c.id, c.user_id, c.new_email, null));
    for (const m of await db.selectFrom('mail_outbox').select(['id', 'user_id', 'to_address']).where('status', '=', 'pending').execute()) {
      add(check('queued_mail', m.id, m.user_id, m.to_address, null));
    }
  } finally {
    await database.close();
  }
  return findings;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--json');
  if (unknown.length) {
    process.stderr.write(`gatehouse doctor: unknown option ${unknown[0]}\n\n${HELP}`);
    return 2;
  }
  const findings = await findAddressProblems(process.env);
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ findings }, null, 2)}\n`);
  } else if (findings.length === 0) {
    process.stdout.write('e-mail addresses: all stored addresses are single mailboxes in canonical form\n');
  } else {
    process.stdout.write(`e-mail addresses: ${findings.length} finding(s); nothing was changed\n`);
    for (const f of findings) {
      process.stdout.write(`  ${f.status.padEnd(13)} ${f.kind.padEnd(14)} ${f.id}  ${f.stored}\n${' '.repeat(31)}${f.reason}\n`);
    }
    process.stdout.write('What to do: docs/security.md, "Stored e-mail addresses".\n');
  }
  return findings.length === 0 ? 0 : 1;
}
