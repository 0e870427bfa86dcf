// What happens to session tokens around the second factor: the pre-MFA token must die
// when the factor is verified, and a remember-me token must not stand in for the factor.
import { describeExtractor, extractorOf } from '../extract.js';
import { blocked, bypassed, Inconclusive, notApplicable, type Check } from './types.js';

export const sessionFixationMfa: Check = {
  id: 'session-fixation-mfa',
  title: 'Session token not replaced after MFA (fixation)',
  severity: 'medium',
  references: ['WSTG-SESS-03', 'ASVS 5.0 V7.2.4'],
  description:
    'Keeps a copy of the session token issued after the password, completes the second factor, then uses the ' +
    'old copy. If it still works, anyone who planted or saw the pre-MFA token now holds a fully verified session.',
  fixHint: 'Issue a new session token whenever the session’s assurance changes (password, second factor, step-up) and revoke the old one.',
  notApplicable: () => undefined,
  plan: (p) => [
    `${p.login.method} ${p.login.path} with the password; keep a copy of the pending token`,
    'submit a valid second-factor code in that session',
    `${p.whoami.method} ${p.whoami.path} with the old copy`,
  ],
  async run(ctx) {
    const login = await ctx.passwordLogin();
    const before = login.session.clone();
    if (before.isEmpty()) {
      // E.g. an OAuth-style mfa_token carried in the body to the code step: the client holds
      // no session credential before the factor, so there is none to fixate.
      return notApplicable(
        'The password login set no cookie or session token (only values carried to the code step), so there is no pre-MFA session to replay.',
      );
    }
    if (!login.challenged) {
      // The password alone signed in (password-only-session reports it): no factor to verify.
      return notApplicable('The login did not ask for a second factor, so there is no verification to replace the token at.');
    }
    const code = await ctx.issueCode('any');
    const verify = await ctx.submitCode(login.session, code, { note: 'complete the second factor' });
    if (!verify.accepted) throw new Inconclusive(`a valid code was refused (status ${verify.res.status})`);
    const same = JSON.stringify(before.headers()) === JSON.stringify(login.session.headers());
    const me = await ctx.whoami(before, 'replay the token issued before the second factor');
    if (me.ok) {
      return bypassed(
        `The pre-MFA token ${same ? 'was not replaced and ' : ''}still works after the second factor: ` +
          `${ctx.profile.whoami.path} answered ${me.res.status}.`,
      );
    }
    return blocked(
      `After the second factor the old token gets status ${me.res.status} from ${ctx.profile.whoami.path}.`,
      ctx.refusalWhy(me.res, 'whoami.success'),
    );
  },
};

export const rememberMeSkipsMfa: Check = {
  id: 'remember-me-skips-mfa',
  title: 'Remember-me restores a session without MFA',
  severity: 'high',
  references: ['WSTG-ATHN-05', 'WSTG-ATHN-11', 'ASVS 5.0 V6.3.4'],
  description:
    'Logs in with "remember me", then presents only the remember-me cookie from a fresh client. ' +
    'Restoring a session from it must still ask for the second factor.',
  fixHint:
    'Treat a remember-me token like a password: it may restore a pending session for an account with a ' +
    'second factor, never a full one.',
  notApplicable: (p) => (p.rememberMe ? undefined : 'the profile has no rememberMe'),
  plan: (p) => {
    const restore = p.rememberMe?.restore ?? p.whoami;
    return [
      `full login with ${p.rememberMe?.loginField}=${String(p.rememberMe?.loginValue)}`,
      p.rememberMe?.token
        ? `read the remember-me token (${describeExtractor(extractorOf(p.rememberMe.token))}) from the login's replies; a fresh client keeps only it`
        : `keep only the remember-me cookie (${p.rememberMe?.cookie ?? 'detected: cookies only a remember-me login sets'})`,
      `${restore.method} ${restore.path}, then ${p.whoami.method} ${p.whoami.path} with what that gives`,
    ];
  },
  async run(ctx) {
    const cfg = ctx.profile.rememberMe;
    if (!cfg) throw new Inconclusive('the profile has no rememberMe');
    const full = await ctx.fullLogin({ remember: true, note: 'log in with remember-me' });
    const client = ctx.newSession();
    let names: string[];
    if (cfg.token) {
      // A token handed out in a reply (body or header) and exchanged at rememberMe.restore.
      const token = ctx.extract(cfg.token, full.verify, full.session) ?? ctx.extract(cfg.token, full.login, full.session);
      if (token === undefined)
        throw new Inconclusive(`the remember-me login's replies had no ${describeExtractor(extractorOf(cfg.token))}`);
      ctx.secrets.add(token);
      client.vars.set('rememberToken', token);
      names = [`token from ${describeExtractor(extractorOf(cfg.token))}`];
    } else {
      // Without a configured name, the remember-me cookie is whatever a remember-me login
      // sets that the ordinary (preflight) login did not.
      const ordinary = new Set(ctx.preflight?.session.cookieNames() ?? []);
      names = cfg.cookie ? [cfg.cookie] : full.session.cookieNames().filter((n) => !ordinary.has(n));
      for (const n of names) {
        const v = full.session.cookie(n);
        if (v !== undefined) client.setCookie(n, v);
      }
    }
    if (client.isEmpty() && !cfg.token) {
      throw new Inconclusive(
        cfg.cookie
          ? `the remember-me login set no cookie named ${cfg.cookie}`
          : 'the remember-me login set no cookie that an ordinary login does not; name it in rememberMe.cookie',
      );
    }
    const restore = cfg.restore ?? { ...ctx.profile.whoami, encoding: 'json' as const };
    const restoreSpec = cfg.restore ?? {};
    await ctx.sendStep(
      restoreSpec,
      {
        method: restore.method,
        path: restore.path,
        encoding: restore.encoding,
        ...('body' in restore && restore.body ? { body: structuredClone(restore.body) } : {}),
        ...('headers' in restore && restore.headers ? { headers: restore.headers } : {}),
        note: `present only the remember-me ${cfg.token ? 'token' : 'cookie'}`,
      },
      client,
      { takeToken: true },
    );
    const me = await ctx.whoami(client, 'ask who-am-I with what the remember-me cookie gave');
    if (me.ok) {
      return bypassed(
        `The remember-me ${cfg.token ? 'token' : 'cookie'} (${names.join(', ')}) alone produced a session that reaches ${ctx.profile.whoami.path} ` +
          `(status ${me.res.status}) without any second factor.`,
      );
    }
    return blocked(
      `With only the remember-me ${cfg.token ? 'token' : 'cookie'} (${names.join(', ')}), ${ctx.profile.whoami.path} answers ${me.res.status}.`,
      ctx.refusalWhy(me.res, 'whoami.success'),
    );
  },
};
