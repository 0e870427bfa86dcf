/**
 * The pages Gatehouse serves: sign up, sign in, the second-factor challenge, forgot/reset
 * password, enrolment and security settings. They call the same services as the JSON API
 * and every route declares its requirement to the same gate, so a page can never reach a
 * state the API would refuse. Gate refusals become redirects or pages here:
 * unauthenticated → /sign-in, pending → /sign-in/verify, step-up → the factor prompt in
 * place, which then repeats the original request (307) with the fresh session.
 *
 * Encapsulated (not fastify-plugin): the urlencoded body parser and the HTML error
 * handler apply to these routes only; the JSON API stays JSON-only.
 *
 * CSRF: the gate's same-origin rule (Origin / Sec-Fetch-Site) applies to every cookie
 * request, cookies are SameSite=Lax, and every form of a signed-in session also carries
 * a per-session form token (HMAC of the session id), checked before any handler runs.
 */
import crypto from 'node:crypto';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CsrfError, GatehouseError, InvalidCodeError, StepUpRequiredError, TooManyAttemptsError } from '../core/errors.js';
import { stepUpMethods } from '../core/requirements.js';
import { API_TOKEN_SCOPES } from '../core/scopes.js';
import type { Gatehouse } from '../gatehouse.js';
import { clearCookie, type CookiePolicy } from '../http/cookies.js';
import { endRememberMe, issueRememberMeIfAsked, trustDeviceIfAsked } from '../http/credentials.js';
import { requires, sessionOf } from '../http/gate.js';
import { deliverSession } from '../http/routes/auth.js';
import type { CodeMethod } from '../services/second-factor.js';
import type { ActiveSession } from '../services/sessions.js';
import { loadWebAuthnBrowserModules, SCRIPT, STYLESHEET } from './assets.js';
import { html } from './html.js';
import {
  csrfField,
  factorForms,
  field,
  forgotView,
  page,
  recoveryCodesView,
  resetView,
  signInView,
  signUpView,
  type Shell,
} from './views.js';

type Form = Record<string, unknown>;

/** First value of a form field, bounded; '' when absent. */
function str(form: Form, name: string, max = 1024): string {
  const value = form[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first.slice(0, max) : '';
}

function list(form: Form, name: string): string[] {
  const value = form[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string').slice(0, 16);
}

const formOf = (request: FastifyRequest): Form => (request.body && typeof request.body === 'object' ? (request.body as Form) : {});

const NOTICES: Record<string, string> = {
  signed_out: 'You are signed out.',
  password_changed: 'Your password was changed. Sign in with the new one.',
  session_expired: 'Your sign-in expired. Start again.',
  totp_added: 'Authenticator app added.',
  passkey_added: 'Passkey added.',
  factor_removed: 'Factor removed.',
  session_revoked: 'Session signed out.',
  device_revoked: 'Device forgotten.',
  token_revoked: 'Token revoked.',
};

/** Sensitive (★) page actions: the step-up prompt may send the browser back to these. */
const SENSITIVE_ACTIONS: Record<string, string> = {
  '/settings/totp/setup': 'add an authenticator app',
  '/settings/factors/remove': 'remove a factor',
  '/settings/passkeys/new': 'add a passkey',
  '/settings/passkeys': 'add a passkey',
  '/settings/recovery-codes': 'create new recovery codes',
  '/settings/tokens': 'create an API token',
};

/** Own keys only: `in` would also accept `constructor`, `__proto__`, `toString`, … */
const isSensitiveAction = (path: string): boolean => Object.hasOwn(SENSITIVE_ACTIONS, path);

const when = (iso: string | number | null | undefined) => {
  if (iso === null || iso === undefined) return html`<span class="muted">never</span>`;
  const d = new Date(iso);
  return html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;
};

/** Security-log types in words; unknown types are shown as they are. */
const EVENT_NAMES: Record<string, string> = {
  'account.created': 'Account created',
  'login.succeeded': 'Signed in',
  'login.failed': 'Wrong password entered',
  'mfa.failed': 'Wrong second factor entered',
  'mfa.verified': 'Second factor verified',
  'mfa.step_up': 'Confirmed it was you (step-up)',
  'mfa.recovery_code_used': 'Recovery code used',
  'mfa.factor_added': 'Second factor added',
  'mfa.factor_removed': 'Second factor removed',
  'mfa.recovery_codes_regenerated': 'New recovery codes created',
  'mfa.webauthn_sign_count_regression': 'Passkey refused: its counter went backwards (possible clone)',
  'mfa.webauthn_backup_state_changed': 'Passkey backup state changed',
  'account.locked': 'Account temporarily locked after failed attempts',
  'account.email_changed': 'Email address changed',
  'account.password_changed': 'Password changed',
  'session.revoked': 'A session was signed out',
  'token.created': 'API token created',
  'token.revoked': 'API token revoked',
  'password_reset.requested': 'Password reset requested',
  'password_reset.completed': 'Password reset',
};

const FACTOR_NAMES: Record<string, string> = { totp: 'Authenticator app', webauthn: 'Passkey', recovery_code: 'Recovery code' };

export interface WebPagesOptions {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
}

export async function webPages(app: FastifyInstance, { gatehouse, cookies }: WebPagesOptions): Promise<void> {
  const { auth, factors, webauthn, sessions, log } = gatehouse;
  await app.register(formbody, { bodyLimit: 64 * 1024 });

  const csrfOf = (session: ActiveSession) => gatehouse.keys.hasher.hash(`form-token:${session.id}`);
  const sameToken = (a: string, b: string) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));
  const sessionOrNull = (request: FastifyRequest) => (request.principal.kind === 'session' ? request.principal.session : null);
  const userOf = (request: FastifyRequest) => {
    const s = sessionOrNull(request);
    return s && s.facts.state === 'full' ? { email: s.email, csrf: csrfOf(s) } : null;
  };

  // Helmet's default `no-referrer` makes Chromium send `Origin: null` on form posts, which
  // the gate's same-origin rule (rightly) refuses. Same-origin referrers only: nothing leaks
  // to other sites, and our own forms carry our Origin.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Referrer-Policy', 'same-origin');
  });

  const send = (reply: FastifyReply, status: number, shell: Shell) => reply.status(status).type('text/html; charset=utf-8').send(page(shell));

  // The per-session form token, after the gate (authentication, same-origin) and before any handler.
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST') return;
    const session = sessionOrNull(request);
    if (!session || request.principal.kind !== 'session' || request.principal.via !== 'cookie') return;
    if (!sameToken(str(formOf(request), '_csrf', 200), csrfOf(session))) throw new CsrfError();
  });

  /** The factor prompt, in place of a ★ action; it then repeats the action (307). */
  const stepUpPage = (request: FastifyRequest, reply: FastifyReply, methods: string[], error?: { method: string; message: string }) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const next = request.method === 'POST' ? (str(form, 'stepup_next', 200) || request.routeOptions.url || '/settings') : '/settings';
    const carried = request.method === 'POST' ? Object.entries(form).filter(([k]) => !k.startsWith('stepup_') && k !== '_csrf') : [];
    const hidden = html`${csrfField(csrfOf(session))}<input type="hidden" name="stepup_next" value="${next}">${carried.flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).filter((x) => typeof x === 'string').map((x) => html`<input type="hidden" name="${k}" value="${x}">`),
    )}`;
    const what = isSensitiveAction(next) ? SENSITIVE_ACTIONS[next] : 'continue';
    return send(reply, error ? 401 : 403, {
      title: 'Confirm it’s you',
      user: userOf(request),
      error: error?.message ?? null,
      body: html`<p>To ${what}, confirm with ${methods.includes('password') ? 'your password' : 'your second factor'}. This keeps someone who finds your session open from making changes.</p>
${factorForms({ methods, prefix: 'stepup_', action: '/settings/step-up', hidden, passkeyOptionsUrl: '/api/auth/step-up/webauthn/options', errorMethod: error?.method ?? null, error: error?.message ?? null })}
<p><a href="/settings">Cancel</a></p>`,
    });
  };

  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof GatehouseError) {
      switch (error.code) {
        case 'unauthenticated':
        case 'no_pending_authentication':
          return reply.redirect('/sign-in', 303);
        case 'mfa_required':
          return reply.redirect('/sign-in/verify', 303);
        case 'enrollment_required':
          return reply.redirect('/enrol', 303);
        case 'step_up_required': {
          // The gate refused before the form token was checked: check it now, so the prompt
          // never adopts (and later re-posts with a valid token) a form from elsewhere.
          const session = sessionOrNull(request);
          if (request.method === 'POST' && (!session || !sameToken(str(formOf(request), '_csrf', 200), csrfOf(session)))) {
            return send(reply, 403, { title: 'Request refused', error: 'This form came from another site or an old page. Go back, reload the page and try again.', body: html`<p><a href="/settings">Security settings</a></p>` });
          }
          return stepUpPage(request, reply, (error as StepUpRequiredError).methods);
        }
        case 'csrf':
          return send(reply, 403, { title: 'Request refused', error: 'This form came from another site or an old page. Go back, reload the page and try again.', body: html`<p><a href="/settings">Security settings</a></p>` });
        case 'too_many_attempts': {
          const retry = (error as TooManyAttemptsError).retryAfter;
          reply.header('Retry-After', String(retry));
          return send(reply, 429, { title: 'Too many attempts', error: `${error.message} Try again in ${Math.ceil(retry / 60)} minute(s).`, body: html`<p><a href="/sign-in">Sign in</a></p>` });
        }
        default:
          return send(reply, error.status, { title: 'That did not work', user: userOf(request), error: error.message, body: html`<p><a href="/settings">Back</a></p>` });
      }
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return send(reply, status, { title: 'That did not work', error: 'The form could not be read.', body: html`<p><a href="/">Start again</a></p>` });
    }
    request.log.error({ err: error }, 'page failed');
    return send(reply, 500, { title: 'Something went wrong', error: 'Something went wrong on our side. Try again.', body: html`<p><a href="/">Start again</a></p>` });
  });

  // ---- static assets ---------------------------------------------------------------------
  const modules = loadWebAuthnBrowserModules();
  const js = (reply: FastifyReply, body: string) => reply.type('text/javascript; charset=utf-8').send(body);
  app.get('/assets/gatehouse.css', { config: requires({ session: 'none' }) }, async (_r, reply) => reply.type('text/css; charset=utf-8').send(STYLESHEET));
  app.get('/assets/gatehouse.js', { config: requires({ session: 'none' }) }, async (_r, reply) => js(reply, SCRIPT));
  app.get('/assets/simplewebauthn/*', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const file = modules.get((request.params as { '*': string })['*']);
    return file === undefined ? reply.status(404).type('text/plain').send('not found') : js(reply, file);
  });

  // ---- signing up and in -----------------------------------------------------------------
  async function revokePresentedSession(request: FastifyRequest) {
    const old = request.cookies[cookies.names.session];
    const session = old ? await sessions.resolve(old, 'cookie', request.ctx.now) : null;
    if (session) await sessions.revoke(session.id);
  }

  app.get('/', { config: requires({ session: 'none' }) }, async (_request, reply) => reply.redirect('/settings', 303));

  app.get('/sign-up', { config: requires({ session: 'none' }) }, async (_request, reply) => send(reply, 200, { title: 'Create your account', body: signUpView({}) }));

  app.post('/sign-up', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const email = str(form, 'email', 320);
    try {
      const result = await auth.signup({ email, password: str(form, 'password', 4096), transport: 'cookie' }, request.ctx);
      await revokePresentedSession(request);
      deliverSession(reply, cookies, result.session, 'cookie');
      return reply.redirect(result.outcome === 'authenticated' ? '/settings' : '/enrol', 303);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status >= 429) throw e;
      const errorField = e.code === 'weak_password' ? 'password' : 'email';
      return send(reply, e.status, { title: 'Create your account', error: e.message, body: signUpView({ email, error: e.message, errorField }) });
    }
  });

  app.get('/sign-in', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const notice = NOTICES[String((request.query as Record<string, unknown>).notice ?? '')] ?? null;
    return send(reply, 200, { title: 'Sign in', notice, body: signInView({}) });
  });

  app.post('/sign-in', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const email = str(form, 'email', 320);
    const remember = str(form, 'remember') !== '';
    let result;
    try {
      result = await auth.login(
        { email, password: str(form, 'password', 4096), transport: 'cookie', remember, deviceToken: request.cookies[cookies.names.device] },
        request.ctx,
      );
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      return send(reply, e.status, { title: 'Sign in', error: e.code === 'invalid_credentials' ? 'That email and password do not match an account.' : e.message, body: signInView({ email, error: e.message }) });
    }
    await revokePresentedSession(request);
    deliverSession(reply, cookies, result.session, 'cookie');
    if (result.outcome === 'authenticated') {
      await issueRememberMeIfAsked(request, reply, gatehouse, cookies, { userId: result.user.id, sessionId: result.session.id, remember, transport: 'cookie' });
      return reply.redirect('/settings', 303);
    }
    return reply.redirect(result.outcome === 'mfa_required' ? '/sign-in/verify' : '/enrol', 303);
  });

  const challengePage = (request: FastifyRequest, reply: FastifyReply, status: number, error?: { method: string; message: string }) => {
    const session = sessionOf(request);
    const csrf = csrfOf(session);
    return send(reply, status, {
      title: 'Second step',
      error: error?.message ?? null,
      body: html`<p>Signed in as <strong>${session.email}</strong>. Confirm it’s you with your second factor.</p>
${factorForms({
  methods: session.factorMethods,
  prefix: '',
  action: '/sign-in/verify',
  hidden: csrfField(csrf),
  passkeyOptionsUrl: '/api/auth/webauthn/options',
  errorMethod: error?.method ?? null,
  error: error?.message ?? null,
  trustDevice: gatehouse.trustedDevices.enabled,
})}
<form method="post" action="/sign-out">${csrfField(csrf)}<button class="link" type="submit">Cancel and sign out</button></form>`,
    });
  };

  app.get('/sign-in/verify', { config: requires({ session: 'pending' }) }, async (request, reply) => challengePage(request, reply, 200));

  /** Reads the method and credential of a factor form (login or step-up). */
  const factorInput = (form: Form, prefix: string) => {
    const method = str(form, `${prefix}method`, 32);
    let response: unknown = null;
    if (method === 'webauthn') {
      try {
        response = JSON.parse(str(form, `${prefix}response`, 32 * 1024) || 'null');
      } catch {
        response = null;
      }
    }
    return { method, code: str(form, `${prefix}code`, 64), response, password: str(form, `${prefix}password`, 4096) };
  };
  const isCodeMethod = (m: string): m is CodeMethod => m === 'totp' || m === 'recovery_code' || m === 'webauthn';
  const wrongFactor = (method: string) =>
    method === 'webauthn' ? 'The passkey was not accepted. Try again.' : method === 'recovery_code' ? 'That recovery code is not valid or was already used.' : 'That code is not right. Wait for a new code and try again.';

  app.post('/sign-in/verify', { config: requires({ session: 'pending' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const input = factorInput(form, '');
    if (!isCodeMethod(input.method)) return challengePage(request, reply, 400, { method: 'totp', message: 'Choose a way to confirm.' });
    try {
      const issued = await auth.verifySecondFactor(session, input.method, input.code, request.ctx, input.response);
      deliverSession(reply, cookies, issued, 'cookie');
      await issueRememberMeIfAsked(request, reply, gatehouse, cookies, { userId: session.userId, sessionId: session.id, remember: session.remember, transport: 'cookie' });
      await trustDeviceIfAsked(request, reply, gatehouse, cookies, session.userId, str(form, 'trustDevice') !== '');
      return reply.redirect('/settings', 303);
    } catch (e) {
      if (e instanceof InvalidCodeError) return challengePage(request, reply, 401, { method: input.method, message: wrongFactor(input.method) });
      if (e instanceof TooManyAttemptsError) {
        // The verifier revoked the pending session after too many wrong codes.
        clearCookie(reply, cookies, cookies.names.session);
        reply.header('Retry-After', String(e.retryAfter));
        return send(reply, 429, { title: 'Sign in', error: `${e.message}`, body: signInView({ email: session.email }) });
      }
      throw e;
    }
  });

  app.post('/sign-out', { config: requires({ session: 'any' }) }, async (request, reply) => {
    const session = sessionOrNull(request);
    await auth.logout(session);
    await endRememberMe(request, reply, gatehouse, cookies, session);
    clearCookie(reply, cookies, cookies.names.session);
    return reply.redirect('/sign-in?notice=signed_out', 303);
  });

  // ---- password reset (issue 3's service) ---------------------------------------------------
  app.get('/forgot-password', { config: requires({ session: 'none' }) }, async (_request, reply) => send(reply, 200, { title: 'Forgot your password?', body: forgotView({}) }));

  app.post('/forgot-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const email = str(formOf(request), 'email', 320);
    try {
      await gatehouse.passwordReset.forgot(email, request.ctx);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      return send(reply, e.status, { title: 'Forgot your password?', error: e.message, body: forgotView({ email }) });
    }
    return send(reply, 200, { title: 'Check your email', body: forgotView({ sent: true }) });
  });

  app.get('/reset-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = String((request.query as Record<string, unknown>).token ?? '').slice(0, 200);
    if (!token) return reply.redirect('/forgot-password', 303);
    return send(reply, 200, { title: 'Choose a new password', body: resetView({ token }) });
  });

  app.post('/reset-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const token = str(form, 'token', 200);
    try {
      await gatehouse.passwordReset.reset(token, str(form, 'password', 4096), request.ctx);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      const message = e.code === 'invalid_token' ? 'This reset link is unknown, already used or expired. Ask for a new one.' : e.message;
      return send(reply, e.status, { title: 'Choose a new password', error: message, body: e.code === 'invalid_token' ? html`<p><a href="/forgot-password">Ask for a new link</a></p>` : resetView({ token, error: message }) });
    }
    return reply.redirect('/sign-in?notice=password_changed', 303);
  });

  // ---- enrolment (GATEHOUSE_MFA_REQUIRED=all) -------------------------------------------------
  app.get('/enrol', { config: requires({ session: 'enrolling' }) }, async (request, reply) => {
    const session = sessionOf(request);
    if (session.facts.state === 'full') return reply.redirect('/settings', 303);
    return send(reply, 200, {
      title: 'Add a second factor',
      body: html`<p>Your organisation requires a second factor before you can continue.</p>
<form class="card" method="post" action="/settings/totp/setup">${csrfField(csrfOf(session))}<button type="submit">Set up an authenticator app</button></form>
<form method="post" action="/sign-out">${csrfField(csrfOf(session))}<button class="link" type="submit">Sign out</button></form>`,
    });
  });

  // ---- security settings ------------------------------------------------------------------
  app.get('/settings', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const notice = NOTICES[String((request.query as Record<string, unknown>).notice ?? '')] ?? null;
    return settingsPage(request, reply, 200, { notice });
  });

  async function settingsPage(request: FastifyRequest, reply: FastifyReply, status: number, message: { notice?: string | null; error?: string | null }) {
    const session = sessionOf(request);
    const csrf = csrfOf(session);
    const now = request.ctx.now;
    const [mfa, passkeys, sessionRows, events, tokens, devices] = await Promise.all([
      factors.list(session.userId),
      webauthn.list(session.userId),
      sessions.list(session.userId, now),
      log.list(session.userId, 15),
      gatehouse.apiTokens.list(session.userId),
      gatehouse.trustedDevices.enabled ? gatehouse.trustedDevices.list(session.userId, now) : Promise.resolve([]),
    ]);
    const labels = new Map(passkeys.map((p) => [p.id, p]));
    const remove = (id: string, type: string, label: string) =>
      html`<form method="post" action="/settings/factors/remove">${csrfField(csrf)}<input type="hidden" name="factorId" value="${id}"><input type="hidden" name="type" value="${type}"><button class="danger" type="submit" aria-label="Remove ${label}">Remove</button></form>`;
    const factorItems = mfa.factors.map((f) => {
      const pk = labels.get(f.id);
      const name = pk ? `Passkey “${pk.label ?? 'Passkey'}”` : FACTOR_NAMES[f.type] ?? f.type;
      const detail = pk ? html` · ${pk.backedUp ? 'synced' : 'this device only'}${pk.userVerified ? ' · with PIN or biometrics' : ''} · last used ${when(pk.lastUsedAt)}` : null;
      return html`<li><span><strong>${name}</strong><br><span class="muted">added ${when(f.createdAt)}${detail}</span></span>${remove(f.id, f.type, name)}</li>`;
    });
    const hasTotp = mfa.factors.some((f) => f.type === 'totp');
    const body = html`
<section class="card" aria-labelledby="h-factors">
<h2 id="h-factors">Second factors</h2>
${factorItems.length ? html`<ul class="list">${factorItems}</ul>` : html`<p>You have no second factor. Add one so a stolen password is not enough to get in.</p>`}
${hasTotp ? null : html`<form method="post" action="/settings/totp/setup">${csrfField(csrf)}<button type="submit">Add authenticator app</button></form>`}
<form method="post" action="/settings/passkeys/new">${csrfField(csrf)}<button type="submit" class="${hasTotp ? '' : 'secondary'}">Add a passkey</button></form>
</section>
${mfa.factors.length
  ? html`<section class="card" aria-labelledby="h-codes"><h2 id="h-codes">Recovery codes</h2>
<p><strong id="codes-remaining">${mfa.recoveryCodesRemaining}</strong> of 10 unused recovery codes left.</p>
<form method="post" action="/settings/recovery-codes">${csrfField(csrf)}<button type="submit" class="secondary">Create new codes</button></form>
<p class="hint">New codes replace all old ones.</p></section>`
  : null}
<section class="card" aria-labelledby="h-sessions">
<h2 id="h-sessions">Where you’re signed in</h2>
<ul class="list">${sessionRows.map(
      (row) => html`<li><span><strong>${row.user_agent.slice(0, 80) || 'Unknown client'}</strong>${row.id === session.id ? html` <em>(this session)</em>` : null}<br>
<span class="muted">${row.ip} · ${row.state === 'full' ? 'signed in' : 'waiting for second factor'} · since ${when(row.created_at)} · last seen ${when(row.last_seen_at)}</span></span>
<form method="post" action="/settings/sessions/revoke">${csrfField(csrf)}<input type="hidden" name="sessionId" value="${row.id}"><button class="danger" type="submit" aria-label="Sign out ${row.id === session.id ? 'this session' : `session from ${row.ip}`}">Sign out</button></form></li>`,
    )}</ul>
</section>
${gatehouse.trustedDevices.enabled
  ? html`<section class="card" aria-labelledby="h-devices"><h2 id="h-devices">Trusted devices</h2>
${devices.length ? html`<ul class="list">${devices.map((d) => html`<li><span><strong>${d.userAgent.slice(0, 80) || 'Unknown device'}</strong><br><span class="muted">${d.ip} · trusted until ${when(d.expiresAt)}</span></span><form method="post" action="/settings/devices/revoke">${csrfField(csrf)}<input type="hidden" name="deviceId" value="${d.id}"><button class="danger" type="submit">Forget</button></form></li>`)}</ul>` : html`<p class="muted">No trusted devices.</p>`}
</section>`
  : null}
<section class="card" aria-labelledby="h-tokens">
<h2 id="h-tokens">API tokens</h2>
${tokens.length
  ? html`<ul class="list">${tokens.map((t) => html`<li><span><strong>${t.name}</strong><br><span class="muted">${t.scopes.join(', ') || 'no scopes'} · created ${when(t.createdAt)} · last used ${when(t.lastUsedAt)}</span></span><form method="post" action="/settings/tokens/revoke">${csrfField(csrf)}<input type="hidden" name="tokenId" value="${t.id}"><button class="danger" type="submit" aria-label="Revoke token ${t.name}">Revoke</button></form></li>`)}</ul>`
  : html`<p class="muted">No API tokens.</p>`}
<form method="post" action="/settings/tokens">${csrfField(csrf)}
${field({ name: 'name', label: 'New token name', maxlength: 100 })}
<fieldset><legend>Scopes</legend>
${API_TOKEN_SCOPES.map((s) => html`<label class="check"><input type="checkbox" name="scopes" value="${s}"> ${s}</label>`)}
</fieldset>
<button type="submit" class="secondary">Create token</button>
</form>
</section>
<section class="card" aria-labelledby="h-activity">
<h2 id="h-activity">Recent security activity</h2>
<ul class="list">${events.map((e) => html`<li><span><strong>${EVENT_NAMES[e.type] ?? e.type}</strong><br><span class="muted">${when(e.at)} · ${e.ip}</span></span></li>`)}</ul>
</section>`;
    return send(reply, status, { title: 'Security settings', user: { email: session.email, csrf }, notice: message.notice ?? null, error: message.error ?? null, body });
  }

  /** Runs a settings action; a refusal the user can fix re-renders the settings page. */
  async function settingsAction(request: FastifyRequest, reply: FastifyReply, action: () => Promise<unknown>) {
    try {
      return await action();
    } catch (e) {
      if (e instanceof GatehouseError && e.status < 429 && !['step_up_required', 'csrf', 'unauthenticated', 'mfa_required'].includes(e.code)) {
        return settingsPage(request, reply, e.status, { error: e.message });
      }
      throw e;
    }
  }

  // TOTP enrolment (enrolling sessions too, as in the API; ★).
  const totpConfirmForm = (csrf: string, error?: string) => html`<form class="card" method="post" action="/settings/totp/confirm" novalidate>${csrfField(csrf)}
${field({ name: 'code', label: 'Enter the 6-digit code the app shows', autocomplete: 'one-time-code', inputmode: 'numeric', className: 'code', maxlength: 6, pattern: '[0-9]{6}', error: error ?? null, autofocus: Boolean(error) })}
<button type="submit">Turn on</button>
</form>`;

  app.post('/settings/totp/setup', { config: requires({ session: 'enrolling', fresh: true }) }, async (request, reply) => {
    const session = sessionOf(request);
    const setup = await factors.setupTotp(session, request.ctx);
    const qr = `data:image/svg+xml;base64,${Buffer.from(setup.qrSvg).toString('base64')}`;
    const grouped = setup.secret.replace(/(.{4})/g, '$1 ').trim();
    return send(reply, 200, {
      title: 'Add an authenticator app',
      user: userOf(request),
      body: html`<section class="card">
<h2>1. Scan this code</h2>
<p>Open your authenticator app (for example Google Authenticator, 1Password, Aegis) and scan:</p>
<img class="qr" src="${qr}" alt="QR code for setting up your authenticator app" width="200" height="200">
<details><summary>Can’t scan? Enter the key instead</summary>
<p>Key (letters and digits, spaces don’t matter):</p>
<code class="secret" id="totp-secret">${grouped}</code>
<button type="button" class="secondary" data-copy="totp-secret" hidden>Copy key</button>
</details>
</section>
<h2>2. Confirm</h2>
${totpConfirmForm(csrfOf(session))}`,
    });
  });

  app.post('/settings/totp/confirm', { config: requires({ session: 'enrolling' }) }, async (request, reply) => {
    const session = sessionOf(request);
    try {
      const result = await factors.confirmTotp(session, str(formOf(request), 'code', 64), request.ctx);
      deliverSession(reply, cookies, result.session, 'cookie');
      if (!result.recoveryCodes) return reply.redirect('/settings?notice=totp_added', 303);
      return send(reply, 200, {
        title: 'Authenticator app added',
        user: { email: session.email, csrf: csrfOf(session) },
        body: recoveryCodesView(result.recoveryCodes, html`<p><a class="button" href="/settings">I saved them — continue</a></p>`),
      });
    } catch (e) {
      if (!(e instanceof GatehouseError) || !['invalid_code', 'invalid_request'].includes(e.code)) throw e;
      const message = e.code === 'invalid_code' ? 'That code is not right. Check the app and try the current code.' : e.message;
      return send(reply, e.status, {
        title: 'Add an authenticator app',
        user: userOf(request),
        error: message,
        body: html`${totpConfirmForm(csrfOf(session), message)}<form method="post" action="/settings/totp/setup">${csrfField(csrfOf(session))}<button type="submit" class="secondary">Start over with a new QR code</button></form>`,
      });
    }
  });

  app.post('/settings/factors/remove', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(request, reply, async () => {
      const form = formOf(request);
      const factorId = str(form, 'factorId', 64);
      if (str(form, 'type', 16) === 'webauthn') await webauthn.remove(sessionOf(request), factorId, request.ctx);
      else await factors.deleteTotp(sessionOf(request), factorId, request.ctx);
      return reply.redirect('/settings?notice=factor_removed', 303);
    }),
  );

  const passkeyPage = (request: FastifyRequest, reply: FastifyReply, status: number, error?: string) => {
    const csrf = csrfOf(sessionOf(request));
    return send(reply, status, {
      title: 'Add a passkey',
      user: userOf(request),
      error: error ?? null,
      body: html`<form class="card" method="post" action="/settings/passkeys">${csrfField(csrf)}<input type="hidden" name="response" value="">
<p>A passkey lives in your phone, computer or security key and cannot be phished: it only works on this site.</p>
${field({ name: 'label', label: 'Name for this passkey', value: '', maxlength: 64, required: false, hint: 'For example “Laptop” or “Blue security key”.' })}
<button type="button" data-passkey="register" data-options="/api/mfa/webauthn/register/options" data-field="response" data-status="passkey-status" hidden>Create passkey</button>
<noscript><p class="alert">Adding a passkey needs JavaScript in this browser.</p></noscript>
<p class="field-error" role="alert" id="passkey-status" hidden></p>
</form>
<p><a href="/settings">Cancel</a></p>`,
    });
  };

  app.post('/settings/passkeys/new', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => passkeyPage(request, reply, 200));

  app.post('/settings/passkeys', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    let response: unknown = null;
    try {
      response = JSON.parse(str(form, 'response', 32 * 1024) || 'null');
    } catch {
      response = null;
    }
    try {
      const result = await webauthn.verifyRegistration(session, response, str(form, 'label', 64) || null, request.ctx);
      deliverSession(reply, cookies, result.session, 'cookie');
      if (!result.recoveryCodes) return reply.redirect('/settings?notice=passkey_added', 303);
      return send(reply, 200, {
        title: 'Passkey added',
        user: { email: session.email, csrf: csrfOf(session) },
        body: recoveryCodesView(result.recoveryCodes, html`<p><a class="button" href="/settings">I saved them — continue</a></p>`),
      });
    } catch (e) {
      if (e instanceof GatehouseError && e.code === 'invalid_request') return passkeyPage(request, reply, 400, e.message);
      throw e;
    }
  });

  app.post('/settings/recovery-codes', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(request, reply, async () => {
      const session = sessionOf(request);
      const codes = await factors.regenerateRecoveryCodes(session, request.ctx);
      return send(reply, 200, { title: 'New recovery codes', user: userOf(request), body: recoveryCodesView(codes, html`<p><a class="button" href="/settings">I saved them — continue</a></p>`) });
    }),
  );

  app.post('/settings/sessions/revoke', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const id = str(formOf(request), 'sessionId', 64);
    if (!(await sessions.revokeForUser(session.userId, id))) return settingsPage(request, reply, 404, { error: 'No such session.' });
    await log.record('session.revoked', session.userId, request.ctx, { sessionId: id });
    if (id === session.id) {
      await endRememberMe(request, reply, gatehouse, cookies, session);
      clearCookie(reply, cookies, cookies.names.session);
      return reply.redirect('/sign-in?notice=signed_out', 303);
    }
    return reply.redirect('/settings?notice=session_revoked', 303);
  });

  app.post('/settings/devices/revoke', { config: requires({ session: 'full' }) }, async (request, reply) =>
    settingsAction(request, reply, async () => {
      await gatehouse.trustedDevices.revoke(sessionOf(request).userId, str(formOf(request), 'deviceId', 64), request.ctx);
      return reply.redirect('/settings?notice=device_revoked', 303);
    }),
  );

  app.post('/settings/tokens', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(request, reply, async () => {
      const form = formOf(request);
      const name = str(form, 'name', 100).trim();
      if (!name) return settingsPage(request, reply, 400, { error: 'Give the token a name.' });
      const created = await gatehouse.apiTokens.create(sessionOf(request).userId, { name, scopes: list(form, 'scopes') }, request.ctx);
      return send(reply, 201, {
        title: 'API token created',
        user: userOf(request),
        body: html`<section class="card"><p>Copy the token now: it is shown only once.</p>
<code class="secret" id="api-token">${created.token}</code>
<button type="button" class="secondary" data-copy="api-token" hidden>Copy token</button>
<p class="muted">Scopes: ${created.scopes.join(', ') || 'none'}</p></section>
<p><a class="button" href="/settings">Done</a></p>`,
      });
    }),
  );

  app.post('/settings/tokens/revoke', { config: requires({ session: 'full' }) }, async (request, reply) =>
    settingsAction(request, reply, async () => {
      await gatehouse.apiTokens.revoke(sessionOf(request).userId, str(formOf(request), 'tokenId', 64), request.ctx);
      return reply.redirect('/settings?notice=token_revoked', 303);
    }),
  );

  // ---- step-up in place ---------------------------------------------------------------------
  app.post('/settings/step-up', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const input = factorInput(form, 'stepup_');
    const next = str(form, 'stepup_next', 200);
    const methods = stepUpMethods({ factorMethods: session.factorMethods }, { stepUpMaxAgeSeconds: gatehouse.config.stepUpMaxAgeSeconds, phishingResistantOnly: gatehouse.config.stepUpPhishingResistant });
    if (!methods.includes(input.method)) return stepUpPage(request, reply, methods, { method: methods[0] ?? 'totp', message: 'Choose one of the ways offered.' });
    try {
      const issued =
        input.method === 'password'
          ? await auth.reauthenticate(session, input.password, request.ctx)
          : await auth.stepUp(session, input.method as CodeMethod, input.code, request.ctx, input.response);
      deliverSession(reply, cookies, issued, 'cookie');
    } catch (e) {
      if (e instanceof GatehouseError && (e.code === 'invalid_code' || e.code === 'invalid_credentials')) {
        return stepUpPage(request, reply, methods, { method: input.method, message: input.method === 'password' ? 'That password is not right.' : wrongFactor(input.method) });
      }
      throw e;
    }
    // Repeat the original action with the fresh session (307 keeps method and body). Only
    // our own sensitive actions are valid targets.
    if (isSensitiveAction(next)) return reply.redirect(next, 307);
    return reply.redirect('/settings', 303);
  });
}

