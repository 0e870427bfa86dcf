// Sensitive actions must demand a fresh second factor: minting API tokens, changing
// e-mail/password, disabling MFA. Each is tried with the password-only session and/or with
// a session whose second factor is older than the step-up window.
import type { AuditContext, Credentials, StepResult } from '../context.js';
import type { HttpResult } from '../http-client.js';
import { getPath, succeeded } from '../matchers.js';
import { changesAccount, type Profile, type SensitiveAction, type SensitiveKind } from '../profile.js';
import type { Session } from '../session.js';
import { blocked, bypassed, Inconclusive, type Check } from './types.js';

const allowed = (p: Profile, a: SensitiveAction): boolean => !changesAccount(a) || p.safety.allowAccountChanges;

function actionsOf(p: Profile, kinds: SensitiveKind[]): SensitiveAction[] {
  return p.sensitiveActions.filter((a) => kinds.includes(a.kind));
}

function whyNotApplicable(p: Profile, kinds: SensitiveKind[], what: string): string | undefined {
  const actions = actionsOf(p, kinds);
  if (actions.length === 0) return `the profile lists no ${what} in sensitiveActions`;
  if (!actions.some((a) => allowed(p, a))) {
    return `${actions.map((a) => a.name).join(', ')} would change the account: set safety.allowAccountChanges: true to test`;
  }
  return undefined;
}

/**
 * Whether a sensitive action went through. Without a `success` matcher a redirect is
 * ambiguous (Post/Redirect/Get apps redirect on success and on refusal alike), so that
 * cannot conclude rather than silently count as "refused".
 */
export function actionSucceeded(res: HttpResult, action: SensitiveAction): boolean {
  if (!action.success && res.status >= 300 && res.status < 400) {
    throw new Inconclusive(
      `${action.name} answered with a redirect (status ${res.status}${res.location ? `, Location ${res.location}` : ''}), ` +
        'which could be a success or a refusal: give this action a success matcher (e.g. success: {redirect: …})',
    );
  }
  return succeeded(res, action.success);
}

/** Which credentials an action (and its step-up sequence) asks the auditor to send. */
export function credentialsUsed(action: SensitiveAction): { password: boolean; factor: boolean } {
  const text = JSON.stringify([action.path, action.body, action.headers, action.query, action.stepUp]);
  return { password: text.includes('{password}'), factor: /\{(?:totp|recoveryCode)\}/.test(text) };
}

interface Attempt {
  line?: string;
  missing: string[];
  /** What the app turned out to demand: none, password only, a fresh second factor. */
  demanded: string;
  why?: string;
}

/**
 * Tries one action in one session. An action whose template carries `{password}`,
 * `{totp}` or `{recoveryCode}` is sent with a wrong value first (accepted: the app demanded
 * nothing), then with the right password and a wrong code (accepted: password only). The
 * right code is never sent: the action would then really take effect. What the app demanded
 * goes into the verdict, so "password only" is not reported as "no re-authentication".
 */
async function attempt(ctx: AuditContext, action: SensitiveAction, session: Session, sessionLabel: string): Promise<Attempt> {
  const uses = credentialsUsed(action);
  const variants: { creds: Credentials; demanded: string; label: string }[] = [
    {
      creds: { password: 'wrong', factor: 'wrong' },
      demanded: 'none',
      label: uses.password || uses.factor ? ' and a wrong password/code' : '',
    },
  ];
  if (uses.password) {
    variants.push({
      creds: { password: 'right', factor: 'wrong' },
      demanded: 'password only (no fresh second factor)',
      label: uses.factor ? ' and the password but a wrong code' : ' and the password',
    });
  }
  let last: { res: StepResult } | undefined;
  for (const v of variants) {
    const note = `${action.name} with the ${sessionLabel}${v.label}`;
    const { res } = await ctx.retryLimited(
      action.name,
      async () => ({ res: await ctx.sendAction(action, session, note, v.creds) }),
      (r) => (actionSucceeded(r.res, action) ? undefined : r.res),
    );
    last = { res };
    if (actionSucceeded(res, action)) {
      const followed = changesAccount(action) ? ctx.followChange(action, res) : undefined;
      const line = await impact(ctx, action, res, session, `${action.name} with the ${sessionLabel}${v.label} (status ${res.status})`);
      return {
        line: `${line}; re-authentication demanded: ${v.demanded}${followed ? ` (${followed})` : ''}`,
        missing: res.missing,
        demanded: v.demanded,
      };
    }
  }
  const demanded = uses.factor ? 'a fresh second factor' : uses.password ? 'more than the password' : 'a fresh session (refused as is)';
  return {
    missing: last?.res.missing ?? [],
    demanded,
    why: last ? ctx.refusalWhy(last.res, action.success ? "the action's success matcher" : 'a 2xx') : undefined,
  };
}

/** For an API token that was minted: show the impact, the token really opens the API. */
async function impact(ctx: AuditContext, action: SensitiveAction, res: HttpResult, session: Session, line: string): Promise<string> {
  const probe = ctx.profile.apiToken?.probe;
  const token = action.token
    ? ctx.extract(action.token, res, session)
    : action.tokenField
      ? getPath(res.json, action.tokenField)
      : undefined;
  if (action.kind === 'create_api_token' && typeof token === 'string' && probe) {
    ctx.secrets.add(token);
    const { header, scheme } = ctx.profile.apiToken ?? { header: 'Authorization', scheme: 'Bearer' };
    const use = await ctx.http.send({
      method: probe.method,
      path: probe.path,
      headers: { [header]: scheme ? `${scheme} ${token}` : token },
      note: 'use the minted API token',
    });
    return `${line}; the token then read ${probe.path} (status ${use.status})`;
  }
  return line;
}

/** "disable MFA (stale)" plus, when the form page did not serve this session, that fact. */
const triedLabel = (name: string, kind: string, a: Attempt): string =>
  `${name} (${kind}; demanded ${a.demanded}${a.missing.length ? `; its page gave no ${a.missing.join(', no ')}` : ''})`;

/** Runs `actions` with a password-only session and (when a window is configured) a stale one. */
async function tryWithWeakSessions(ctx: AuditContext, actions: SensitiveAction[], opts: { passwordOnly: boolean }) {
  const got: string[] = [];
  const tried: string[] = [];
  const whys: string[] = [];
  if (opts.passwordOnly) {
    for (const a of actions) {
      const login = await ctx.passwordLogin({ note: 'log in with the password only' });
      const r = await attempt(ctx, a, login.session, 'password-only session');
      tried.push(triedLabel(a.name, 'password-only', r));
      if (r.line) got.push(r.line);
      if (r.why) whys.push(`${a.name} (password-only): ${r.why}`);
    }
  }
  if (ctx.profile.stepUp) {
    const stale = await ctx.staleSession();
    // A refusal only means something if the session is otherwise alive: a dead session
    // would be refused too, and "blocked" would be a lie.
    const alive = await ctx.whoami(stale, 'confirm the stale session is still signed in');
    if (!alive.ok) {
      throw new Inconclusive(
        `the stale session no longer reaches ${ctx.profile.whoami.path} (status ${alive.res.status}), so a refusal would prove nothing`,
      );
    }
    for (const a of actions) {
      const r = await attempt(ctx, a, stale, `session whose second factor is older than ${ctx.profile.stepUp.maxAgeSeconds}s`);
      tried.push(triedLabel(a.name, 'stale', r));
      if (r.line) got.push(r.line);
      if (r.why) whys.push(`${a.name} (stale): ${r.why}`);
    }
  }
  return { got, tried, why: whys.join('; ') };
}

const stalePlan = (p: Profile, actions: SensitiveAction[]): string[] =>
  p.stepUp
    ? [
        `wait until the preflight session is older than stepUp.maxAgeSeconds (${p.stepUp.maxAgeSeconds}s)`,
        ...actions.map((a) => `${a.name}: ${a.method} ${a.path} with that stale session`),
      ]
    : ['(no stepUp in the profile: the stale-session part is skipped)'];

export const apiTokenWithoutStepUp: Check = {
  id: 'api-token-without-step-up',
  title: 'API token minted without step-up',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V7.5.3', 'ASVS 5.0 V6.3.4'],
  description:
    'Asks for a personal API token with the password-only session and with a stale session. ' +
    'A token outlives the session and never sees a second factor again, so minting one must need a fresh factor.',
  fixHint: 'Require a second factor verified within the step-up window to create API tokens, and refuse pending sessions outright.',
  notApplicable: (p) => whyNotApplicable(p, ['create_api_token'], 'create_api_token action'),
  plan: (p) => {
    const actions = actionsOf(p, ['create_api_token']).filter((a) => allowed(p, a));
    return [...actions.map((a) => `${a.name}: ${a.method} ${a.path} with a password-only session`), ...stalePlan(p, actions)];
  },
  async run(ctx) {
    const actions = actionsOf(ctx.profile, ['create_api_token']).filter((a) => allowed(ctx.profile, a));
    const { got, tried, why } = await tryWithWeakSessions(ctx, actions, { passwordOnly: true });
    if (got.length) return bypassed(`A token was minted: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`, why);
  },
};

const STALE_KINDS: SensitiveKind[] = ['change_email', 'change_password', 'other'];

export const staleSessionSensitiveAction: Check = {
  id: 'stale-session-sensitive-action',
  title: 'Sensitive action with a stale session',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V7.5.1'],
  description:
    'Waits until the second factor of a session is older than the step-up window, then performs each sensitive ' +
    'action (change e-mail, change password, …). A hijacked, idle session must not be able to take the account over.',
  fixHint:
    'Before a sensitive action, require the second factor to have been verified within the step-up window; otherwise answer with a step-up challenge.',
  notApplicable: (p) =>
    !p.stepUp
      ? 'the profile has no stepUp.maxAgeSeconds'
      : whyNotApplicable(p, STALE_KINDS, 'change_email, change_password or other action'),
  plan: (p) =>
    stalePlan(
      p,
      actionsOf(p, STALE_KINDS).filter((a) => allowed(p, a)),
    ),
  async run(ctx) {
    const actions = actionsOf(ctx.profile, STALE_KINDS).filter((a) => allowed(ctx.profile, a));
    const { got, tried, why } = await tryWithWeakSessions(ctx, actions, { passwordOnly: false });
    if (got.length) return bypassed(`Done without a fresh second factor: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`, why);
  },
};

export const mfaDisableWithoutReauth: Check = {
  id: 'mfa-disable-without-reauth',
  title: 'MFA disabled without re-authentication',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V7.5.1'],
  description:
    'Tries to remove the second factor with the password-only session and with a stale session. ' +
    'Whoever can switch MFA off without proving the factor again has beaten it for good.',
  fixHint: 'Require a fresh second-factor check (step-up) to remove or replace a factor, and notify the account owner.',
  notApplicable: (p) => whyNotApplicable(p, ['disable_mfa'], 'disable_mfa action'),
  plan: (p) => {
    const actions = actionsOf(p, ['disable_mfa']).filter((a) => allowed(p, a));
    return [...actions.map((a) => `${a.name}: ${a.method} ${a.path} with a password-only session`), ...stalePlan(p, actions)];
  },
  async run(ctx) {
    const actions = actionsOf(ctx.profile, ['disable_mfa']).filter((a) => allowed(ctx.profile, a));
    const { got, tried, why } = await tryWithWeakSessions(ctx, actions, { passwordOnly: true });
    if (got.length) return bypassed(`MFA was switched off: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`, why);
  },
};
