/**
 * The security settings page and its list actions: signing out a session, forgetting a
 * trusted device, creating and revoking API tokens. (Factor actions: pages/factors.ts;
 * e-mail address and password: pages/account.ts.)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../../core/errors.js';
import { clearCookie } from '../../http/cookies.js';
import { endBrowserSignIns } from '../../http/credentials.js';
import { requires, sessionOf } from '../../http/gate.js';
import type { AccountFormState } from '../account-view.js';
import { send, userOf, type Web } from '../context.js';
import { formOf, list, str } from '../form.js';
import { html } from '../html.js';
import { noticeOf } from '../notices.js';
import { settingsView } from '../settings-view.js';

export async function settingsPage(
  web: Web,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: { notice?: string | null; error?: string | null; account?: AccountFormState },
) {
  const { factors, webauthn, sessions, log, apiTokens, trustedDevices, policy, federation } = web.gatehouse;
  const session = sessionOf(request);
  const csrf = web.tokens.of(session);
  const now = request.ctx.now;
  const [mfa, passkeys, sessionRows, events, tokens, devices, linked] = await Promise.all([
    factors.list(session, now),
    webauthn.list(session.userId),
    sessions.list(session.userId, now),
    log.list(session.userId, 15),
    apiTokens.list(session.userId),
    trustedDevices.enabled ? trustedDevices.list(session.userId, now) : Promise.resolve(null),
    federation.linkedTo(session.userId),
  ]);
  const body = settingsView({
    scopes: apiTokens.scopes,
    sessionId: session.id,
    csrf,
    email: session.email,
    account: message.account ?? {},
    mfa,
    passkeys,
    sessions: sessionRows,
    events,
    tokens,
    devices,
    upstreams: { linked, offered: federation.list() },
    policy: {
      ...policy.policyOf(session.roles),
      roles: session.roles,
      dueAt: session.mfaDueAt,
      enrolled: policy.gateView(session, now).account.enrolmentDue !== true && session.factorMethods.length > 0,
    },
  });
  return send(web, reply, status, {
    title: 'Security settings',
    user: { email: session.email, csrf },
    notice: message.notice ?? null,
    error: message.error ?? null,
    body,
  });
}

/** Refusals that are the gate's or the error handler's business, not the settings page's. */
const NOT_FOR_SETTINGS = ['step_up_required', 'csrf', 'unauthenticated', 'mfa_required'];

/** Runs a settings action; a refusal the user can fix re-renders the settings page. */
export async function settingsAction(web: Web, request: FastifyRequest, reply: FastifyReply, action: () => Promise<unknown>) {
  try {
    return await action();
  } catch (e) {
    if (e instanceof GatehouseError && e.status < 429 && !NOT_FOR_SETTINGS.includes(e.code))
      return settingsPage(web, request, reply, e.status, { error: e.message });
    throw e;
  }
}

export async function settingsPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;

  app.get('/settings', { config: requires({ session: 'full' }) }, async (request, reply) =>
    settingsPage(web, request, reply, 200, { notice: noticeOf(request) }),
  );

  app.post('/settings/sessions/revoke', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const session = sessionOf(request);
    const id = str(formOf(request), 'sessionId', 64);
    if (!(await gatehouse.sessions.revokeForUser(session, id, request.ctx.now)))
      return settingsPage(web, request, reply, 404, { error: 'No such session.' });
    await gatehouse.log.record('session.revoked', session.userId, request.ctx, { sessionId: id });
    if (id === session.id) {
      await endBrowserSignIns(request, reply, gatehouse, cookies, session);
      clearCookie(reply, cookies, cookies.names.session);
      return reply.redirect(web.path('/sign-in?notice=signed_out'), 303);
    }
    return reply.redirect(web.path('/settings?notice=session_revoked'), 303);
  });

  app.post('/settings/devices/revoke', { config: requires({ session: 'full' }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      await gatehouse.trustedDevices.revoke(sessionOf(request).userId, str(formOf(request), 'deviceId', 64), request.ctx);
      return reply.redirect(web.path('/settings?notice=device_revoked'), 303);
    }),
  );

  app.post('/settings/tokens', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      const form = formOf(request);
      const name = str(form, 'name', 100).trim();
      if (!name) return settingsPage(web, request, reply, 400, { error: 'Give the token a name.' });
      const created = await gatehouse.apiTokens.create(sessionOf(request), { name, scopes: list(form, 'scopes') }, request.ctx);
      return send(web, reply, 201, {
        title: 'API token created',
        user: userOf(web, request),
        body: html`<section class="card">
            <p>Copy the token now: it is shown only once.</p>
            <code class="secret" id="api-token">${created.token}</code>
            <button type="button" class="secondary" data-copy="api-token" hidden>Copy token</button>
            <p class="muted">Scopes: ${created.scopes.join(', ') || 'none'}</p>
          </section>
          <p><a class="button" href="/settings">Done</a></p>`,
      });
    }),
  );

  // ★: a stale session gets the step-up prompt in place (step-up.ts), which repeats the post.
  app.post('/settings/upstreams/unlink', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      await gatehouse.federation.unlink(sessionOf(request), str(formOf(request), 'linkId', 64), request.ctx);
      return reply.redirect(web.path('/settings?notice=upstream_unlinked'), 303);
    }),
  );

  app.post('/settings/tokens/revoke', { config: requires({ session: 'full' }) }, async (request, reply) =>
    settingsAction(web, request, reply, async () => {
      await gatehouse.apiTokens.revoke(sessionOf(request).userId, str(formOf(request), 'tokenId', 64), request.ctx);
      return reply.redirect(web.path('/settings?notice=token_revoked'), 303);
    }),
  );
}
