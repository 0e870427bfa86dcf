// The target as relying party of an upstream OpenID Provider (federated login): an attacker
// who holds an account at the upstream with the victim's e-mail address must not get the
// victim's account, nor a link to it, without the account's own second factor. The auditor
// is the upstream here (upstream.ts): it signs the attacker in at once, with the audited
// account's address marked verified.
import { randomBytes } from 'node:crypto';
import type { AuditContext } from '../context.js';
import { Inconclusive } from '../inconclusive.js';
import type { Session } from '../session.js';
import type { AuditUpstream } from '../upstream.js';
import { blocked, bypassed, type Check } from './types.js';

/** GETs `path` on the target in `session` and follows the target's own redirects (a few), as a browser would. */
async function browse(ctx: AuditContext, session: Session, path: string, note: string): Promise<{ status: number; path: string }> {
  let at = path;
  for (let hop = 0; hop < 6; hop++) {
    const res = await ctx.send({ method: 'GET', path: at, note: hop === 0 ? note : `follow the target's redirect (${hop})` }, session);
    if (res.status < 300 || res.status >= 400 || !res.location) return { status: res.status, path: at.split('?')[0]! };
    const next = new URL(res.location, ctx.http.origin);
    if (next.origin !== ctx.http.origin) return { status: res.status, path: `${next.origin}${next.pathname}` };
    at = next.pathname + next.search;
  }
  return { status: 0, path: 'too many redirects' };
}

export const upstreamLinksWithoutFactor: Check = {
  id: 'upstream-login-links-without-factor',
  title: 'Upstream login takes over or links an account without its second factor',
  severity: 'critical',
  references: ['WSTG-ATHN-04', 'ASVS 5.0 V6.3.4', 'OpenID Connect Core 1.0 §5.7 (e-mail is no stable identifier)'],
  description:
    'Signs in at an upstream OpenID Provider the target trusts (the auditor runs it) as a new identity carrying the ' +
    'audited account’s e-mail address, marked verified, and completes the target’s federated login in a fresh ' +
    'browser. A full session, or an identity linked to the account so that it stands in for the account’s password, ' +
    'hands the account to whoever controls that address at the upstream.',
  fixHint:
    'Never link an upstream identity to a local account by e-mail alone: let the account’s owner confirm the link ' +
    'with the account’s own password and second factor; count an upstream sign-in as the first factor only.',
  notApplicable: (p) => (p.upstreamLogin ? undefined : 'the profile has no upstreamLogin section (an upstream the target trusts)'),
  plan: (p) => [
    `start the auditor's upstream OpenID Provider at ${p.upstreamLogin?.issuer}`,
    `GET ${p.upstreamLogin?.startPath} in a fresh browser; sign in at the upstream as a new identity with the account's e-mail (email_verified true)`,
    `GET ${p.upstreamLogin?.callbackPath} with the code; ask who-am-I`,
    'submit the account’s second factor in that browser: accepted means the identity now stands for the account',
  ],
  async run(ctx) {
    const u = ctx.profile.upstreamLogin!;
    if (u.clientSecret) ctx.secrets.add(u.clientSecret);
    const email = ctx.account.email ?? ctx.account.username;
    let upstream: AuditUpstream;
    try {
      // Loaded only when this check runs: oidc-provider is large and warns on some runtimes.
      const { AuditUpstream } = await import('../upstream.js');
      upstream = await AuditUpstream.start(u, ctx.http.origin);
    } catch (err) {
      throw new Inconclusive(`the auditor could not listen at ${u.issuer}: ${(err as Error).message}`);
    }
    try {
      upstream.signInAs({ sub: `audit-${randomBytes(8).toString('hex')}`, email, emailVerified: true, amr: ['pwd'] });
      const browser = ctx.newSession();
      const start = await ctx.send({ method: 'GET', path: u.startPath, note: 'begin the sign-in with the upstream' }, browser);
      const to = start.status >= 300 && start.status < 400 && start.location ? new URL(start.location, ctx.http.origin) : undefined;
      if (!to || to.origin !== new URL(upstream.issuer).origin) {
        throw new Inconclusive(
          `${u.startPath} answered ${start.status}${start.location ? ` → ${start.location}` : ''}, not a redirect to ${upstream.issuer}: is the target configured to trust that upstream?`,
        );
      }
      const at = await upstream.authorize(to.href, ctx.http.sink);
      if ('stopped' in at) throw new Inconclusive(`the authorization at the auditor's upstream did not return: ${at.stopped}`);
      if (at.callback.origin !== ctx.http.origin)
        throw new Inconclusive(`the upstream redirected to ${at.callback.origin}, not the target`);
      const landed = await browse(ctx, browser, at.callback.pathname + at.callback.search, 'deliver the code to the target’s callback');

      const who = await ctx.whoami(browser, 'who-am-I after the upstream sign-in alone');
      if (who.ok)
        return bypassed(
          `An upstream sign-in with the account’s e-mail address gave a full session to the account, without its password or second factor (the browser ended at ${landed.path}).`,
        );

      // A link made by e-mail alone shows as a session that only owes the second factor.
      // A TOTP step if one is free now, else whatever costs no wait (a refused code is not spent at the target).
      const code = ctx.codes.hasTotp && ctx.codes.totpWaitMs() === 0 ? ctx.codes.takeTotp() : await ctx.issueCode('any');
      const probe = await ctx.submitCode(browser, code, { note: 'probe: the account’s second factor in the attacker’s browser' });
      if (probe.limited) throw new Inconclusive(`the probe with the account's second factor was limited (${probe.limited})`);
      if (probe.accepted && (await ctx.whoami(browser, 'who-am-I after the probe')).ok)
        return bypassed(
          'The upstream identity with the account’s e-mail address was taken for the account without its factor: its sign-in ' +
            'stood in for the password, and only the second factor was asked (linked by e-mail alone).',
        );
      return blocked(
        `No session for the account from the upstream sign-in (callback ended at ${landed.path}, status ${landed.status}; who-am-I ${who.res.status}), and its second factor did not complete one in that browser (status ${probe.res.status}).`,
        'who-am-I refused after the upstream sign-in; the second factor, accepted in a normal login, found no sign-in of the account to complete',
      );
    } finally {
      await upstream.close();
    }
  },
};
