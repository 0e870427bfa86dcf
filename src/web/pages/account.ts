/**
 * Changing the account's e-mail address and password from the settings page. Both are ★,
 * like `POST /api/account/email` and `POST /api/account/password`, and call the same
 * services: a stale session gets the step-up prompt in place (step-up.ts), which repeats
 * the post afterwards. The prompt never carries password fields, so after a step-up the
 * password form comes back empty, asking for the passwords again.
 *
 * Passwords are never written into a page; a refusal names the field it belongs to.
 */
import type { FastifyInstance } from 'fastify';
import { GatehouseError, InvalidRequestError } from '../../core/errors.js';
import { clearCookie } from '../../http/cookies.js';
import { requires, sessionOf } from '../../http/gate.js';
import type { PasswordField } from '../account-view.js';
import type { Web } from '../context.js';
import { formOf, str } from '../form.js';
import { settingsPage } from './settings.js';

/** The e-mail change refusals a person can act on, in words (null: the service's own message). */
const EMAIL_REFUSALS: Record<string, string | null> = {
  invalid_request: null, // not an address, or the account's own address
  email_taken: 'Another account already uses this address.',
};

/** The refusal's own words, with the field's reason when there is one (e.g. why an address is refused). */
function fieldMessage(e: GatehouseError): string {
  const details = e instanceof InvalidRequestError ? e.details : [];
  return details[0] ? `${e.message} (${details[0].message})` : e.message;
}

export async function accountPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;

  app.post('/settings/email', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const typed = str(formOf(request), 'email', 320);
    let sentTo: string;
    try {
      // The address as the service stored it (and mailed), in its readable form.
      sentTo = (await gatehouse.emailChange.request(sessionOf(request), typed, request.ctx)).display;
    } catch (e) {
      if (!(e instanceof GatehouseError) || !Object.hasOwn(EMAIL_REFUSALS, e.code)) throw e;
      const error = EMAIL_REFUSALS[e.code] ?? fieldMessage(e);
      return settingsPage(web, request, reply, e.status, { error, account: { email: { value: typed, error } } });
    }
    return settingsPage(web, request, reply, 200, { notice: `We sent a link to ${sentTo}; your address changes when you open it.` });
  });

  app.post('/settings/password', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const current = str(form, 'currentPassword', 4096);
    const next = str(form, 'newPassword', 4096);
    const again = str(form, 'confirmPassword', 4096);
    const refuse = (status: number, errorField: PasswordField, error: string) =>
      settingsPage(web, request, reply, status, { error, account: { password: { errorField, error } } });

    // Repeated by the step-up prompt, which does not carry passwords: ask for them again.
    if (!current && !next && !again && str(form, 'stepup_next', 200) === '/settings/password') {
      return settingsPage(web, request, reply, 200, {
        notice: 'Thanks, that was you. Enter your current and new password again: they are not kept while you confirm.',
        account: { password: { errorField: null, error: null, focus: true } },
      });
    }
    if (!current) return refuse(400, 'currentPassword', 'Enter your current password.');
    if (next !== again) return refuse(400, 'confirmPassword', 'The two new passwords are not the same. Type the new password twice.');
    try {
      await gatehouse.passwordChange.change(session, current, next, request.ctx);
    } catch (e) {
      if (e instanceof GatehouseError && e.code === 'weak_password') return refuse(e.status, 'newPassword', e.message);
      if (e instanceof GatehouseError && e.code === 'invalid_credentials')
        return refuse(e.status, 'currentPassword', 'That is not your current password.');
      throw e;
    }
    // This session stays; every remember-me chain of the account (this browser's too) has ended.
    if (request.cookies[cookies.names.remember] !== undefined) clearCookie(reply, cookies, cookies.names.remember);
    return reply.redirect(web.path('/settings?notice=password_updated'), 303);
  });
}
