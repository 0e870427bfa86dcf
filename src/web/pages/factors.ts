/**
 * Second factors: enrolment (GATEHOUSE_MFA_REQUIRED=all), adding an authenticator app or a
 * passkey, removing a factor and new recovery codes. Enrolling sessions may add a TOTP
 * factor or a passkey, as in the API; everything else needs a full session.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../../core/errors.js';
import { awaitsSecondFactor } from '../../core/session-state.js';
import { addingFactorIsSensitive, requires, sessionOf } from '../../http/gate.js';
import { deliverSession } from '../../http/session-delivery.js';
import type { ConfirmedFactor } from '../../services/factor-changes.js';
import type { ActiveSession } from '../../services/sessions.js';
import { send, userOf, type Web } from '../context.js';
import { formOf, json, str } from '../form.js';
import { html, type Html } from '../html.js';
import { csrfField, field, postButton, recoveryCodesView } from '../views.js';
import { settingsAction } from './settings.js';

const savedThem = html`<p><a class="button" href="/settings">I saved them — continue</a></p>`;

/**
 * The passkey registration form (the button shows once /assets/gatehouse.js finds WebAuthn;
 * it fetches the options, runs the authenticator and posts the response here). Without
 * `label` nothing of it is visible without JavaScript.
 */
function passkeyForm(o: { csrf: string; button: string; label: boolean; intro?: Html | null }): Html {
  return html`<form${o.label ? html` class="card"` : null} method="post" action="/settings/passkeys">${csrfField(o.csrf)}<input type="hidden" name="response" value="">
${o.intro ?? null}${o.label ? field({ name: 'label', label: 'Name for this passkey', value: '', maxlength: 64, required: false, hint: 'For example “Laptop” or “Blue security key”.' }) : null}
<button type="button"${o.label ? null : html` class="secondary"`} data-passkey="register" data-options="/api/mfa/webauthn/register/options" data-field="response" data-status="passkey-status" hidden>${o.button}</button>
${o.label ? html`<noscript><p class="alert">Adding a passkey needs JavaScript in this browser.</p></noscript>` : null}
<p class="field-error" role="alert" id="passkey-status" hidden></p>
</form>`;
}

export async function factorPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;
  const { factors, webauthn } = gatehouse;

  /**
   * A factor was added: the session is re-issued (its assurance changed). The first factor
   * also brings recovery codes, shown once; otherwise back to settings with `notice`.
   */
  function factorAdded(reply: FastifyReply, session: ActiveSession, result: ConfirmedFactor, notice: string, title: string) {
    if (result.session) deliverSession(reply, cookies, result.session, 'cookie');
    if (!result.recoveryCodes) return reply.redirect(web.path(`/settings?notice=${notice}`), 303);
    return send(web, reply, 200, {
      title,
      user: { email: session.email, csrf: web.tokens.of(session) },
      body: recoveryCodesView(result.recoveryCodes, savedThem),
    });
  }

  app.get('/enrol', { config: requires({ session: 'enrolling' }) }, async (request, reply) => {
    const session = sessionOf(request);
    if (session.facts.state === 'full') return reply.redirect(web.path('/settings'), 303);
    // The account confirmed a factor in another session meanwhile: prove that one instead.
    if (awaitsSecondFactor(session.facts, session.factorMethods)) return reply.redirect(web.path('/sign-in/verify'), 303);
    const csrf = web.tokens.of(session);
    return send(web, reply, 200, {
      title: 'Add a second factor',
      body: html`<p>Your organisation requires a second factor before you can continue.</p>
        ${postButton({ action: '/settings/totp/setup', csrf, label: 'Set up an authenticator app', card: true })}
        ${passkeyForm({ csrf, button: 'Add a passkey', label: false })}
        ${postButton({ action: '/sign-out', csrf, label: 'Sign out', className: 'link' })}`,
    });
  });

  const totpConfirmForm = (csrf: string, error?: string) =>
    html`<form class="card" method="post" action="/settings/totp/confirm" novalidate>
      ${csrfField(csrf)}
      ${field({ name: 'code', label: 'Enter the 6-digit code the app shows', autocomplete: 'one-time-code', inputmode: 'numeric', className: 'code', maxlength: 6, pattern: '[0-9]{6}', error: error ?? null, autofocus: Boolean(error) })}
      <button type="submit">Turn on</button>
    </form>`;

  app.post('/settings/totp/setup', { config: requires({ session: 'enrolling', fresh: true }) }, async (request, reply) => {
    const session = sessionOf(request);
    const setup = await factors.setupTotp(session, request.ctx);
    const qr = `data:image/svg+xml;base64,${Buffer.from(setup.qrSvg).toString('base64')}`;
    const grouped = setup.secret.replace(/(.{4})/g, '$1 ').trim();
    return send(web, reply, 200, {
      title: 'Add an authenticator app',
      user: userOf(web, request),
      body: html`<section class="card">
          <h2>1. Scan this code</h2>
          <p>Open your authenticator app (for example Google Authenticator, 1Password, Aegis) and scan:</p>
          <img class="qr" src="${qr}" alt="QR code for setting up your authenticator app" width="200" height="200" />
          <details>
            <summary>Can’t scan? Enter the key instead</summary>
            <p>Key (letters and digits, spaces don’t matter):</p>
            <code class="secret" id="totp-secret">${grouped}</code>
            <button type="button" class="secondary" data-copy="totp-secret" hidden>Copy key</button>
          </details>
        </section>
        <h2>2. Confirm</h2>
        ${totpConfirmForm(web.tokens.of(session))}`,
    });
  });

  app.post(
    '/settings/totp/confirm',
    { config: requires({ session: 'enrolling', fresh: addingFactorIsSensitive }) },
    async (request, reply) => {
      const session = sessionOf(request);
      try {
        const result = await factors.confirmTotp(session, str(formOf(request), 'code', 64), request.ctx);
        return factorAdded(reply, session, result, 'totp_added', 'Authenticator app added');
      } catch (e) {
        if (!(e instanceof GatehouseError) || !['invalid_code', 'invalid_request', 'no_pending_setup'].includes(e.code)) throw e;
        const message = e.code === 'invalid_code' ? 'That code is not right. Check the app and try the current code.' : e.message;
        const csrf = web.tokens.of(session);
        return send(web, reply, e.status, {
          title: 'Add an authenticator app',
          user: userOf(web, request),
          error: message,
          body: html`${totpConfirmForm(csrf, message)}${postButton({ action: '/settings/totp/setup', csrf, label: 'Start over with a new QR code', className: 'secondary' })}`,
        });
      }
    },
  );

  app.post('/settings/factors/remove', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      const form = formOf(request);
      const factorId = str(form, 'factorId', 64);
      if (str(form, 'type', 16) === 'webauthn') await webauthn.remove(sessionOf(request), factorId, request.ctx);
      else await factors.deleteTotp(sessionOf(request), factorId, request.ctx);
      return reply.redirect(web.path('/settings?notice=factor_removed'), 303);
    }),
  );

  const passkeyPage = (request: FastifyRequest, reply: FastifyReply, status: number, error?: string) =>
    send(web, reply, status, {
      title: 'Add a passkey',
      user: userOf(web, request),
      error: error ?? null,
      body: html`${passkeyForm({
        csrf: web.tokens.of(sessionOf(request)),
        button: 'Create passkey',
        label: true,
        intro: html`<p>A passkey lives in your phone, computer or security key and cannot be phished: it only works on this site.</p>`,
      })}
        <p><a href="${sessionOf(request).facts.state === 'enrolling' ? '/enrol' : '/settings'}">Cancel</a></p>`,
    });

  // Enrolling sessions may add a passkey as their first factor (as in the API); ★ otherwise.
  app.post('/settings/passkeys/new', { config: requires({ session: 'enrolling', fresh: true }) }, async (request, reply) =>
    passkeyPage(request, reply, 200),
  );

  app.post('/settings/passkeys', { config: requires({ session: 'enrolling', fresh: addingFactorIsSensitive }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    try {
      const result = await webauthn.verifyRegistration(session, json(form, 'response'), str(form, 'label', 64) || null, request.ctx);
      return factorAdded(reply, session, result, 'passkey_added', 'Passkey added');
    } catch (e) {
      if (e instanceof GatehouseError && (e.code === 'invalid_request' || e.code === 'no_pending_setup'))
        return passkeyPage(request, reply, 400, e.message);
      throw e;
    }
  });

  app.post('/settings/recovery-codes', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      const codes = await factors.regenerateRecoveryCodes(sessionOf(request), request.ctx);
      return send(web, reply, 200, { title: 'New recovery codes', user: userOf(web, request), body: recoveryCodesView(codes, savedThem) });
    }),
  );
}
