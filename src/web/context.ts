/**
 * What every page group shares: the services, the cookie policy, the form tokens, and how
 * a page is sent. Page groups take this instead of reaching into the plugin's closure.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gatehouse } from '../gatehouse.js';
import type { CookiePolicy } from '../http/cookies.js';
import { formTokens, type FormTokens } from './form-token.js';
import { page, rootedAt, type Shell } from './views.js';

export interface Web {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
  tokens: FormTokens;
  /** The pages' base path: '' at the root, else the prefix (e.g. `/auth`). */
  base: string;
  /**
   * A root-relative path of Gatehouse (`/settings`, `/api/...`) as the browser must see it:
   * under the base. Every redirect goes through it; rendered pages are rooted by `send`.
   */
  path(rootRelative: string): string;
  /** The inverse for a path the browser sent (e.g. a route's URL): without the base. */
  unrooted(path: string): string;
}

export function webContext(gatehouse: Gatehouse, cookies: CookiePolicy, base = ''): Web {
  return {
    gatehouse,
    cookies,
    tokens: formTokens(gatehouse.keys.hasher),
    base,
    path: (rootRelative) => base + rootRelative,
    unrooted: (path) => (base !== '' && path.startsWith(`${base}/`) ? path.slice(base.length) : path === base && base !== '' ? '/' : path),
  };
}

/** Sends a page; its root-relative links, form actions and asset URLs are rooted at the base. */
export const send = (web: Web, reply: FastifyReply, status: number, shell: Shell) =>
  reply
    .status(status)
    .type('text/html; charset=utf-8')
    .send(rootedAt(web.base, page(shell, web.gatehouse.config.productName)));

/** The request's cookie session, if the gate resolved one (public routes never do). */
export const sessionOrNull = (request: FastifyRequest) => (request.principal.kind === 'session' ? request.principal.session : null);

/** The header's signed-in user (with the sign-out form's token): full sessions only. */
export function userOf(web: Web, request: FastifyRequest): Shell['user'] {
  const s = sessionOrNull(request);
  return s && s.facts.state === 'full' ? { email: s.email, csrf: web.tokens.of(s) } : null;
}
