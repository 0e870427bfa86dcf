// A password reset proves control of the mailbox, not of the second factor, so it must
// never hand out a session. The reset token is read from the target's reply (test builds)
// or from a directory the target writes mail to.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { sleep } from '../http-client.js';
import { missingNote } from '../context.js';
import { describeExtractor, extractorOf } from '../extract.js';
import { setPath } from '../matchers.js';
import { blocked, bypassed, Inconclusive, type Check } from './types.js';

export const passwordResetSession: Check = {
  id: 'password-reset-session',
  title: 'Password reset grants a session',
  severity: 'high',
  references: ['WSTG-ATHN-09', 'WSTG-ATHN-11', 'ASVS 5.0 V6.4.3'],
  description:
    'Requests a password reset, completes it with the token from the reset mail, and checks whether the client ' +
    'that did so is now logged in. Whoever reads the victim’s mail would then skip the second factor.',
  fixHint: 'Finish a reset without a session: send the user to the normal login, which asks for the second factor.',
  notApplicable: (p) =>
    !p.passwordReset
      ? 'the profile has no passwordReset'
      : !p.safety.allowAccountChanges
        ? 'a reset changes the password: set safety.allowAccountChanges: true to test'
        : undefined,
  plan: (p) => [
    `${p.passwordReset?.request.method} ${p.passwordReset?.request.path} for the first account`,
    p.passwordReset?.token.from === 'mailDir'
      ? `read the reset token from the newest mail under ${p.passwordReset.token.dir}`
      : `read the reset token from the response (${p.passwordReset?.token.from === 'response' ? describeExtractor(extractorOf(p.passwordReset.token, p.passwordReset.token.field)) : ''})`,
    `${p.passwordReset?.reset.method} ${p.passwordReset?.reset.path} (new password = ${p.passwordReset?.newPassword ? 'passwordReset.newPassword' : 'the current one'})`,
    `${p.whoami.method} ${p.whoami.path} with whatever the reset response set`,
  ],
  async run(ctx) {
    const cfg = ctx.profile.passwordReset;
    if (!cfg) throw new Inconclusive('the profile has no passwordReset');
    const since = Date.now();
    const reqBody = structuredClone(cfg.request.body ?? {});
    setPath(reqBody, cfg.request.emailField, ctx.account.email ?? ctx.account.username);
    // A client of its own, so that a fetchFirst page's cookies go with the request.
    const asker = ctx.newSession();
    const asked = await ctx.retryLimited(
      'the reset request',
      () => ctx.sendStep(cfg.request, { ...cfg.request, body: reqBody, note: 'ask for a password reset' }, asker),
      (r) => (r.status >= 400 ? r : undefined),
    );
    if (asked.status >= 400)
      throw new Inconclusive(`the target refused the reset request (status ${asked.status}${missingNote(asked.missing)})`);
    const token =
      cfg.token.from === 'response'
        ? ctx.extract(cfg.token, asked, asker, cfg.token.field)
        : await tokenFromMail(cfg.token.dir, cfg.token.pattern, since);
    if (!token) throw new Inconclusive('no reset token found (check passwordReset.token)');
    ctx.secrets.add(token);

    const session = ctx.newSession();
    const body = structuredClone(cfg.reset.body ?? {});
    // `{token}` in the path or query (e.g. /reset/{token}) places it there; else a body field.
    const inUrl = JSON.stringify([cfg.reset.path, cfg.reset.query]).includes('{token}');
    if (cfg.reset.tokenField !== undefined || !inUrl) setPath(body, cfg.reset.tokenField ?? 'token', token);
    setPath(body, cfg.reset.passwordField, cfg.newPassword ?? ctx.account.password);
    const reset = await ctx.retryLimited(
      'the reset',
      () =>
        ctx.sendStep(cfg.reset, { ...cfg.reset, body, note: 'complete the reset with the token' }, session, {
          vars: { token },
          takeToken: true,
        }),
      (r) => (r.status >= 400 ? r : undefined),
    );
    if (reset.status >= 400) throw new Inconclusive(`the target refused the reset (status ${reset.status}${missingNote(reset.missing)})`);
    if (cfg.newPassword) ctx.account.password = cfg.newPassword;
    if (session.isEmpty()) return blocked(`The reset succeeded (status ${reset.status}) and set no session at all.`);
    const me = await ctx.whoami(session, 'ask who-am-I with what the reset response set');
    if (me.ok)
      return bypassed(
        `The reset response set a session that reaches ${ctx.profile.whoami.path} (status ${me.res.status}) with no second factor.`,
      );
    return blocked(
      `The reset set a cookie or token, but it gets status ${me.res.status} from ${ctx.profile.whoami.path}.`,
      ctx.refusalWhy(me.res, `whoami.success`),
    );
  },
};

/** Polls the mail directory briefly: mail is often written just after the response. */
export async function tokenFromMail(dir: string, pattern: string, since: number, maxTries = 20): Promise<string | undefined> {
  const re = new RegExp(pattern, 'g');
  for (let tries = 0; tries < maxTries; tries++) {
    const files = await recentFiles(dir, since - 1000);
    for (const file of files) {
      // Undo quoted-printable (soft breaks, "=3D") so tokens in raw .eml files match.
      // Renamed or removed since it was listed: not ours to read.
      const raw = await readFile(file, 'utf8').catch(() => undefined);
      if (raw === undefined) continue;
      const text = raw.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
      const found = [...text.matchAll(re)].map((m) => m[1] ?? m[0]);
      const last = found[found.length - 1];
      if (last) return decodeURIComponent(last);
    }
    await sleep(250);
  }
  return undefined;
}

/** Files under `dir` modified after `since`, newest first. */
async function recentFiles(dir: string, since: number): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir, { recursive: true });
  } catch {
    return [];
  }
  const withTimes: { path: string; mtime: number }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const s = await stat(path).catch(() => undefined);
    // Size cap: skip databases and logs that happen to live next to the mail. A file still
    // being written (`*.partial`, `*.tmp`, dot-files: renamed into place when complete) is
    // not mail yet, and may be gone by the time it would be read.
    if (/(?:\.partial|\.tmp|~)$/i.test(name) || basename(name).startsWith('.')) continue;
    if (s?.isFile() && s.mtimeMs >= since && s.size < 1_000_000) withTimes.push({ path, mtime: s.mtimeMs });
  }
  return withTimes.sort((a, b) => b.mtime - a.mtime).map((f) => f.path);
}
