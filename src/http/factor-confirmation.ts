/**
 * The HTTP side of a confirmed factor (TOTP confirm, passkey registration, API and pages):
 * when the account's first factor made the session full, the new session token goes out,
 * and a login that asked to be remembered gets its remember-me cookie now. An additional
 * factor changes no session: nothing to deliver.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gatehouse } from '../gatehouse.js';
import type { ConfirmedFactor } from '../services/factor-changes.js';
import type { ActiveSession } from '../services/sessions.js';
import type { CookiePolicy } from './cookies.js';
import { issueRememberMeIfAsked } from './credentials.js';
import { deliverSession } from './session-delivery.js';

export async function deliverConfirmedFactor(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
  session: ActiveSession,
  result: ConfirmedFactor,
): Promise<{ sessionToken?: string }> {
  if (!result.session) return {};
  const token = deliverSession(reply, cookies, result.session, session.transport);
  if (session.facts.state === 'enrolling') {
    await issueRememberMeIfAsked(request, reply, gatehouse, cookies, {
      userId: session.userId,
      sessionId: session.id,
      remember: session.remember,
      transport: session.transport,
    });
  }
  return token;
}
