/** How a (new) session token reaches the client: used by the API routes and the pages. */
import type { FastifyReply } from 'fastify';
import type { IssuedSession, SessionTransport } from '../services/sessions.js';
import { cookieOptions, type CookiePolicy } from './cookies.js';

/**
 * Hands a (new) session token to the client over the transport the session uses: a
 * cookie, or `sessionToken` in the body for native clients.
 */
export function deliverSession(
  reply: FastifyReply,
  cookies: CookiePolicy,
  session: IssuedSession,
  transport: SessionTransport,
): { sessionToken?: string } {
  if (transport === 'token') return { sessionToken: session.token };
  reply.setCookie(cookies.names.session, session.token, cookieOptions(cookies));
  return {};
}
