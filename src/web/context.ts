/**
 * What every page group shares: the services, the cookie policy, the form tokens, and how
 * a page is sent. Page groups take this instead of reaching into the plugin's closure.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gatehouse } from '../gatehouse.js';
import type { CookiePolicy } from '../http/cookies.js';
import { formTokens, type FormTokens } from './form-token.js';
import { page, type Shell } from './views.js';

export interface Web {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
  tokens: FormTokens;
}

export const webContext = (gatehouse: Gatehouse, cookies: CookiePolicy): Web => ({
  gatehouse,
  cookies,
  tokens: formTokens(gatehouse.keys.hasher),
});

export const send = (reply: FastifyReply, status: number, shell: Shell) =>
  reply.status(status).type('text/html; charset=utf-8').send(page(shell));

/** The request's cookie session, if the gate resolved one (public routes never do). */
export const sessionOrNull = (request: FastifyRequest) => (request.principal.kind === 'session' ? request.principal.session : null);

/** The header's signed-in user (with the sign-out form's token): full sessions only. */
export function userOf(web: Web, request: FastifyRequest): Shell['user'] {
  const s = sessionOrNull(request);
  return s && s.facts.state === 'full' ? { email: s.email, csrf: web.tokens.of(s) } : null;
}
