/**
 * `gatehouse admin …` (docs/policy.md). Two kinds of subcommand:
 *
 * - Operator commands on the database, with the server's environment (like `rotate-key`):
 *   `roles`, `sessions`, `revoke-sessions`, `unlock`. Whoever runs them already holds
 *   the database; they are recorded as done `by: cli` and never yield a session.
 * - `reset-factors`, which removes someone's second factors, is done as a person: the
 *   command signs in to the running server's API as the admin (password and the admin's
 *   own second factor, read from stdin) and calls the admin route, which requires the
 *   `admin` role and a fresh second factor. The database is not touched directly.
 */
import readline from 'node:readline';
import { request } from 'undici';
import { loadConfig } from '../config.js';
import { assembleGatehouse, type Gatehouse } from '../gatehouse.js';
import type { Actor } from '../services/admin.js';

const HELP = `Usage: gatehouse admin <subcommand> [arguments]

On the database (same environment as the server: GATEHOUSE_DATABASE_URL, GATEHOUSE_DATA_DIR, ...):
  roles <email> [role ...]     show the account's roles, or set them (none: "roles <email> --none")
  sessions <email>             list the account's live sessions
  revoke-sessions <email>      sign the account out everywhere (sessions and remember-me)
  unlock <email>               lift a lockout after too many failed passwords or codes

Through the running server, signed in as an admin with your own second factor:
  reset-factors <email> --server <url> --admin <admin-email> [--method totp|recovery_code]
                               remove the account's second factors; its owner is mailed a one-time
                               recovery link. Reads your password, then your code, one per line from
                               stdin (prompted on a terminal).
`;

const operator: Actor = { kind: 'operator', via: 'cli' };
const cliCtx = (g: Gatehouse) => ({ ip: 'cli', userAgent: 'gatehouse admin', now: g.config.now() });

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function withGatehouse<T>(run: (g: Gatehouse) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  config.logLevel = 'warn';
  const g = await assembleGatehouse(config);
  try {
    return await run(g);
  } finally {
    await g.close();
  }
}

/** Lines from stdin (or prompts on a terminal), read one at a time. */
function lineReader(): { ask(prompt: string): Promise<string>; close(): void } {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const lines: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  let ended = false;
  rl.on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  rl.on('close', () => {
    ended = true;
    while (waiting.length) waiting.shift()!('');
  });
  return {
    ask(prompt) {
      if (process.stdin.isTTY) process.stderr.write(prompt);
      if (lines.length) return Promise.resolve(lines.shift()!);
      if (ended) return Promise.resolve('');
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: () => rl.close(),
  };
}

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function api(base: string, method: string, path: string, token: string | null, body?: unknown) {
  const res = await request(`${base}${path}`, {
    method: method as 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, body: json };
}

/** Signs in as the admin (password, then the admin's own second factor) and resets the target's factors. */
export async function resetFactorsRemotely(options: {
  server: string;
  adminEmail: string;
  targetEmail: string;
  method: 'totp' | 'recovery_code';
  ask(prompt: string): Promise<string>;
}): Promise<{ ok: boolean; message: string }> {
  const base = options.server.replace(/\/+$/, '');
  const password = await options.ask('Admin password: ');
  const login = await api(base, 'POST', '/api/auth/login', null, { email: options.adminEmail, password, transport: 'token' });
  if (login.status !== 202 || login.body.status !== 'mfa_required') {
    return {
      ok: false,
      message:
        login.status === 200
          ? 'this admin account has no second factor: set one up first (a reset needs your own factor)'
          : `sign-in refused: ${String(login.body.error ?? login.status)}`,
    };
  }
  let token = String(login.body.sessionToken);
  try {
    const code = await options.ask(`Your ${options.method === 'totp' ? 'authenticator code' : 'recovery code'}: `);
    const verified = await api(base, 'POST', '/api/auth/mfa/verify', token, { method: options.method, code });
    if (verified.status !== 200) return { ok: false, message: `second factor refused: ${String(verified.body.error ?? verified.status)}` };
    token = String(verified.body.sessionToken);
    const found = await api(base, 'GET', `/api/admin/users?email=${encodeURIComponent(options.targetEmail)}`, token);
    if (found.status !== 200) return { ok: false, message: `lookup refused: ${String(found.body.error ?? found.status)}` };
    const user = found.body.user as { id: string };
    const reset = await api(base, 'POST', `/api/admin/users/${encodeURIComponent(user.id)}/factors/reset`, token, {});
    if (reset.status !== 200) return { ok: false, message: `reset refused: ${String(reset.body.error ?? reset.status)}` };
    return { ok: true, message: `reset the second factors of ${options.targetEmail}; a one-time recovery link was mailed to them` };
  } finally {
    await api(base, 'POST', '/api/auth/logout', token).catch(() => undefined);
  }
}

export async function adminCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || rest.includes('--help')) {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const email = rest[0];
  if (!email || email.startsWith('--')) {
    process.stderr.write(`gatehouse admin ${sub}: which account? (an e-mail address)\n\n${HELP}`);
    return 2;
  }
  switch (sub) {
    case 'roles':
      return withGatehouse(async (g) => {
        const user = await g.admin.findUser(email);
        const roles = rest.slice(1);
        if (roles.length === 0) {
          out((JSON.parse(user.roles) as string[]).join(' ') || '(no roles)');
          return 0;
        }
        const set = await g.admin.setRoles(user.id, roles.includes('--none') ? [] : roles, operator, cliCtx(g));
        out(`roles of ${user.email}: ${set.roles.join(' ') || '(none)'}`);
        if (set.dueAt !== null) out(`a second factor is required from ${new Date(set.dueAt).toISOString()} (grace period)`);
        return 0;
      });
    case 'sessions':
      return withGatehouse(async (g) => {
        const user = await g.admin.findUser(email);
        for (const s of await g.admin.listSessions(user.id, g.config.now()))
          out(`${s.id}  ${s.state.padEnd(9)}  ${s.ip}  since ${s.createdAt}  last seen ${s.lastSeenAt}  ${s.userAgent.slice(0, 60)}`);
        return 0;
      });
    case 'revoke-sessions':
      return withGatehouse(async (g) => {
        const user = await g.admin.findUser(email);
        await g.admin.revokeSessions(user.id, operator, cliCtx(g));
        out(`signed ${user.email} out everywhere`);
        return 0;
      });
    case 'unlock':
      return withGatehouse(async (g) => {
        await g.admin.unlock((await g.admin.findUser(email)).id, operator, cliCtx(g));
        out(`unlocked ${email}`);
        return 0;
      });
    case 'reset-factors': {
      const server = option(rest, '--server');
      const adminEmail = option(rest, '--admin');
      const method = option(rest, '--method') ?? 'totp';
      if (!server || !adminEmail || (method !== 'totp' && method !== 'recovery_code')) {
        process.stderr.write(`gatehouse admin reset-factors: needs --server <url> and --admin <email>\n\n${HELP}`);
        return 2;
      }
      const lines = lineReader();
      try {
        const result = await resetFactorsRemotely({ server, adminEmail, targetEmail: email, method, ask: lines.ask });
        (result.ok ? process.stdout : process.stderr).write(`${result.message}\n`);
        return result.ok ? 0 : 1;
      } finally {
        lines.close();
      }
    }
    default:
      process.stderr.write(`gatehouse admin: unknown subcommand "${sub}"\n\n${HELP}`);
      return 2;
  }
}
