// The target as an OpenID Provider: ways an authorization code (and so tokens for a relying
// party) can be had without the second factor, or with less assurance than asked for.
// HTTP only: the auditor plays the browser (following the provider's redirects on the
// target, never to the relying party) and the relying party (redeeming the code).
import { createHash, randomBytes } from 'node:crypto';
import type { AuditContext } from '../context.js';
import type { HttpResult } from '../http-client.js';
import type { Profile } from '../profile.js';
import { succeeded } from '../matchers.js';
import type { Session } from '../session.js';
import { blocked, bypassed, notApplicable, type Check } from './types.js';

type OidcProfile = NonNullable<Profile['oidc']>;

interface Authorization {
  /** The redirect to the relying party, when the provider sent the browser there. */
  landed?: URL;
  /** Where the browser stopped on the target otherwise (a page, e.g. the second step). */
  stoppedAt?: { path: string; status: number };
  verifier: string;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** client_secret_basic (RFC 6749 2.3.1: form-encoded id and secret). */
const basicAuth = (o: OidcProfile) =>
  `Basic ${Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret!)}`).toString('base64')}`;

/** Plays the browser: one authorization request, its redirects followed on the target until one points at the redirect URI. */
async function authorize(
  ctx: AuditContext,
  o: OidcProfile,
  session: Session,
  extra: Record<string, string>,
  note: string,
): Promise<Authorization> {
  const verifier = b64url(randomBytes(32));
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: o.clientId,
    redirect_uri: o.redirectUri,
    scope: o.scope,
    state: b64url(randomBytes(12)),
    nonce: b64url(randomBytes(12)),
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...extra,
  });
  let path = `${o.authorizationPath}?${params}`;
  for (let hop = 0; hop < 12; hop++) {
    const res = await ctx.send({ method: 'GET', path, note: hop === 0 ? note : `follow the provider's redirect (${hop})` }, session);
    const location = res.status >= 300 && res.status < 400 ? res.location : refreshTarget(res);
    if (!location) return { stoppedAt: { path: path.split('?')[0]!, status: res.status }, verifier };
    if (location.startsWith(o.redirectUri)) return { landed: new URL(location), verifier };
    const next = new URL(location, ctx.http.origin);
    if (next.origin !== ctx.http.origin) return { stoppedAt: { path: `${next.origin}${next.pathname}`, status: res.status }, verifier };
    path = next.pathname + next.search;
  }
  return { stoppedAt: { path: 'too many redirects', status: 0 }, verifier };
}

/** A page that continues by itself (HTTP Refresh header). */
function refreshTarget(res: HttpResult): string | undefined {
  const refresh = res.headers['refresh'];
  const value = Array.isArray(refresh) ? refresh[0] : refresh;
  return value ? /^\s*\d+\s*;\s*url=(.+)$/i.exec(value)?.[1] : undefined;
}

const describeStop = (a: Authorization) =>
  a.landed
    ? `the provider redirected to the relying party with ${a.landed.searchParams.get('error') ? `error=${a.landed.searchParams.get('error')}` : 'a code'}`
    : `the browser stopped at ${a.stoppedAt!.path} (status ${a.stoppedAt!.status}) without a code`;

/** Plays the relying party: redeems a code; the ID token's claims (not verified: evidence only). */
async function redeem(
  ctx: AuditContext,
  o: OidcProfile,
  a: Authorization,
): Promise<{ res: HttpResult; idToken?: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  const body: Record<string, unknown> = {
    grant_type: 'authorization_code',
    code: a.landed!.searchParams.get('code'),
    redirect_uri: o.redirectUri,
    code_verifier: a.verifier,
  };
  if (o.clientSecret) {
    headers.authorization = basicAuth(o);
    ctx.secrets.add(o.clientSecret);
  } else body.client_id = o.clientId;
  const res = await ctx.send({
    method: 'POST',
    path: o.tokenPath,
    encoding: 'form',
    body,
    headers,
    note: 'redeem the code as the relying party',
  });
  const idToken = (res.json as { id_token?: unknown } | undefined)?.id_token;
  if (typeof idToken !== 'string') return { res };
  ctx.secrets.add(idToken, String((res.json as { access_token?: unknown }).access_token ?? ''));
  try {
    return { res, idToken: JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown> };
  } catch {
    return { res };
  }
}

const needsOidc = (p: Profile) => (p.oidc ? undefined : 'the profile has no oidc section (a client registered at the target)');

export const oidcCodeForPendingSession: Check = {
  id: 'oidc-code-for-pending-session',
  title: 'OpenID Provider issues a code to a password-only (pending) session',
  severity: 'critical',
  references: ['WSTG-ATHN-04', 'ASVS 5.0 V6.3.4', 'OpenID Connect Core 1.0 §3.1.2.3'],
  description:
    'Logs in with the password only and sends that session through the OpenID Connect authorization endpoint. ' +
    'A code for it gives every relying party a session without the second factor.',
  fixHint:
    'Let every authorization pass the same session state machine as the login: a pending session must go to the ' +
    'second step, never receive a code.',
  notApplicable: needsOidc,
  plan: (p) => [
    `${p.login.method} ${p.login.path} with the password`,
    `GET ${p.oidc?.authorizationPath} with that session, following redirects`,
  ],
  async run(ctx) {
    const o = ctx.profile.oidc!;
    const login = await ctx.passwordLogin();
    if (!login.challenged) return notApplicable('The login did not ask for a second factor: there is no pending session.');
    const a = await authorize(ctx, o, login.session, {}, 'authorize with the password-only session');
    const code = a.landed?.searchParams.get('code');
    if (code) {
      const { idToken } = await redeem(ctx, o, a);
      return bypassed(
        `The provider issued a code to the pending session${idToken ? ` (ID token acr ${String(idToken.acr)}, amr ${JSON.stringify(idToken.amr)})` : ''}.`,
      );
    }
    return blocked(`No code for the pending session: ${describeStop(a)}.`, 'no code parameter in any redirect to the relying party');
  },
};

export const oidcPromptNoneWithPendingSession: Check = {
  id: 'oidc-prompt-none-pending',
  title: 'prompt=none completes silently for a pending session',
  severity: 'critical',
  references: ['WSTG-ATHN-04', 'ASVS 5.0 V6.3.4'],
  description:
    'With a password-only session, runs an authorization (whatever it answers), then a silent one (prompt=none), ' +
    'which must answer login_required or interaction_required, not a code.',
  fixHint: 'A silent authorization may only reuse a full session; a pending one answers login_required.',
  notApplicable: needsOidc,
  plan: (p) => [
    `${p.login.method} ${p.login.path} with the password`,
    `GET ${p.oidc?.authorizationPath} (interactive, then prompt=none) with that session`,
  ],
  async run(ctx) {
    const o = ctx.profile.oidc!;
    const login = await ctx.passwordLogin();
    if (!login.challenged) return notApplicable('The login did not ask for a second factor: there is no pending session.');
    await authorize(ctx, o, login.session, {}, 'authorize interactively with the pending session (any answer)');
    const silent = await authorize(ctx, o, login.session, { prompt: 'none' }, 'authorize silently (prompt=none) with the pending session');
    if (silent.landed?.searchParams.get('code')) return bypassed('prompt=none returned a code for the pending session.');
    return blocked(`prompt=none gave no code: ${describeStop(silent)}.`, 'no code parameter in the redirect to the relying party');
  },
};

export const oidcAcrValuesIgnored: Check = {
  id: 'oidc-acr-values-ignored',
  title: 'acr_values ignored: tokens below the requested assurance',
  severity: 'high',
  references: ['ASVS 5.0 V6.3.3', 'OpenID Connect Core 1.0 §3.1.2.1 (acr_values)'],
  description:
    'With a full session, asks for an acr the account cannot reach (profile oidc.unreachableAcr). A provider that issues ' +
    'tokens anyway, with a lower acr, lets a relying party that trusts its request believe the stronger factor was used.',
  fixHint:
    'Treat requested acr values as essential: re-authenticate to reach one, or answer unmet_authentication_requirements; ' +
    'relying parties should also check the acr claim.',
  notApplicable: (p) => needsOidc(p) ?? (p.oidc?.unreachableAcr ? undefined : 'the profile gives no oidc.unreachableAcr'),
  plan: (p) => ['log in with password and second factor', `GET ${p.oidc?.authorizationPath} with acr_values=${p.oidc?.unreachableAcr}`],
  async run(ctx) {
    const o = ctx.profile.oidc!;
    const full = await ctx.fullLogin({ note: 'log in with password and second factor' });
    const want = o.unreachableAcr!;
    const a = await authorize(ctx, o, full.session, { acr_values: want }, `authorize asking acr_values=${want}`);
    if (!a.landed?.searchParams.get('code')) {
      return blocked(`Asked for ${want}: ${describeStop(a)}.`, 'no code for an assurance the account cannot reach');
    }
    const { res, idToken } = await redeem(ctx, o, a);
    if (!idToken) return blocked(`A code was issued but its redemption gave no ID token (status ${res.status}).`, 'no tokens');
    if (idToken.acr === want) return blocked(`The ID token carries the requested acr ${want}.`, 'acr met');
    return bypassed(`Asked for acr ${want}, received tokens with acr ${JSON.stringify(idToken.acr ?? null)}.`);
  },
};

/** Plays the relying party: a refresh_token grant. */
async function refresh(ctx: AuditContext, o: OidcProfile, refreshToken: string, note: string): Promise<HttpResult> {
  const body: Record<string, unknown> = { grant_type: 'refresh_token', refresh_token: refreshToken };
  const headers: Record<string, string> = {};
  if (o.clientSecret) {
    headers.authorization = basicAuth(o);
    ctx.secrets.add(o.clientSecret);
  } else body.client_id = o.clientId;
  const res = await ctx.send({ method: 'POST', path: o.tokenPath, encoding: 'form', body, headers, note });
  const json = res.json as { access_token?: unknown; refresh_token?: unknown } | undefined;
  ctx.secrets.add(...[json?.access_token, json?.refresh_token].filter((v): v is string => typeof v === 'string'));
  return res;
}

const disableActions = (p: Profile) => p.sensitiveActions.filter((a) => a.kind === 'disable_mfa');

export const oidcRefreshAfterFactorRemoval: Check = {
  id: 'oidc-refresh-after-factor-removal',
  title: 'Refresh token still works after the second factor was removed',
  severity: 'high',
  references: ['ASVS 5.0 V7.4.3', 'OpenID Connect Core 1.0 §12'],
  description:
    'Gets a refresh token through a full sign-in, removes the second factor (a disable_mfa action, with a fresh ' +
    'session), then refreshes. Grants based on a factor that is gone keep handing out tokens to whoever holds them.',
  fixHint: 'Revoke the account’s grants and refresh tokens when a factor is removed or the password changes or is reset.',
  notApplicable: (p) =>
    needsOidc(p) ??
    (disableActions(p).length === 0
      ? 'the profile lists no disable_mfa action in sensitiveActions'
      : p.safety.allowAccountChanges
        ? undefined
        : 'removing the factor changes the account: set safety.allowAccountChanges: true to test'),
  plan: (p) => [
    'log in with password and second factor; authorize; redeem the code; refresh once',
    `log in again (fresh) and ${disableActions(p)[0]?.name ?? 'remove the factor'}`,
    'refresh again with the latest refresh token',
  ],
  async run(ctx) {
    const o = ctx.profile.oidc!;
    const first = await ctx.fullLogin({ note: 'log in with password and second factor' });
    const a = await authorize(
      ctx,
      o,
      first.session,
      { scope: `${o.scope} offline_access`, prompt: 'consent' },
      'authorize with the full session',
    );
    if (!a.landed?.searchParams.get('code')) return notApplicable(`No code for the full session: ${describeStop(a)}.`);
    const { res } = await redeem(ctx, o, a);
    let token = (res.json as { refresh_token?: unknown } | undefined)?.refresh_token;
    if (typeof token !== 'string') return notApplicable('The provider issued no refresh token to this client.');
    const before = await refresh(ctx, o, token, 'refresh before the factor is removed (must work)');
    const next = (before.json as { refresh_token?: unknown } | undefined)?.refresh_token;
    if (before.status !== 200) return notApplicable(`A refresh did not work even before the change (status ${before.status}).`);
    if (typeof next === 'string') token = next;

    const fresh = await ctx.fullLogin({ note: 'log in again: a fresh session to remove the factor with' });
    const action = disableActions(ctx.profile)[0]!;
    const removed = await ctx.sendAction(action, fresh.session, `${action.name} (fresh session)`, { password: 'right', factor: 'right' });
    if (!succeeded(removed, action.success)) {
      return notApplicable(`${action.name} was refused even with a fresh session (status ${removed.status}): nothing to test.`);
    }
    const after = await refresh(ctx, o, token as string, 'refresh after the factor was removed');
    if (after.status === 200) return bypassed('The refresh token still produced tokens after the second factor was removed.');
    return blocked(
      `After ${action.name}, the refresh was refused (status ${after.status}${(after.json as { error?: string } | undefined)?.error ? `, ${(after.json as { error: string }).error}` : ''}).`,
      'the same refresh grant worked before the factor was removed',
    );
  },
};
