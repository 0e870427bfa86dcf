/**
 * Forgot / reset password: the mail links to /reset-password?token=…, whose form posts the
 * token back with the new password. Public routes: the mailed token is the credential.
 */
import type { FastifyInstance } from 'fastify';
import { GatehouseError } from '../../core/errors.js';
import { requires } from '../../http/gate.js';
import { send, type Web } from '../context.js';
import { formOf, queryParam, str } from '../form.js';
import { html } from '../html.js';
import { forgotView, recoverView, resetView } from '../views.js';
import { deliverSession } from '../../http/session-delivery.js';

export async function passwordPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;
  // The recovery link of an admin's factor reset (docs/policy.md): password → enrolling session → /enrol.
  app.get('/recover', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = queryParam(request, 'token');
    if (!token) return reply.redirect(web.path('/sign-in'), 303);
    return send(web, reply, 200, { title: 'Set up a new second factor', body: recoverView({ token }) });
  });

  app.post('/recover', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const token = str(form, 'token', 200);
    try {
      const result = await gatehouse.admin.recover(token, str(form, 'password', 4096), 'cookie', request.ctx);
      deliverSession(reply, cookies, result.session, 'cookie');
      return reply.redirect(web.path('/enrol'), 303);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      const message =
        e.code === 'invalid_token'
          ? 'This recovery link is unknown, already used or expired. Ask your administrator for a new one.'
          : e.message;
      return send(web, reply, e.status, {
        title: 'Set up a new second factor',
        error: message,
        body: e.code === 'invalid_token' ? html`<p><a href="/sign-in">Back to sign in</a></p>` : recoverView({ token, error: message }),
      });
    }
  });

  app.get('/forgot-password', { config: requires({ session: 'none' }) }, async (_request, reply) =>
    send(web, reply, 200, { title: 'Forgot your password?', body: forgotView({}) }),
  );

  app.post('/forgot-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const email = str(formOf(request), 'email', 320);
    try {
      await gatehouse.passwordReset.forgot(email, request.ctx);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      return send(web, reply, e.status, { title: 'Forgot your password?', error: e.message, body: forgotView({ email }) });
    }
    return send(web, reply, 200, { title: 'Check your email', body: forgotView({ sent: true }) });
  });

  app.get('/reset-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = queryParam(request, 'token');
    if (!token) return reply.redirect(web.path('/forgot-password'), 303);
    return send(web, reply, 200, { title: 'Choose a new password', body: resetView({ token }) });
  });

  app.post('/reset-password', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const form = formOf(request);
    const token = str(form, 'token', 200);
    try {
      await gatehouse.passwordReset.reset(token, str(form, 'password', 4096), request.ctx);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.status === 429) throw e;
      const message = e.code === 'invalid_token' ? 'This reset link is unknown, already used or expired. Ask for a new one.' : e.message;
      return send(web, reply, e.status, {
        title: 'Choose a new password',
        error: message,
        body:
          e.code === 'invalid_token'
            ? html`<p><a href="/forgot-password">Ask for a new link</a></p>`
            : resetView({ token, error: message }),
      });
    }
    return reply.redirect(web.path('/sign-in?notice=password_changed'), 303);
  });
}
