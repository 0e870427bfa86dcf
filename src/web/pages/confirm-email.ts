/**
 * Confirming a new e-mail address from the mailed link (/confirm-email?token=…). The GET
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
import { confirmEmailView } from '../views.js';

const TITLE = 'Confirm your new email address';

/** Words for the refusals a person can act on; anything else goes to the error handler. */
const REFUSALS: Record<string, string> = {
  invalid_token: 'This confirmation link is unknown, already used or expired. Ask for the change again from your account.',
  email_taken: 'Another account already uses this address, so it cannot be moved to yours.',
};

export async function confirmEmailPages(app: FastifyInstance, { gatehouse }: Web): Promise<void> {
  app.get('/confirm-email', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const token = queryParam(request, 'token');
    if (!token) return send(reply, 400, { title: TITLE, error: 'This link is incomplete. Open the link from the email again.', body: html`<p><a href="/sign-in">Sign in</a></p>` });
    return send(reply, 200, { title: TITLE, body: confirmEmailView({ token }) });
  });

  app.post('/confirm-email', { config: requires({ session: 'none' }) }, async (request, reply) => {
    let email: string;
    try {
      ({ email } = await gatehouse.emailChange.confirm(str(formOf(request), 'token', 200), request.ctx));
    } catch (e) {
      if (!(e instanceof GatehouseError) || !Object.hasOwn(REFUSALS, e.code)) throw e;
      return send(reply, e.status, { title: TITLE, error: REFUSALS[e.code]!, body: html`<p><a href="/settings">Security settings</a></p>` });
    }
    return send(reply, 200, {
      title: 'Email address changed',
      notice: 'Your email address was changed.',
      body: html`<p class="card">Your account now uses <strong>${email}</strong>. Sign in with this address from now on.</p><p><a href="/settings">Security settings</a></p>`,
    });
  });
}
