/**
 * Gatehouse in an Express app (`gatehouse/express`):
 * - `handler`: Gatehouse's own routes and pages (the Node handler), mounted first;
 * - `requireSession({ session, fresh, scope })`: the gate on the host's routes, the same
 *   decision as Fastify's `requires(...)` (src/http/gate.ts `Gatekeeper`): pending and
 *   enrolling sessions refused, `step_up_required` for ★ actions, the same-origin check
 *   on state-changing cookie requests, API tokens by scope;
 * - `router()`: an Express router that refuses, at registration, any route or mount whose
 *   first handler is not a `requireSession(...)` (`requireSession.none` to opt out), the
 *   "no undeclared route" guarantee of the Fastify plugin.
 */
import http, { type ServerResponse } from 'node:http';
import type { CookieSerializeOptions } from '@fastify/cookie';
import { parseCookie, stringifySetCookie } from 'cookie';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router, type RouterOptions } from 'express';
import { GatehouseError, ServiceUnavailableError } from '../core/errors.js';
import { internalsOf, sessionInfoOfPrincipal, type Gatehouse, type SessionInfo } from '../facade.js';
import { cookiePolicy } from '../http/cookies.js';
import { gateExtensionsOf } from '../http/credentials.js';
import {
  Gatekeeper,
  refusalOf,
  requestContext,
  userIdOfPrincipal,
  type CookieWriter,
  type GateRequest,
  type RequestPrincipal,
  type RouteRequirement,
} from '../http/gate.js';
import { isDependencyOutage } from '../services/dependency-outage.js';
import { createNodeHandler, type NodeHandlerOptions } from './node.js';

/** A route's requirement, as in `requires(...)`; `fresh` may decide per request (e.g. by amount). */
export interface ExpressRequirement extends Omit<RouteRequirement, 'fresh' | 'crossOrigin'> {
  fresh?: boolean | ((req: Request) => boolean);
}

/** The middleware `requireSession(...)` returns; it carries its requirement. */
export interface SessionGuard extends RequestHandler {
  readonly requirement: Readonly<ExpressRequirement>;
}

export interface RequireSession {
  (requirement: ExpressRequirement): SessionGuard;
  /** The explicit opt-out: a public route (`requireSession({ session: 'none' })`). */
  readonly none: SessionGuard;
}

export type GatehouseExpressOptions = NodeHandlerOptions;

export interface GatehouseExpress {
  /** Gatehouse's routes and pages; mount it before any body parser: `app.use(auth.handler)`. */
  readonly handler: RequestHandler;
  /** The gate for a route: put it first, `router.post('/pay', auth.requireSession({ session: 'full', fresh: true }), pay)`. */
  readonly requireSession: RequireSession;
  /** An Express router on which every route and mount must start with `requireSession(...)`. */
  router(options?: RouterOptions): Router;
  /** The session behind a request that passed a session requirement. */
  sessionOf(req: Request): SessionInfo;
  /** The account behind a request that passed a requirement (session or API token). */
  userIdOf(req: Request): string;
  /** Closes the handler's inner app (then close the Gatehouse itself). */
  close(): Promise<void>;
}

const ROUTE_METHODS = ['all', ...http.METHODS.map((m) => m.toLowerCase())];
const guards = new WeakSet<object>();
const guardedRouters = new WeakSet<object>();

function cookieWriter(res: ServerResponse): CookieWriter {
  const append = (line: string) => {
    const before = res.getHeader('set-cookie');
    const lines = before === undefined ? [] : Array.isArray(before) ? before : [String(before)];
    res.setHeader('set-cookie', [...lines, line]);
  };
  const serialize = (name: string, value: string, options: CookieSerializeOptions) => {
    const { encode: _encode, signed: _signed, ...attributes } = options;
    return stringifySetCookie({ name, value, ...attributes } as Parameters<typeof stringifySetCookie>[0]);
  };
  return {
    setCookie: (name, value, options) => append(serialize(name, value, options)),
    clearCookie: (name, options) => append(serialize(name, '', { path: '/', ...options, expires: new Date(0), maxAge: 0 })),
  };
}

/** The contract's JSON error, whatever the host's error handler does. */
function sendRefusal(res: ServerResponse, error: GatehouseError): void {
  const refusal = refusalOf(error);
  res.writeHead(refusal.status, refusal.headers).end(refusal.body);
}

/** Express's rule for `use([path], ...handlers)`: a leading non-function (or array of them) is the path. */
function handlersOfUse(args: unknown[]): unknown[] {
  let first = args[0];
  while (Array.isArray(first) && first.length > 0) first = first[0];
  return (typeof first === 'function' ? args : args.slice(1)).flat(Infinity);
}

function assertGuardFirst(what: string, handlers: unknown[]): void {
  if (!guards.has(handlers[0] as object)) {
    throw new Error(
      `${what} declares no requirement: make auth.requireSession({ session: ... }) its first handler (auth.requireSession.none for a public route)`,
    );
  }
}

/** Wraps a router's (or route's) method registrations so each must start with a guard. */
function guardMethods(target: Record<string, unknown>, describe: (method: string, args: unknown[]) => string, pathArgs: number): void {
  for (const method of ROUTE_METHODS) {
    const original = target[method];
    if (typeof original !== 'function') continue;
    target[method] = function (this: unknown, ...args: unknown[]) {
      assertGuardFirst(describe(method, args), args.slice(pathArgs).flat(Infinity));
      return original.apply(this, args);
    };
  }
}

/** Serves Gatehouse in an Express app; resolves once its routes are ready. */
export async function gatehouseExpress(gatehouse: Gatehouse, options: GatehouseExpressOptions = {}): Promise<GatehouseExpress> {
  const inner = internalsOf(gatehouse);
  const node = await createNodeHandler(gatehouse, options);
  const gatekeeper = new Gatekeeper(inner, gateExtensionsOf(inner, cookiePolicy(inner.config.publicUrl)));
  const principals = new WeakMap<Request, RequestPrincipal>();
  let requestIds = 0;

  const handler: RequestHandler = (req, res, next) => {
    // Mounted under a path, Express strips it from req.url: Gatehouse routes by the full one.
    const mounted = req.url;
    req.url = req.originalUrl;
    node(req, res, (error) => {
      req.url = mounted;
      next(error);
    });
  };

  function gateRequestOf(req: Request): GateRequest {
    const route = (req.route as { path?: unknown } | undefined)?.path;
    return {
      id: `express-${++requestIds}`,
      method: req.method,
      headers: req.headers,
      cookies: typeof req.headers.cookie === 'string' ? parseCookie(req.headers.cookie) : {},
      ctx: requestContext(req.ip ?? req.socket.remoteAddress ?? '', req.headers['user-agent'], inner.config.now()),
      routeUrl: typeof route === 'string' ? route : req.originalUrl.split('?')[0],
    };
  }

  const requireSession = ((requirement: ExpressRequirement): SessionGuard => {
    gatekeeper.checkDeclaration(requirement, 'requireSession(...)');
    const declared = Object.freeze({ ...requirement });
    const { session, scope, role } = declared;
    const guard = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        gatekeeper.noticeLocalPort(req.socket.localPort);
        const view = gateRequestOf(req);
        const principal = await gatekeeper.principalOf(session, view, cookieWriter(res));
        principals.set(req, principal);
        const fresh = typeof declared.fresh === 'function' ? declared.fresh(req) : declared.fresh === true;
        const denied = gatekeeper.refusal({ session, scope, role }, fresh, principal, view);
        if (denied) return sendRefusal(res, denied);
        await gatekeeper.admitted(principal, view.ctx.now);
      } catch (error) {
        if (error instanceof GatehouseError) return sendRefusal(res, error);
        // A database or Redis outage: nothing was decided; the client may retry shortly.
        if (isDependencyOutage(error)) return sendRefusal(res, new ServiceUnavailableError());
        return next(error);
      }
      next();
    };
    guards.add(guard);
    return Object.assign(guard, { requirement: declared });
  }) as RequireSession;
  Object.defineProperty(requireSession, 'none', { value: requireSession({ session: 'none' }), enumerable: true });

  function router(routerOptions?: RouterOptions): Router {
    const guarded = express.Router(routerOptions);
    const methods = guarded as unknown as Record<string, unknown>;
    guardMethods(methods, (method, args) => `Route ${method.toUpperCase()} ${String(args[0])}`, 1);
    const use = guarded.use;
    methods.use = function (this: unknown, ...args: unknown[]) {
      const handlers = handlersOfUse(args);
      // A guard first gates everything mounted after it; guarded routers guard themselves;
      // error handlers (four parameters) only ever see requests that failed.
      const safe =
        guards.has(handlers[0] as object) ||
        handlers.every((h) => guardedRouters.has(h as object) || (typeof h === 'function' && h.length === 4));
      if (!safe) assertGuardFirst(`router.use(${typeof args[0] === 'string' ? JSON.stringify(args[0]) : '...'})`, handlers);
      return (use as (...a: unknown[]) => unknown).apply(this, args);
    };
    const route = guarded.route;
    methods.route = function (this: unknown, path: string) {
      const created = (route as (p: string) => unknown).call(this, path) as Record<string, unknown>;
      guardMethods(created, (method) => `Route ${method.toUpperCase()} ${path}`, 0);
      return created;
    };
    guardedRouters.add(guarded);
    return guarded;
  }

  function principalOf(req: Request): RequestPrincipal {
    const principal = principals.get(req);
    if (!principal) throw new Error('this route has no requireSession(...) in front of it');
    return principal;
  }

  return Object.freeze({
    handler,
    requireSession,
    router,
    sessionOf: (req: Request) => sessionInfoOfPrincipal(principalOf(req)),
    userIdOf: (req: Request) => userIdOfPrincipal(principalOf(req)),
    close: () => node.close(),
  });
}
