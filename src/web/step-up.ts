/**
 * Step-up in place: when the gate refuses a ★ action for a stale session, the page shows the
 * factor prompt instead, carrying the original form's fields; once the factor is verified
 * it answers 307 to the original action, which the browser repeats (same method and body)
 * with the fresh session, through the gate again. Only the actions listed here are valid
 * targets, so the prompt can never be used as an open redirect or to replay other posts.
 * Password fields are never carried (they would be written into the page): the action
 * then receives the post without them and asks for them again.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../core/errors.js';
import { stepUpMethods } from '../core/requirements.js';
import { requires, sessionOf } from '../http/gate.js';
import { deliverSession } from '../http/session-delivery.js';
import type { CodeMethod } from '../services/second-factor.js';
import { send, userOf, type Web } from './context.js';
import { factorInput, wrongFactor } from './factor-input.js';
import { formOf, str } from './form.js';
import { html } from './html.js';
import { csrfField, factorForms } from './views.js';

/** Sensitive (★) page actions: the step-up prompt may send the browser back to these. */
const SENSITIVE_ACTIONS: Record<string, string> = {
  '/settings/totp/setup': 'add an authenticator app',
  '/settings/factors/remove': 'remove a factor',
  '/settings/passkeys/new': 'add a passkey',
  '/settings/passkeys': 'add a passkey',
  '/settings/recovery-codes': 'create new recovery codes',
  '/settings/tokens': 'create an API token',
  '/settings/email': 'change your email address',
  '/settings/password': 'change your password',
  '/settings/upstreams/unlink': 'unlink a sign-in with another provider',
};

/** Never carried into the prompt's page (and so never repeated): passwords stay out of the HTML. */
const isSecretField = (name: string): boolean => /password/i.test(name);

/** Own keys only: `in` would also accept `constructor`, `__proto__`, `toString`, … */
const isSensitiveAction = (path: string): boolean => Object.hasOwn(SENSITIVE_ACTIONS, path);

/** The factor prompt, in place of a ★ action; it then repeats the action (307). */
export function stepUpPrompt(
  web: Web,
  request: FastifyRequest,
  reply: FastifyReply,
  methods: string[],
  error?: { method: string; message: string },
) {
  const session = sessionOf(request);
  const form = formOf(request);
  const next =
    request.method === 'POST' ? str(form, 'stepup_next', 200) || web.unrooted(request.routeOptions.url ?? '/settings') : '/settings';
  const fields = request.method === 'POST' ? Object.entries(form).filter(([k]) => !k.startsWith('stepup_') && k !== '_csrf') : [];
  const carried = fields.filter(([k]) => !isSecretField(k));
  // Remembered across a wrong factor (the prompt's own post no longer holds the passwords).
  const dropped = fields.length > carried.length || (request.method === 'POST' && str(form, 'stepup_dropped', 1) === '1');
  const hidden = html`${csrfField(web.tokens.of(session))}<input
      type="hidden"
      name="stepup_next"
      value="${next}"
    />${dropped ? html`<input type="hidden" name="stepup_dropped" value="1" />` : null}${carried.flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).filter((x) => typeof x === 'string').map((x) => html`<input type="hidden" name="${k}" value="${x}" />`),
    )}`;
  const what = isSensitiveAction(next) ? SENSITIVE_ACTIONS[next] : 'continue';
  return send(web, reply, error ? 401 : 403, {
    title: 'Confirm it’s you',
    user: userOf(web, request),
    error: error?.message ?? null,
    body: html`<p>
        To ${what}, confirm with ${methods.includes('password') ? 'your password' : 'your second factor'}. This keeps someone who finds your
        session open from making changes.
      </p>
      ${dropped ? html`<p class="hint">The passwords you typed are not kept while you confirm: you will enter them again afterwards.</p>` : null}
      ${factorForms({ methods, prefix: 'stepup_', action: '/settings/step-up', hidden, passkeyOptionsUrl: '/api/auth/step-up/webauthn/options', errorMethod: error?.method ?? null, error: error?.message ?? null })}
      <p><a href="/settings">Cancel</a></p>`,
  });
}

export async function stepUpRoutes(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;

  app.post('/settings/step-up', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const form = formOf(request);
    const input = factorInput(form, 'stepup_');
    const next = str(form, 'stepup_next', 200);
    const { stepUpMaxAgeSeconds, stepUpPhishingResistant } = gatehouse.config;
    const methods = stepUpMethods(
      { factorMethods: session.factorMethods },
      { stepUpMaxAgeSeconds, phishingResistantOnly: stepUpPhishingResistant },
    );
    if (!methods.includes(input.method))
      return stepUpPrompt(web, request, reply, methods, { method: methods[0] ?? 'totp', message: 'Choose one of the ways offered.' });
    try {
      const issued =
        input.method === 'password'
          ? await gatehouse.auth.reauthenticate(session, input.password, request.ctx)
          : await gatehouse.auth.stepUp(session, input.method as CodeMethod, input.code, request.ctx, input.response);
      deliverSession(reply, cookies, issued, 'cookie');
    } catch (e) {
      if (e instanceof GatehouseError && (e.code === 'invalid_code' || e.code === 'invalid_credentials')) {
        return stepUpPrompt(web, request, reply, methods, {
          method: input.method,
          message: input.method === 'password' ? 'That password is not right.' : wrongFactor(input.method),
        });
      }
      throw e;
    }
    // Repeat the original action with the fresh session (307 keeps method and body).
    if (isSensitiveAction(next)) return reply.redirect(web.path(next), 307);
    return reply.redirect(web.path('/settings'), 303);
  });
}
