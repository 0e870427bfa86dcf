// Ways to get a usable session with the password alone: the main login, every other
// endpoint reached with the pending session, and the token (mobile/API) login.
import { requestOf } from '../context.js';
import { getPath, setPath, succeeded } from '../matchers.js';
import { changesAccount, type Profile } from '../profile.js';
import { Session } from '../session.js';
import { actionSucceeded } from './sensitive-actions.js';
import { blocked, bypassed, notApplicable, type Check } from './types.js';

export const passwordOnlySession: Check = {
  id: 'password-only-session',
  title: 'Password-only session reaches protected data',
  severity: 'critical',
  references: ['WSTG-ATHN-11', 'WSTG-ATHN-04', 'ASVS 5.0 V6.3.3', 'ASVS 5.0 V6.3.4'],
  description:
    'Logs in with the correct password, skips the second factor, and asks the protected who-am-I endpoint. ' +
    'A stolen password alone must not open the account.',
  fixHint:
    'When the password is right but the account has a second factor, create a pending session that can only ' +
    'submit the factor; issue the full session only after the factor is verified.',
  notApplicable: () => undefined,
  plan: (p) => [`${p.login.method} ${p.login.path} with the password`, `${p.whoami.method} ${p.whoami.path} with that session`],
  async run(ctx) {
    const login = await ctx.passwordLogin();
    const me = await ctx.whoami(login.session, 'ask who-am-I with the password-only session');
    const asked = login.challenged ? 'asked for a second factor' : 'did not ask for a second factor';
    if (me.ok) {
      return bypassed(`The login ${asked}, yet the session it set already reaches ${ctx.profile.whoami.path} (status ${me.res.status}).`);
    }
    return blocked(
      `The login ${asked}; the session it set gets status ${me.res.status} from ${ctx.profile.whoami.path}.`,
      ctx.refusalWhy(me.res, 'whoami.success'),
    );
  },
};

/** Endpoints a pending session is thrown at; account-changing ones only with the opt-in. */
function forcedBrowsingTargets(p: Profile): { label: string; method: string; path: string }[] {
  return [
    ...p.protectedEndpoints.map((e) => ({ label: `${e.method} ${e.path}`, method: e.method, path: e.path })),
    ...p.sensitiveActions
      .filter((a) => !changesAccount(a) || p.safety.allowAccountChanges)
      .map((a) => ({ label: `${a.name} (${a.method} ${a.path})`, method: a.method, path: a.path })),
  ];
}

export const pendingForcedBrowsing: Check = {
  id: 'pending-forced-browsing',
  title: 'Pending session reaches other endpoints (forced browsing)',
  severity: 'critical',
  references: ['WSTG-ATHN-04', 'WSTG-ATHZ-02', 'ASVS 5.0 V6.3.4'],
  description:
    'Takes the session that is waiting for the second factor and requests every endpoint the profile lists, ' +
    'in case one of them forgot to check that the factor was verified.',
  fixHint:
    'Enforce "second factor verified" in one place every protected route passes through (middleware), ' +
    'not per handler; a pending session should be refused everywhere except the factor submission and logout.',
  notApplicable: (p) =>
    forcedBrowsingTargets(p).length === 0 ? 'the profile lists no protectedEndpoints or usable sensitiveActions' : undefined,
  plan: (p) => [
    `${p.login.method} ${p.login.path} with the password (pending session)`,
    ...forcedBrowsingTargets(p).map((t) => `${t.label} with the pending session`),
  ],
  async run(ctx) {
    const p = ctx.profile;
    const login = await ctx.passwordLogin();
    if (!login.challenged) {
      return notApplicable('The login did not signal that a second factor is required, so there is no pending session to probe.');
    }
    const me = await ctx.whoami(login.session, 'confirm the session is really pending');
    if (me.ok) {
      return notApplicable(
        `The session after the password already reaches ${p.whoami.path}: it is not pending at all ` +
          '(reported by password-only-session); forced browsing adds nothing.',
      );
    }
    const reached: string[] = [];
    /** Actions whose fetchFirst page did not serve the pending session (sent without the value). */
    const unserved: string[] = [];
    for (const e of p.protectedEndpoints) {
      const res = await ctx.retryLimited(
        `${e.method} ${e.path}`,
        () => ctx.send({ method: e.method, path: e.path, note: `${e.method} ${e.path} with the pending session` }, login.session),
        (r) => (succeeded(r, e.success) ? undefined : r),
      );
      if (succeeded(res, e.success)) reached.push(`${e.method} ${e.path} (${res.status})`);
    }
    for (const a of p.sensitiveActions.filter((x) => !changesAccount(x) || p.safety.allowAccountChanges)) {
      // A wrong code for any {totp} in it: a pending session must not get through even so.
      const res = await ctx.retryLimited(
        a.name,
        () => ctx.sendAction(a, login.session, `${a.name} with the pending session`),
        (r) => (actionSucceeded(r, a) ? undefined : r),
      );
      if (actionSucceeded(res, a)) {
        reached.push(`${a.name} (${res.status})`);
        if (changesAccount(a)) ctx.followChange(a, res);
      } else if (res.missing.length) unserved.push(a.name);
    }
    const total = forcedBrowsingTargets(p).length;
    if (reached.length > 0) {
      return bypassed(`The pending session was accepted by ${reached.length} of ${total} endpoints: ${reached.join(', ')}.`);
    }
    const note = unserved.length ? ` (the form pages of ${unserved.join(', ')} gave it no fetchFirst value; those were sent without)` : '';
    return blocked(
      `All ${total} endpoints refused the pending session${note}.`,
      'each reply failed its success matcher (default: a 2xx), and none was a limit reply',
    );
  },
};

export const tokenLoginSkipsMfa: Check = {
  id: 'token-login-skips-mfa',
  title: 'Token/mobile login skips MFA',
  severity: 'critical',
  references: ['WSTG-ATHN-04', 'WSTG-ATHN-11', 'ASVS 5.0 V6.3.4'],
  description:
    'Logs in through the token (mobile/API) login with the password only and uses the token it returns ' +
    'on the who-am-I endpoint. Alternative login paths often forget the second factor.',
  fixHint:
    'Run every login path through the same state machine: a token issued before the second factor must be ' +
    'a pending token that only the factor submission accepts.',
  notApplicable: (p) => (p.tokenLogin ? undefined : 'the profile has no tokenLogin'),
  plan: (p) => [
    `${p.tokenLogin?.method} ${p.tokenLogin?.path} with the password`,
    `${p.whoami.method} ${p.whoami.path} with the returned token`,
  ],
  async run(ctx) {
    const spec = ctx.profile.tokenLogin;
    if (!spec) return notApplicable('the profile has no tokenLogin');
    const body = structuredClone(spec.body ?? {}) as Record<string, unknown>;
    setPath(body, spec.usernameField, ctx.account.username);
    setPath(body, spec.passwordField, ctx.account.password);
    const res = await ctx.retryLimited(
      'the token login',
      () => ctx.sendStep(spec, requestOf(spec, body, 'token login with the password'), ctx.newSession()),
      (r) => (r.status >= 400 ? r : undefined),
    );
    const token = getPath(res.json, spec.tokenField);
    if (typeof token !== 'string' || !token) {
      return blocked(
        `The token login answered ${res.status} without a token in ${spec.tokenField}.`,
        `no string in JSON field ${spec.tokenField}, and not a limit reply`,
      );
    }
    ctx.secrets.add(token);
    const session = new Session({ header: spec.header, scheme: spec.scheme }, ctx.http.origin);
    session.bearer = token;
    const me = await ctx.whoami(session, 'ask who-am-I with the token from the password-only login');
    if (me.ok) {
      return bypassed(`The token returned after the password alone reaches ${ctx.profile.whoami.path} (status ${me.res.status}).`);
    }
    return blocked(
      `A token was issued, but before the second factor it gets status ${me.res.status} from ${ctx.profile.whoami.path}.`,
      ctx.refusalWhy(me.res, 'whoami.success'),
    );
  },
};
