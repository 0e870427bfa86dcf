/**
 * The one gate. Every route declares what it requires (`requires({...})` in its config);
 * a route that declares nothing makes the server refuse to start. On every request the
 * gate resolves who is asking (one indexed read), applies the requirement, then the CSRF
 * rule, in the contract's order: authentication, CSRF, freshness.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CsrfError, TooManyAttemptsError, type GatehouseError } from '../core/errors.js';
import type { PublicOrigins } from '../core/origins.js';
import { authorize, type FreshnessPolicy, type Principal, type SessionRequirement } from '../core/requirements.js';
import type { Scope } from '../core/scopes.js';
import { needsTouch } from '../core/session-state.js';
import type { Gatehouse } from '../gatehouse.js';
import type { RequestContext } from '../services/context.js';
import type { ActiveSession } from '../services/sessions.js';
import { cookiePolicy, type CookiePolicy } from './cookies.js';

export interface RouteRequirement {
  session: SessionRequirement;
  /** A sensitive action (★). A function decides per request, e.g. by amount. */
  fresh?: boolean | ((request: FastifyRequest) => boolean);
  /** API tokens holding this scope may call the route. */
  scope?: Scope;
  /** Only sessions of accounts holding this role (e.g. `admin`); API tokens never. */
  role?: string;
}

/** Declares a route's requirement; pass the result as the route's `config`. */
export function requires(requirement: RouteRequirement): { requires: RouteRequirement } {
  return { requires: requirement };
}

export interface ApiTokenPrincipal {
  id: string;
  userId: string;
  scopes: Scope[];
}

/** Who is asking, as the gate resolved it. */
export type RequestPrincipal =
  | { kind: 'anonymous' }
  | { kind: 'session'; session: ActiveSession; via: 'cookie' | 'bearer' }
  | { kind: 'api_token'; token: ApiTokenPrincipal };

/** Extension points later features plug into (API tokens, remember-me). */
export interface GateExtensions {
  /** Resolves `Authorization: Bearer <token>` values that are personal API tokens. */
  apiTokens?: { prefix: string; resolve(token: string, now: number): Promise<ApiTokenPrincipal | null> };
  /** Restores a session when no valid session came with the request (remember-me). */
  restoreSession?: (request: FastifyRequest, reply: FastifyReply, ctx: RequestContext) => Promise<ActiveSession | null>;
  /**
   * Looks at the other credentials a cookie session's request carries (remember-me), as
   * often as the session is touched; false when that ended the session.
   */
  screenSession?: (request: FastifyRequest, reply: FastifyReply, session: ActiveSession) => Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    requires?: RouteRequirement;
  }
  interface FastifyRequest {
    principal: RequestPrincipal;
    ctx: RequestContext;
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface GateOptions {
  gatehouse: Gatehouse;
  extensions: GateExtensions;
  /** The route config flag of Gatehouse's own routes: their refusals go to their error handlers. */
  ownRoute: string;
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

async function resolvePrincipal(
  request: FastifyRequest,
  reply: FastifyReply,
  gatehouse: Gatehouse,
  cookies: CookiePolicy,
  extensions: GateExtensions,
  restore: boolean,
): Promise<RequestPrincipal> {
  const now = request.ctx.now;
  const bearer = bearerToken(request);
  if (bearer) {
    if (extensions.apiTokens && bearer.startsWith(extensions.apiTokens.prefix)) {
      const token = await extensions.apiTokens.resolve(bearer, now);
      return token ? { kind: 'api_token', token } : { kind: 'anonymous' };
    }
    const session = await gatehouse.sessions.resolve(bearer, 'token', now);
    return session ? { kind: 'session', session, via: 'bearer' } : { kind: 'anonymous' };
  }
  const cookie = request.cookies[cookies.names.session];
  const session = cookie ? await gatehouse.sessions.resolve(cookie, 'cookie', now) : null;
  if (session) {
    // At most once per touch interval, so a live session costs no extra read per request.
    const screen = extensions.screenSession && needsTouch(session.facts, now, gatehouse.sessions.times.sessionIdleTtlSeconds);
    if (screen && !(await extensions.screenSession!(request, reply, session))) return { kind: 'anonymous' };
    return { kind: 'session', session, via: 'cookie' };
  }
  const restored = restore && extensions.restoreSession ? await extensions.restoreSession(request, reply, request.ctx) : null;
  return restored ? { kind: 'session', session: restored, via: 'cookie' } : { kind: 'anonymous' };
}

/**
 * The core's view of the principal, and the freshness window that applies to it: the
 * deployment's, shortened by the account's roles and the session's risk signals (never
 * lengthened: services/policy.ts, core/risk.ts).
 */
function toCorePrincipal(
  principal: RequestPrincipal,
  gatehouse: Gatehouse,
  now: number,
  deployment: FreshnessPolicy,
): [Principal, FreshnessPolicy] {
  switch (principal.kind) {
    case 'anonymous':
      return [principal, deployment];
    case 'api_token':
      return [{ kind: 'api_token', scopes: principal.token.scopes }, deployment];
    case 'session': {
      const view = gatehouse.policy.gateView(principal.session, now);
      return [{ kind: 'session', session: principal.session.facts, account: view.account }, view.freshness];
    }
  }
}

/**
 * Cookie-borne, state-changing requests must come from our own origin. Bearer requests
 * are exempt: a browser never attaches them on its own. Every refusal is logged with the
 * origins expected and received, so a misconfigured public URL is visible.
 */
function csrfViolation(
  request: FastifyRequest,
  principal: RequestPrincipal,
  origins: PublicOrigins,
  logger: FastifyBaseLogger,
): GatehouseError | null {
  if (!STATE_CHANGING.has(request.method)) return null;
  if (principal.kind === 'api_token' || (principal.kind === 'session' && principal.via === 'bearer')) return null;
  if (principal.kind === 'anonymous' && bearerToken(request)) return null;
  const origin = request.headers.origin;
  const fetchSite = request.headers['sec-fetch-site'];
  if ((typeof origin === 'string' && !origins.accepts(origin)) || fetchSite === 'cross-site') {
    // Gatehouse's logger, not the request's: a host app's logger may be off.
    logger.warn(
      {
        reqId: request.id,
        expectedOrigin: origins.accepted(),
        receivedOrigin: origin ?? null,
        secFetchSite: fetchSite ?? null,
        url: request.routeOptions.url,
      },
      'refused a cross-origin request (csrf)',
    );
    return new CsrfError();
  }
  return null;
}

/** A refusal on a host application's route: the contract's JSON error, whatever the host's error handler does. */
export function sendRefusal(reply: FastifyReply, error: GatehouseError): FastifyReply {
  if (error instanceof TooManyAttemptsError) reply.header('Retry-After', String(error.retryAfter));
  return reply.status(error.status).header('cache-control', 'no-store').type('application/json; charset=utf-8').send(error.toJSON());
}

async function gatePlugin(app: FastifyInstance, options: GateOptions): Promise<void> {
  const { gatehouse, extensions } = options;
  const { origins } = gatehouse;
  const cookies = cookiePolicy(gatehouse.config.publicUrl);
  const policy = {
    stepUpMaxAgeSeconds: gatehouse.config.stepUpMaxAgeSeconds,
    phishingResistantOnly: gatehouse.config.stepUpPhishingResistant,
  };

  app.decorateRequest('principal', null as never);
  app.decorateRequest('ctx', null as never);

  app.addHook('onRoute', (route) => {
    const requirement = route.config?.requires;
    if (!requirement) {
      throw new Error(`Route ${String(route.method)} ${route.url} declares no requirement: add config: requires({ session: ... })`);
    }
    if (requirement.scope !== undefined && !gatehouse.config.scopes.includes(requirement.scope)) {
      throw new Error(
        `Route ${String(route.method)} ${route.url} names scope "${requirement.scope}", which is not declared in the options' scopes`,
      );
    }
  });

  app.addHook('onRequest', async (request) => {
    const ua = request.headers['user-agent'];
    request.ctx = { ip: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : '', now: gatehouse.config.now() };
    request.principal = { kind: 'anonymous' };
    // Development: the port the host listens on, when no listen hook told us (e.g. Node handler).
    if (!origins.knowsPort) origins.listening(request.socket.localPort ?? 0);
  });

  // After the body is parsed (size and JSON syntax come first), before it is validated.
  app.addHook('preValidation', async (request, reply) => {
    if (request.is404) return; // the not-found handler has no route to guard
    const requirement = request.routeOptions.config.requires;
    // Unreachable while onRoute refuses undeclared routes; fail closed all the same.
    if (!requirement) throw new Error('route without requirement');
    // Public routes never look a session up (and never restore one from remember-me).
    // Routes that take any session or none (sign-out) never restore one either: a
    // remember-me cookie must not conjure a session at the moment the user leaves.
    const principal: RequestPrincipal =
      requirement.session === 'none'
        ? { kind: 'anonymous' as const }
        : await resolvePrincipal(request, reply, gatehouse, cookies, extensions, requirement.session !== 'any');
    request.principal = principal;

    const fresh = typeof requirement.fresh === 'function' ? requirement.fresh(request) : requirement.fresh === true;
    const { fresh: _fresh, ...rest } = requirement;
    const [core, freshness] = toCorePrincipal(principal, gatehouse, request.ctx.now, policy);
    const denied =
      authorize({ ...rest, fresh: false }, core, request.ctx.now, freshness) ??
      csrfViolation(request, principal, origins, gatehouse.logger) ??
      (fresh ? authorize({ ...rest, fresh: true }, core, request.ctx.now, freshness) : null);
    if (denied) {
      if (request.routeOptions.config[options.ownRoute as 'requires']) throw denied;
      return sendRefusal(reply, denied);
    }

    if (principal.kind === 'session') await gatehouse.sessions.touchIfStale(principal.session, request.ctx.now);
  });
}

export const gate = fp(gatePlugin, { name: 'gatehouse-gate', fastify: '5.x' });

/**
 * The freshness of a factor confirmation (TOTP confirm, passkey registration): ★ when the
 * account already has a factor (I2). The gate answers step_up_required early (pages step
 * up in place); the service decides again under the account lock with the factors the
 * account has at that moment.
 */
export const addingFactorIsSensitive = (request: FastifyRequest): boolean =>
  request.principal.kind === 'session' && request.principal.session.factorMethods.length > 0;

/** The session behind the request; only call from routes that require one. */
export function sessionOf(request: FastifyRequest): ActiveSession {
  if (request.principal.kind !== 'session') throw new Error('route requires a session but the gate resolved none');
  return request.principal.session;
}

/** The account behind the request, whether a session or an API token. */
export function userIdOf(request: FastifyRequest): string {
  const p = request.principal;
  if (p.kind === 'session') return p.session.userId;
  if (p.kind === 'api_token') return p.token.userId;
  throw new Error('route requires a principal but the gate resolved none');
}
