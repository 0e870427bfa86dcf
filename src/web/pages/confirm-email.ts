/**
 * Confirming a new e-mail address from the mailed link (/confirm-email?token=…), and
 * cancelling one from the link mailed to the old address (/cancel-email-change?token=…,
 * like POST /api/account/email/cancel). The GET
 * only shows a button; the POST confirms. Mail clients and link scanners fetch links on
 * their own, and must not be able to confirm for the user. Public routes, like the API's
 * POST /api/account/email/confirm: the mailed token is the credential, and the gate's
 * same-origin rule stops a cross-site post from spending it.
 */
import type { FastifyInstance } from 'fastify';
import { GatehouseError } from '../../core/errors.js';
import { requires } from '../../http/gate.js';
import { send, type Web } from '../context.js';
import { formOf, queryParam, str } from '../form.js';
import { html } from '../html.js';
import { cancelEmailChangeView, confirmEmailView } from '../views.js';

const TITLE = 'Confirm your new email address';

/** Words for the refusals a person can act on; anything else goes to the error handler. */
const REFUSALS: Record<string, string> = {
  invalid_token: 'This confirmation link is unknown, already used or expired. Ask for the change again from your account.',
  email_taken: 'Another account already uses this address, so it cannot be moved to yours.',
};

export async function confirmEmailPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse } = web;
  app.get('/confirm-email', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = queryParam(request, 'token');
    if (!token)
      return send(web, reply, 400, {
        title: TITLE,
        error: 'This link is incomplete. Open the link from the email again.',
        body: html`<p><a href="/sign-in">Sign in</a></p>`,
      });
    return send(web, reply, 200, { title: TITLE, body: confirmEmailView({ token }) });
  });

  app.post('/confirm-email', { config: requires({ session: 'none' }) }, async (request, reply) => {
    let email: string;
    try {
      ({ email } = await gatehouse.emailChange.confirm(str(formOf(request), 'token', 200), request.ctx));
    } catch (e) {
      if (!(e instanceof GatehouseError) || !Object.hasOwn(REFUSALS, e.code)) throw e;
      return send(web, reply, e.status, {
        title: TITLE,
        error: REFUSALS[e.code]!,
        body: html`<p><a href="/settings">Security settings</a></p>`,
      });
    }
    return send(web, reply, 200, {
      title: 'Email address changed',
      notice: 'Your email address was changed.',
      body: html`<p class="card">Your account now uses <strong>${email}</strong>. Sign in with this address from now on.</p>
        <p><a href="/settings">Security settings</a></p>`,
    });
  });

  const CANCEL_TITLE = 'Cancel the e-mail address change';
  const checkFactors = html`<p>
    Then secure your account: <a href="/forgot-password">reset your password</a>, sign in and check your second factors (authenticator apps,
    passkeys), sessions and API tokens, and remove anything you do not recognise.
  </p>`;

  app.get('/cancel-email-change', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = queryParam(request, 'token');
    if (!token)
      return send(web, reply, 400, {
        title: CANCEL_TITLE,
        error: 'This link is incomplete. Open the link from the email again.',
        body: html`<p><a href="/sign-in">Sign in</a></p>`,
      });
    return send(web, reply, 200, { title: CANCEL_TITLE, body: cancelEmailChangeView({ token }) });
  });

  app.post('/cancel-email-change', { config: requires({ session: 'none' }) }, async (request, reply) => {
    let result: Awaited<ReturnType<typeof gatehouse.emailChange.cancel>>;
    try {
      result = await gatehouse.emailChange.cancel(str(formOf(request), 'token', 200), request.ctx);
    } catch (e) {
      if (!(e instanceof GatehouseError) || e.code !== 'invalid_token') throw e;
      return send(web, reply, 400, {
        title: CANCEL_TITLE,
        error: 'This cancel link is unknown, already used or expired.',
        body: checkFactors,
      });
    }
    const what =
      result.status === 'email_change_cancelled'
        ? 'The e-mail address change was cancelled: your account keeps its address.'
        : 'That change was no longer pending: it was already confirmed, replaced by a newer request (look for a newer email) or expired.';
    const session = result.sessionRevoked ? ' The session that asked for it was signed out.' : '';
    return send(web, reply, 200, {
      title: 'E-mail address change cancelled',
      notice: `${what}${session}`,
      body: html`<p class="card">${what}${session}</p>
        ${checkFactors}`,
    });
  });
}
