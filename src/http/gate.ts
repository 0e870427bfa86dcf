/**
 * The one gate. Every route declares what it requires (`requires({...})` in its config);
 * a route that declares nothing makes the server refuse to start. On every request the
 * gate resolves who is asking (one indexed read), applies the requirement, then the CSRF
 * rule, in the contract's order: authentication, CSRF, freshness.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CsrfError, ServiceUnavailableError, TooManyAttemptsError, type GatehouseError } from '../core/errors.js';
import { authorize, type FreshnessPolicy, type Principal, type SessionRequirement } from '../core/requirements.js';
import type { Scope } from '../core/scopes.js';
import { needsTouch } from '../core/session-state.js';
import type { Gatehouse } from '../gatehouse.js';
import type { RequestContext } from '../services/context.js';
import type { AccountPolicyFacts } from '../services/policy.js';
import type { ActiveSession } from '../services/sessions.js';
import { cookiePolicy, type CookiePolicy } from './cookies.js';

export interface RouteRequirement {
  session: SessionRequirement;
  /** A sensitive action (★). A function decides per request, e.g. by amount. */
  fresh?: boolean | ((request: FastifyRequest) => boolean);
  /** API tokens holding this scope may call the route. */
  scope?: Scope;
  /**
   * The route authenticates its caller by other means than cookies (an OAuth token
   * endpoint: client credentials, code and PKCE) and answers CORS itself, so the
   * same-origin rule does not apply. Only for `session: 'none'` routes.
   */
  crossOrigin?: true;
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
  /** The account's roles, factors and enrolment due time, read with the token: its enrolment binds the token too. */
  account: AccountPolicyFacts;
}

/** Who is asking, as the gate resolved it. */
export type RequestPrincipal =
  | { kind: 'anonymous' }
  | { kind: 'session'; session: ActiveSession; via: 'cookie' | 'bearer' }
  | { kind: 'api_token'; token: ApiTokenPrincipal };

/**
 * What the gate reads of a request, whatever the framework (Fastify here, Express and
 * plain Node in `src/adapters/`): one decision for all of them.
 */
export interface GateRequest {
  readonly id: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly cookies: Readonly<Record<string, string | undefined>>;
  readonly ctx: RequestContext;
  /** The route's pattern (for logs, and the routes on which remember-me must not restore). */
  readonly routeUrl: string | undefined;
}

/** What the gate may write back: cookies (a remember-me restore sets them, a stale one is cleared). */
export interface CookieWriter {
  setCookie(name: string, value: string, options: CookieSerializeOptions): unknown;
  clearCookie(name: string, options: CookieSerializeOptions): unknown;
}

/** Extension points later features plug into (API tokens, remember-me). */
export interface GateExtensions {
  /** Resolves `Authorization: Bearer <token>` values that are personal API tokens. */
  apiTokens?: { prefix: string; resolve(token: string, now: number): Promise<ApiTokenPrincipal | null> };
  /** Restores a session when no valid session came with the request (remember-me). */
  restoreSession?: (request: GateRequest, reply: CookieWriter) => Promise<ActiveSession | null>;
  /**
   * Looks at the other credentials a cookie session's request carries (remember-me), as
   * often as the session is touched; false when that ended the session.
   */
  screenSession?: (request: GateRequest, reply: CookieWriter, session: ActiveSession) => Promise<boolean>;
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
const ANONYMOUS: RequestPrincipal = Object.freeze({ kind: 'anonymous' });

export interface GateOptions {
  gatehouse: Gatehouse;
  extensions: GateExtensions;
  /** The route config flag of Gatehouse's own routes: their refusals go to their error handlers. */
  ownRoute: string;
}

export function bearerToken(headers: IncomingHttpHeaders): string | null {
  const header = headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  return match?.[1] ?? null;
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
      return [
        { kind: 'api_token', scopes: principal.token.scopes, enrolmentDue: gatehouse.policy.enrolmentDue(principal.token.account, now) },
        deployment,
      ];
    case 'session': {
      const view = gatehouse.policy.gateView(principal.session, now);
      return [{ kind: 'session', session: principal.session.facts, account: view.account }, view.freshness];
    }
  }
}

/** The request context every use case gets: client address, user agent (bounded), the clock read once. */
export function requestContext(ip: string, userAgent: string | string[] | undefined, now: number): RequestContext {
  return { ip, userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 512) : '', now };
}

/**
 * The gate's decision, framework-neutral: who is asking (`principalOf`), whether they may
 * (`refusal`: authentication, then CSRF, then freshness, the contract's order), and the
 * session touch after admission. The Fastify hooks below and the Express middleware
 * (`src/adapters/express.ts`) are thin callers of these three.
 */
export class Gatekeeper {
  readonly cookies: CookiePolicy;
  private readonly policy: FreshnessPolicy;

  constructor(
    private readonly gatehouse: Gatehouse,
    private readonly extensions: GateExtensions,
  ) {
    this.cookies = cookiePolicy(gatehouse.config.publicUrl);
    this.policy = {
      stepUpMaxAgeSeconds: gatehouse.config.stepUpMaxAgeSeconds,
      phishingResistantOnly: gatehouse.config.stepUpPhishingResistant,
    };
  }

  /** Refuses requirements no request could meet: a scope the options do not declare. */
  checkDeclaration(requirement: { session: SessionRequirement; scope?: Scope }, where: string): void {
    if (!SESSION_REQUIREMENTS.includes(requirement.session)) {
      throw new Error(`${where} names session "${String(requirement.session)}" (one of ${SESSION_REQUIREMENTS.join(', ')})`);
    }
    if (requirement.scope !== undefined && !this.gatehouse.config.scopes.includes(requirement.scope)) {
      throw new Error(`${where} names scope "${requirement.scope}", which is not declared in the options' scopes`);
    }
  }

  /**
   * Public routes never look a session up (and never restore one from remember-me).
   * Routes that take any session or none (sign-out) never restore one either: a
   * remember-me cookie must not conjure a session at the moment the user leaves.
   */
  async principalOf(session: SessionRequirement, request: GateRequest, reply: CookieWriter): Promise<RequestPrincipal> {
    if (session === 'none') return { kind: 'anonymous' };
    const { gatehouse, extensions } = this;
    const restore = session !== 'any';
    const now = request.ctx.now;
    const bearer = bearerToken(request.headers);
    if (bearer) {
      if (extensions.apiTokens && bearer.startsWith(extensions.apiTokens.prefix)) {
        const token = await extensions.apiTokens.resolve(bearer, now);
        return token ? { kind: 'api_token', token } : { kind: 'anonymous' };
      }
      const found = await gatehouse.sessions.resolve(bearer, 'token', now);
      return found ? { kind: 'session', session: found, via: 'bearer' } : { kind: 'anonymous' };
    }
    const cookie = request.cookies[this.cookies.names.session];
    const found = cookie ? await gatehouse.sessions.resolve(cookie, 'cookie', now) : null;
    if (found) {
      // At most once per touch interval, so a live session costs no extra read per request.
      const screen = extensions.screenSession && needsTouch(found.facts, now, gatehouse.sessions.times.sessionIdleTtlSeconds);
      if (screen && !(await extensions.screenSession!(request, reply, found))) return { kind: 'anonymous' };
      return { kind: 'session', session: found, via: 'cookie' };
    }
    const restored = restore && extensions.restoreSession ? await extensions.restoreSession(request, reply) : null;
    return restored ? { kind: 'session', session: restored, via: 'cookie' } : { kind: 'anonymous' };
  }

  /** The refusal to answer with, or null: authentication, CSRF, then freshness (when `fresh`). */
  refusal(
    requirement: { session: SessionRequirement; scope?: Scope; role?: string; crossOrigin?: true },
    fresh: boolean,
    principal: RequestPrincipal,
    request: GateRequest,
  ): GatehouseError | null {
    const now = request.ctx.now;
    const { session, scope, role } = requirement;
    // The deployment's freshness window, shortened (never lengthened) by roles and risk.
    const [core, freshness] = toCorePrincipal(principal, this.gatehouse, now, this.policy);
    // crossOrigin lifts only the same-origin rule, and only for routes open to anyone.
    const sameOriginApplies = !(requirement.crossOrigin && session === 'none');
    return (
      authorize({ session, scope, role, fresh: false }, core, now, freshness) ??
      (sameOriginApplies ? this.csrfViolation(request, principal) : null) ??
      (fresh ? authorize({ session, scope, role, fresh: true }, core, now, freshness) : null)
    );
  }

  /** After admission: the session's idle clock moves (at most once per touch interval). */
  async admitted(principal: RequestPrincipal, now: number): Promise<void> {
    if (principal.kind === 'session') await this.gatehouse.sessions.touchIfStale(principal.session, now);
  }

  /** Development: the port the host listens on, when no listen hook told us (Node handler, Express). */
  noticeLocalPort(port: number | undefined): void {
    if (!this.gatehouse.origins.knowsPort) this.gatehouse.origins.listening(port ?? 0);
  }

  /**
   * Cookie-borne, state-changing requests must come from our own origin. Bearer requests
   * are exempt: a browser never attaches them on its own. Every refusal is logged with the
   * origins expected and received, so a misconfigured public URL is visible.
   */
  private csrfViolation(request: GateRequest, principal: RequestPrincipal): GatehouseError | null {
    if (!STATE_CHANGING.has(request.method)) return null;
    if (principal.kind === 'api_token' || (principal.kind === 'session' && principal.via === 'bearer')) return null;
    if (principal.kind === 'anonymous' && bearerToken(request.headers)) return null;
    const { origins, logger } = this.gatehouse;
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
          url: request.routeUrl,
        },
        'refused a cross-origin request (csrf)',
      );
      return new CsrfError();
    }
    return null;
  }
}

const SESSION_REQUIREMENTS: readonly SessionRequirement[] = ['none', 'any', 'pending', 'enrolling', 'full'];

/** A refusal on a host application's route, in any framework: the contract's JSON error, never cached. */
export function refusalOf(error: GatehouseError): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' };
  if (error instanceof TooManyAttemptsError || error instanceof ServiceUnavailableError) headers['retry-after'] = String(error.retryAfter);
  return { status: error.status, headers, body: JSON.stringify(error.toJSON()) };
}

/** A refusal on a host application's Fastify route, whatever the host's error handler does. */
export function sendRefusal(reply: FastifyReply, error: GatehouseError): FastifyReply {
  const refusal = refusalOf(error);
  return reply.status(refusal.status).headers(refusal.headers).send(refusal.body);
}

/** The gate's view of a Fastify request (`routeUrl`: Fastify builds `routeOptions` anew on every read). */
function gateRequestOf(request: FastifyRequest, routeUrl: string | undefined): GateRequest {
  return {
    id: request.id,
    method: request.method,
    headers: request.headers,
    cookies: request.cookies,
    ctx: request.ctx,
    routeUrl,
  };
}

async function gatePlugin(app: FastifyInstance, options: GateOptions): Promise<void> {
  const { gatehouse } = options;
  const gatekeeper = new Gatekeeper(gatehouse, options.extensions);

  app.decorateRequest('principal', null as never);
  app.decorateRequest('ctx', null as never);

  app.addHook('onRoute', (route) => {
    const requirement = route.config?.requires;
    if (!requirement) {
      throw new Error(`Route ${String(route.method)} ${route.url} declares no requirement: add config: requires({ session: ... })`);
    }
    gatekeeper.checkDeclaration(requirement, `Route ${String(route.method)} ${route.url}`);
  });

  // Callback hooks where nothing is awaited: an async hook costs a promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    request.ctx = requestContext(request.ip, request.headers['user-agent'], gatehouse.config.now());
    request.principal = ANONYMOUS;
    gatekeeper.noticeLocalPort(request.socket.localPort);
    done();
  });

  // After the body is parsed (size and JSON syntax come first), before it is validated.
  app.addHook('preValidation', async (request, reply) => {
    if (request.is404) return; // the not-found handler has no route to guard
    const route = request.routeOptions;
    const requirement = route.config.requires;
    // Unreachable while onRoute refuses undeclared routes; fail closed all the same.
    if (!requirement) throw new Error('route without requirement');
    const view = gateRequestOf(request, route.url);
    const principal = await gatekeeper.principalOf(requirement.session, view, reply);
    request.principal = principal;
    const fresh = typeof requirement.fresh === 'function' ? requirement.fresh(request) : requirement.fresh === true;
    const denied = gatekeeper.refusal(requirement, fresh, principal, view);
    if (denied) {
      if (route.config[options.ownRoute as 'requires']) throw denied;
      return sendRefusal(reply, denied);
    }
    await gatekeeper.admitted(principal, request.ctx.now);
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
  return userIdOfPrincipal(request.principal);
}

/** The account behind a resolved principal (session or API token). */
export function userIdOfPrincipal(p: RequestPrincipal): string {
  if (p.kind === 'session') return p.session.userId;
  if (p.kind === 'api_token') return p.token.userId;
  throw new Error('route requires a principal but the gate resolved none');
}
