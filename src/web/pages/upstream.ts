/**
 * Federated login pages (services/federation.ts): sign in with a configured upstream
 * OpenID Provider, and link an upstream identity to an account. The upstream is a first
 * factor: the session it opens goes to the second step like a password sign-in would. An
 * identity not linked yet never signs anyone in; it waits on /sign-in/upstream/link for a
 * full, fresh session of the account it names (★, the step-up prompt in place).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { clearCookie, cookieOptions } from '../../http/cookies.js';
import { requires, sessionOf } from '../../http/gate.js';
import { deliverSession } from '../../http/session-delivery.js';
import { parse } from '../../http/validation.js';
import { returnCookieName, takeOidcReturn, UPSTREAM_LINK_PATH } from '../../oidc/plugin.js';
import { FEDERATION_FLOW_TTL } from '../../services/federation.js';
import { send, sessionOrNull, userOf, type Web } from '../context.js';
import { html } from '../html.js';
import { csrfField } from '../views.js';

const NameParams = z.object({ name: z.string().regex(/^[a-z0-9-]{1,32}$/) }).strict();

export async function upstreamPages(app: FastifyInstance, web: Web): Promise<void> {
  const { gatehouse, cookies } = web;
  const { federation, sessions } = gatehouse;
  const flowCookie = `${cookies.secure ? '__Host-' : ''}gatehouse_upstream_flow`;
  const linkCookie = `${cookies.secure ? '__Host-' : ''}gatehouse_upstream_link`;
  const cookieSession = (request: FastifyRequest) =>
    request.principal.kind === 'session' && request.principal.via === 'cookie' ? request.principal.session : null;

  app.get('/sign-in/upstream/:name', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const { name } = parse(NameParams, request.params);
    const { handle, url } = await federation.start(name, request.ctx.now);
    reply.setCookie(flowCookie, handle, cookieOptions(cookies, FEDERATION_FLOW_TTL));
    return reply.redirect(url, 303);
  });

  // Any session or none: a browser signed in to a full session may link the identity to its
  // account (after confirming); the presented session is replaced by a new sign-in.
  app.get('/sign-in/upstream/:name/callback', { config: requires({ session: 'any' }) }, async (request, reply) => {
    const { name } = parse(NameParams, request.params);
    const raw = request.raw.url ?? '';
    const query = raw.includes('?') ? raw.slice(raw.indexOf('?')) : '';
    const presented = cookieSession(request);
    const handle = request.cookies[flowCookie];
    clearCookie(reply, cookies, flowCookie);
    const result = await federation.callback(name, handle, query, presented, request.ctx);
    if (result.kind === 'link_pending') {
      reply.setCookie(linkCookie, result.handle, cookieOptions(cookies, FEDERATION_FLOW_TTL));
      reply.setCookie(returnCookieName(cookies), web.path(UPSTREAM_LINK_PATH), cookieOptions(cookies, FEDERATION_FLOW_TTL));
      return reply.redirect(web.path(UPSTREAM_LINK_PATH), 303);
    }
    if (presented) await sessions.revoke(presented.id);
    const { login } = result;
    deliverSession(reply, cookies, login.session, 'cookie');
    if (login.outcome === 'authenticated')
      return reply.redirect(
        takeOidcReturn(request, reply, cookies, web.base) ?? web.path(result.created ? '/settings?notice=account_created' : '/settings'),
        303,
      );
    return reply.redirect(web.path(login.outcome === 'mfa_required' ? '/sign-in/verify' : '/enrol'), 303);
  });

  app.get(UPSTREAM_LINK_PATH, { config: requires({ session: 'any' }) }, async (request, reply) => {
    const pending = await federation.pendingLink(request.cookies[linkCookie], request.ctx.now);
    if (!pending)
      return send(web, reply, 400, {
        title: 'Link expired',
        error: 'This link request expired or was already used.',
        body: html`<p><a href="/sign-in">Sign in</a></p>`,
      });
    const who = html`your <strong>${pending.upstream}</strong> sign-in${pending.email ? html` (${pending.email})` : null}`;
    const session = sessionOrNull(request);
    if (!session || session.facts.state !== 'full') {
      reply.setCookie(returnCookieName(cookies), web.path(UPSTREAM_LINK_PATH), cookieOptions(cookies, FEDERATION_FLOW_TTL));
      return send(web, reply, 200, {
        title: 'Link your account',
        body: html`<p>No account is linked to ${who} yet.</p>
          <p>To link it, sign in to your account here first, with its password and second factor. Nothing is linked until you confirm.</p>
          <p><a href="/sign-in">Sign in to link</a></p>`,
      });
    }
    return send(web, reply, 200, {
      title: 'Link your account',
      user: userOf(web, request),
      body: html`<form class="card" method="post" action="${UPSTREAM_LINK_PATH}">
        ${csrfField(web.tokens.of(session))}
        <p>Let ${who} sign in to <strong>${session.email}</strong>? It counts as the password: your second factor is still asked.</p>
        <button type="submit">Link</button>
      </form>`,
    });
  });

  app.post(UPSTREAM_LINK_PATH, { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    await federation.confirmLink(request.cookies[linkCookie], sessionOf(request), request.ctx);
    clearCookie(reply, cookies, linkCookie);
    return reply.redirect(web.path('/settings'), 303);
  });
}
