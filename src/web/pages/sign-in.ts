/**
 * Signing up, in (password, then the second-factor challenge) and out. A new sign-in first
 * revokes the session the browser presented, so one browser never holds two sessions.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CsrfError, GatehouseError, InvalidCodeError, TooManyAttemptsError } from '../../core/errors.js';
import { clearCookie } from '../../http/cookies.js';
import { endBrowserSignIns, issueRememberMeIfAsked, screenRememberMe, sessionToEnd, trustDeviceIfAsked } from '../../http/credentials.js';
import { requires, sessionOf } from '../../http/gate.js';
import { deliverSession } from '../../http/session-delivery.js';
import { continueAfterForm, takeOidcReturn } from '../../oidc/plugin.js';
import { send, type Web } from '../context.js';
import { factorInput, isCodeMethod, wrongFactor } from '../factor-input.js';
import { formOf, str } from '../form.js';
import { html } from '../html.js';
import { noticeOf } from '../notices.js';
import { csrfField, factorForms, postButton, signInView, signUpView } from '../views.js';

export async function signInPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;
  const { auth, sessions } = gatehouse;

  async function revokePresentedSession(request: FastifyRequest) {
    const old = request.cookies[cookies.names.session];
    const session = old ? await sessions.resolve(old, 'cookie', request.ctx.now) : null;
    if (session) await sessions.revoke(session.id);
  }

  app.get('/', { config: requires({ session: 'none' }) }, async (_request, reply) => reply.redirect(web.path('/settings'), 303));

  app.get('/sign-up', { config: requires({ session: 'none' }) }, async (_request, reply) =>
    send(web, reply, 200, { title: 'Create your account', body: signUpView({}) }),
  );

  app.post('/sign-up', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const email = str(form, 'email', 320);
    await screenRememberMe(request, reply, gatehouse, cookies);
    try {
      const result = await auth.signup({ email, password: str(form, 'password', 4096), transport: 'cookie' }, request.ctx);
      await revokePresentedSession(request);
      deliverSession(reply, cookies, result.session, 'cookie');
      return reply.redirect(web.path(result.outcome === 'authenticated' ? '/settings' : '/enrol'), 303);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status >= 429) throw e;
      const errorField = e.code === 'weak_password' ? 'password' : 'email';
      return send(web, reply, e.status, {
        title: 'Create your account',
        error: e.message,
        body: signUpView({ email, error: e.message, errorField }),
      });
    }
  });

  app.get('/sign-in', { config: requires({ session: 'none' }) }, async (request, reply) =>
    send(web, reply, 200, { title: 'Sign in', notice: noticeOf(request), body: signInView({ upstreams: gatehouse.federation.list() }) }),
  );

  app.post('/sign-in', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const email = str(form, 'email', 320);
    const remember = str(form, 'remember') !== '';
    // Before the password is checked: a stale cookie is evidence even on a failed sign-in.
    await screenRememberMe(request, reply, gatehouse, cookies);
    let result;
    try {
      result = await auth.login(
        { email, password: str(form, 'password', 4096), transport: 'cookie', remember, deviceToken: request.cookies[cookies.names.device] },
        request.ctx,
      );
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      return send(web, reply, e.status, {
        title: 'Sign in',
        error: e.code === 'invalid_credentials' ? 'That email and password do not match an account.' : e.message,
        body: signInView({ email, error: e.message }),
      });
    }
    await revokePresentedSession(request);
    deliverSession(reply, cookies, result.session, 'cookie');
    if (result.outcome === 'authenticated') {
      await issueRememberMeIfAsked(request, reply, gatehouse, cookies, {
        userId: result.user.id,
        sessionId: result.session.id,
        remember,
        transport: 'cookie',
      });
      return continueAfterForm(reply, takeOidcReturn(request, reply, cookies, web.base) ?? web.path('/settings'));
    }
    return reply.redirect(web.path(result.outcome === 'mfa_required' ? '/sign-in/verify' : '/enrol'), 303);
  });

  const challengePage = (request: FastifyRequest, reply: FastifyReply, status: number, error?: { method: string; message: string }) => {
    const session = sessionOf(request);
    const csrf = web.tokens.of(session);
    return send(web, reply, status, {
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
        ${postButton({ action: '/sign-out', csrf, label: 'Cancel and sign out', className: 'link' })}`,
    });
  };

  app.get('/sign-in/verify', { config: requires({ session: 'pending' }) }, async (request, reply) => challengePage(request, reply, 200));

  app.post('/sign-in/verify', { config: requires({ session: 'pending' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const input = factorInput(form, '');
    if (!isCodeMethod(input.method)) return challengePage(request, reply, 400, { method: 'totp', message: 'Choose a way to confirm.' });
    try {
      const issued = await auth.verifySecondFactor(session, input.method, input.code, request.ctx, input.response);
      deliverSession(reply, cookies, issued, 'cookie');
      await issueRememberMeIfAsked(request, reply, gatehouse, cookies, {
        userId: session.userId,
        sessionId: session.id,
        remember: session.remember,
        transport: 'cookie',
      });
      await trustDeviceIfAsked(request, reply, gatehouse, cookies, session, str(form, 'trustDevice') !== '');
      return continueAfterForm(reply, takeOidcReturn(request, reply, cookies, web.base) ?? web.path('/settings'));
    } catch (e) {
      if (e instanceof InvalidCodeError)
        return challengePage(request, reply, 401, { method: input.method, message: wrongFactor(input.method) });
      if (e instanceof TooManyAttemptsError) {
        // The verifier revoked the pending session after too many wrong codes.
        clearCookie(reply, cookies, cookies.names.session);
        reply.header('Retry-After', String(e.retryAfter));
        return send(web, reply, 429, { title: 'Sign in', error: `${e.message}`, body: signInView({ email: session.email }) });
      }
      throw e;
    }
  });

  app.post('/sign-out', { config: requires({ session: 'any' }) }, async (request, reply) => {
    const session = await sessionToEnd(request, gatehouse, cookies);
    // A session found by its replaced token passed no form-token check yet (the gate found
    // none): its form token (of the session id, which the replacement keeps) is due here.
    if (session && request.principal.kind !== 'session' && !web.tokens.carries(request, session)) throw new CsrfError();
    await auth.logout(session);
    await endBrowserSignIns(request, reply, gatehouse, cookies, session);
    clearCookie(reply, cookies, cookies.names.session);
    return reply.redirect(web.path('/sign-in?notice=signed_out'), 303);
  });
}
