/**
 * The HTTP side of remember-me and trusted devices: their cookies, issuing them when a
 * session becomes full, restoring a session from a remember-me cookie (the gate's
 * `restoreSession` extension) and ending the chain at logout.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gatehouse } from '../gatehouse.js';
import type { ActiveSession, SessionTransport } from '../services/sessions.js';
import { clearCookie, cookieOptions, type CookiePolicy } from './cookies.js';
import { bearerToken, type CookieWriter, type GateExtensions, type GateRequest } from './gate.js';

function secondsUntil(expiresAt: number, now: number): number {
  return Math.max(1, Math.floor((expiresAt - now) / 1000));
}

/** Routes on which a remember-me cookie must not conjure a session. */
const NO_RESTORE = new Set(['/api/auth/logout']);

/**
 * Login and sign-up: the remember-me cookie the browser presents is screened before
 * anything else (a stale one is theft evidence, whatever account it belongs to and
 * whether or not the password is right). A cookie that cannot restore is cleared; a live
 * one stays until a new chain replaces it.
 */
export async function screenRememberMe(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
): Promise<void> {
  const presented = request.cookies[cookies.names.remember];
  if (presented === undefined) return;
  const found = await gatehouse.rememberMe.screen(presented, request.ctx);
  if (found.kind !== 'live') clearCookie(reply, cookies, cookies.names.remember);
}

/**
 * A session just became full. When it asked to be remembered (and travels in a cookie),
 * starts a remember-me chain and sets its cookie; the chain the browser held before ends
 * explicitly (or, if its token was stale, raises the alarm).
 */
export async function issueRememberMeIfAsked(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
  session: { userId: string; sessionId: string; remember: boolean; transport: SessionTransport },
): Promise<void> {
  if (!session.remember || session.transport !== 'cookie') return;
  const presented = request.cookies[cookies.names.remember];
  if (presented !== undefined) await gatehouse.rememberMe.replace(presented, request.ctx);
  const issued = await gatehouse.rememberMe.issue(session.userId, session.sessionId, request.ctx);
  if (!issued) return; // the session ended meanwhile (a concurrent logout)
  reply.setCookie(cookies.names.remember, issued.token, cookieOptions(cookies, secondsUntil(issued.expiresAt, request.ctx.now)));
}

/** `trustDevice: true` after a verified second factor; ignored while the feature is off. */
export async function trustDeviceIfAsked(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
  session: Pick<ActiveSession, 'userId' | 'risk'>,
  asked: boolean,
): Promise<void> {
  if (!asked || !gatehouse.trustedDevices.enabled) return;
  // A risk signal at this sign-in (many recent failures, a remember-me restore) refuses trust.
  if (!gatehouse.policy.mayTrustDevice(session)) return;
  const issued = await gatehouse.trustedDevices.trust(session.userId, request.ctx, request.cookies[cookies.names.device]);
  if (issued) reply.setCookie(cookies.names.device, issued.token, cookieOptions(cookies, secondsUntil(issued.expiresAt, request.ctx.now)));
}

/**
 * The session a logout ends: the gate's, or, when the presented token no longer names a
 * session, the one whose token a parallel request (a factor confirmation, a step-up)
 * replaced moments ago. Without this, a logout racing such a request answered 204 and
 * left the session live (invariant I5, docs/security.md).
 */
export async function sessionToEnd(request: FastifyRequest, gatehouse: Gatehouse, cookies: CookiePolicy): Promise<ActiveSession | null> {
  const { principal } = request;
  if (principal.kind === 'session') return principal.session;
  if (principal.kind !== 'anonymous') return null;
  const bearer = bearerToken(request.headers);
  const cookie = request.cookies[cookies.names.session];
  if (bearer) return gatehouse.sessions.resolveReplaced(bearer, 'token', request.ctx.now);
  return cookie ? gatehouse.sessions.resolveReplaced(cookie, 'cookie', request.ctx.now) : null;
}

/**
 * Sign-out of this browser, after its session ended: the remember-me chains of the session
 * and of the cookie it presents (the cookie is cleared), then what else signed the browser
 * in (`signOutHooks`: the OpenID Provider's session, whose relying parties get back-channel
 * logout). A failure propagates (503 on an outage): the client
 * may sign out again, and the hooks need only the browser's cookies to finish.
 */
export async function endBrowserSignIns(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
  session: ActiveSession | null,
): Promise<void> {
  const remember = request.cookies[cookies.names.remember];
  await gatehouse.rememberMe.logout(session?.id ?? null, remember, request.ctx);
  if (remember !== undefined) clearCookie(reply, cookies, cookies.names.remember);
  for (const hook of gatehouse.signOutHooks) await hook(request.raw, reply.raw);
}

/**
 * The gate's `screenSession`: a browser using a live session while its remember-me
 * cookie is stale (someone else rotated it: the thief restored from a copy) is caught
 * during use, not only at its next restore, login or logout. Only stale tokens count
 * here: a chain ended elsewhere (this browser changed its password and kept its
 * session) must not sign the browser out. When the alarm ended this very session (it
 * belongs to the chain), the request goes on unauthenticated.
 */
export function rememberMeScreener(gatehouse: Gatehouse, cookies: CookiePolicy): NonNullable<GateExtensions['screenSession']> {
  return async (request: GateRequest, reply: CookieWriter, session: ActiveSession): Promise<boolean> => {
    const presented = request.cookies[cookies.names.remember];
    if (presented === undefined) return true;
    const found = await gatehouse.rememberMe.screenStale(presented, request.ctx);
    if (found.kind !== 'stale') return true;
    clearCookie(reply, cookies, cookies.names.remember);
    const still = await gatehouse.sessions.resolve(request.cookies[cookies.names.session] ?? '', 'cookie', request.ctx.now);
    return still !== null && still.id === session.id;
  };
}

/**
 * The gate's `restoreSession`: a request with a remember-me cookie and no valid session
 * gets a new session through the state machine (pending for accounts with a second
 * factor, so the request itself is answered `401 mfa_required`), plus the rotated
 * remember-me cookie. An unusable token only clears its cookie.
 */
export function rememberMeRestorer(gatehouse: Gatehouse, cookies: CookiePolicy): NonNullable<GateExtensions['restoreSession']> {
  return async (request: GateRequest, reply: CookieWriter): Promise<ActiveSession | null> => {
    const { ctx } = request;
    const presented = request.cookies[cookies.names.remember];
    if (presented === undefined || NO_RESTORE.has(request.routeUrl ?? '')) return null;
    const restored = await gatehouse.rememberMe.restore(presented, ctx);
    if (!restored) {
      clearCookie(reply, cookies, cookies.names.remember);
      return null;
    }
    const { login, remember } = restored;
    reply.setCookie(cookies.names.session, login.session.token, cookieOptions(cookies));
    reply.setCookie(cookies.names.remember, remember.token, cookieOptions(cookies, secondsUntil(remember.expiresAt, ctx.now)));
    return gatehouse.sessions.resolve(login.session.token, 'cookie', ctx.now);
  };
}

/** The gate's extensions: personal API tokens and remember-me (one set for every framework). */
export function gateExtensionsOf(gatehouse: Gatehouse, cookies: CookiePolicy): GateExtensions {
  return {
    restoreSession: rememberMeRestorer(gatehouse, cookies),
    screenSession: rememberMeScreener(gatehouse, cookies),
    apiTokens: gatehouse.apiTokens.gateExtension(),
  };
}
