// Sensitive actions must demand a fresh second factor: minting API tokens, changing
// e-mail/password, disabling MFA. Each is tried with the password-only session and/or with
// a session whose second factor is older than the step-up window.
import type { AuditContext } from '../context.js';
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

/**
 * Tries one action in one session; returns a line for the summary when it got through, and
 * otherwise what its fetchFirst page did not give this session (shown with the refusal).
 */
async function attempt(
  ctx: AuditContext,
  action: SensitiveAction,
  session: Session,
  sessionLabel: string,
): Promise<{ line?: string; missing: string[] }> {
  const res = await ctx.sendStep(action, ctx.sensitiveRequest(action, `${action.name} with the ${sessionLabel}`), session);
  if (!actionSucceeded(res, action)) return { missing: res.missing };
  let line = `${action.name} with the ${sessionLabel} (status ${res.status})`;
  const probe = ctx.profile.apiToken?.probe;
  const token = action.token ? ctx.extract(action.token, res, session) : action.tokenField ? getPath(res.json, action.tokenField) : undefined;
  if (action.kind === 'create_api_token' && typeof token === 'string' && probe) {
    // Show the impact: the token minted this way really opens the API.
    ctx.secrets.add(token);
    const { header, scheme } = ctx.profile.apiToken ?? { header: 'Authorization', scheme: 'Bearer' };
    const use = await ctx.http.send({
      method: probe.method,
      path: probe.path,
      headers: { [header]: scheme ? `${scheme} ${token}` : token },
      note: 'use the minted API token',
    });
    line += `; the token then read ${probe.path} (status ${use.status})`;
  }
  return { line, missing: res.missing };
}

/** "disable MFA (stale)" plus, when the form page did not serve this session, that fact. */
const triedLabel = (name: string, kind: string, missing: string[]): string =>
  `${name} (${kind}${missing.length ? `; its page gave no ${missing.join(', no ')}` : ''})`;

/** Runs `actions` with a password-only session and (when a window is configured) a stale one. */
async function tryWithWeakSessions(ctx: AuditContext, actions: SensitiveAction[], opts: { passwordOnly: boolean }) {
  const got: string[] = [];
  const tried: string[] = [];
  if (opts.passwordOnly) {
    for (const a of actions) {
      const login = await ctx.passwordLogin({ note: 'log in with the password only' });
      const { line, missing } = await attempt(ctx, a, login.session, 'password-only session');
      tried.push(triedLabel(a.name, 'password-only', missing));
      if (line) got.push(line);
    }
  }
  if (ctx.profile.stepUp) {
    const stale = await ctx.staleSession();
    // A refusal only means something if the session is otherwise alive: a dead session
    // would be refused too, and "blocked" would be a lie.
    const alive = await ctx.whoami(stale, 'confirm the stale session is still signed in');
    if (!alive.ok) {
      throw new Inconclusive(`the stale session no longer reaches ${ctx.profile.whoami.path} (status ${alive.res.status}), so a refusal would prove nothing`);
    }
    for (const a of actions) {
      const { line, missing } = await attempt(ctx, a, stale, `session whose second factor is older than ${ctx.profile.stepUp.maxAgeSeconds}s`);
      tried.push(triedLabel(a.name, 'stale', missing));
      if (line) got.push(line);
    }
  }
  return { got, tried };
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
  references: ['WSTG-ATHN-11', 'ASVS 4.0.3 V3.7.1', 'ASVS 4.0.3 V1.2.4'],
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
    const { got, tried } = await tryWithWeakSessions(ctx, actions, { passwordOnly: true });
    if (got.length) return bypassed(`A token was minted: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`);
  },
};

const STALE_KINDS: SensitiveKind[] = ['change_email', 'change_password', 'other'];

export const staleSessionSensitiveAction: Check = {
  id: 'stale-session-sensitive-action',
  title: 'Sensitive action with a stale session',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 4.0.3 V3.7.1'],
  description:
    'Waits until the second factor of a session is older than the step-up window, then performs each sensitive ' +
    'action (change e-mail, change password, …). A hijacked, idle session must not be able to take the account over.',
  fixHint: 'Before a sensitive action, require the second factor to have been verified within the step-up window; otherwise answer with a step-up challenge.',
  notApplicable: (p) =>
    !p.stepUp
      ? 'the profile has no stepUp.maxAgeSeconds'
      : whyNotApplicable(p, STALE_KINDS, 'change_email, change_password or other action'),
  plan: (p) => stalePlan(p, actionsOf(p, STALE_KINDS).filter((a) => allowed(p, a))),
  async run(ctx) {
    const actions = actionsOf(ctx.profile, STALE_KINDS).filter((a) => allowed(ctx.profile, a));
    const { got, tried } = await tryWithWeakSessions(ctx, actions, { passwordOnly: false });
    if (got.length) return bypassed(`Done without a fresh second factor: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`);
  },
};

export const mfaDisableWithoutReauth: Check = {
  id: 'mfa-disable-without-reauth',
  title: 'MFA disabled without re-authentication',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 4.0.3 V3.7.1', 'ASVS 4.0.3 V2.5.7'],
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
    const { got, tried } = await tryWithWeakSessions(ctx, actions, { passwordOnly: true });
    if (got.length) return bypassed(`MFA was switched off: ${got.join('; ')}.`);
    return blocked(`Refused in every attempt: ${tried.join(', ')}.`);
  },
};
