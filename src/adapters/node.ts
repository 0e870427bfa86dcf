/**
 * Gatehouse inside any Node HTTP framework (`gatehouse/node`): a request handler
 * `(req, res, next?)` that serves Gatehouse's routes and pages from an inner Fastify app
 * (its plugin, gate and error handling unchanged) and hands every other request on to
 * `next()` before anything of it was read: no body consumed, no header set. Without
 * `next` (a bare `http.createServer(handler)`), and under its prefix, other URLs get
 * Gatehouse's JSON 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyServerOptions } from 'fastify';
import { internalsOf, type Gatehouse } from '../facade.js';
import { gatehouseFastify } from '../http/plugin.js';

export interface NodeHandlerOptions {
  /** Serves Gatehouse's API and pages under this path (e.g. `/auth`, the pages' base path too). */
  prefix?: string;
  /** The server-rendered pages (sign-in, settings, …); default true. */
  pages?: boolean;
  /**
   * Which proxies' `X-Forwarded-For` to believe for the client address (limits, logs),
   * as Fastify's `trustProxy`: addresses/CIDRs, a hop count or true. Default: none.
   */
  trustProxy?: FastifyServerOptions['trustProxy'];
}

/** Express-style continuation: called for requests that are not Gatehouse's. */
export type NextFunction = (error?: unknown) => void;

export interface GatehouseNodeHandler {
  (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void;
  /** Closes the inner app (the Gatehouse instance itself is closed with `gatehouse.close()`). */
  close(): Promise<void>;
}

/** Whether a host middleware already read the request's body (it cannot be read twice). */
function bodyAlreadyRead(req: IncomingMessage): boolean {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  return hasBody && req.readableEnded;
}

/**
 * The handler for `http.createServer(handler)`, Express (`app.use(handler)`, before any
 * body parser), Koa (`ctx.req`, `ctx.res`) and the like. Resolves once the inner app is ready.
 */
export async function createNodeHandler(gatehouse: Gatehouse, options: NodeHandlerOptions = {}): Promise<GatehouseNodeHandler> {
  const inner = internalsOf(gatehouse);
  const app = Fastify({
    trustProxy: options.trustProxy ?? false,
    loggerInstance: inner.logger,
    // The host logs its requests; Gatehouse logs what it decides.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const nextOf = new WeakMap<IncomingMessage, NextFunction>();
  // Under a prefix Gatehouse owns every path below it (unknown ones get its JSON 404).
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const owned = (url: string) => prefix !== '' && (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`));

  // First of all hooks, before any body is parsed: a URL that is not one of Gatehouse's
  // routes goes back to the host untouched.
  app.addHook('onRequest', (request, reply, done) => {
    const next = nextOf.get(request.raw);
    if (request.is404 && next && !owned(request.url)) {
      reply.hijack();
      next();
      return;
    }
    if (bodyAlreadyRead(request.raw)) {
      done(new Error("the request body was read before Gatehouse's handler: mount the handler before any body parser"));
      return;
    }
    done();
  });
  await app.register(gatehouseFastify, {
    gatehouse,
    prefix: options.prefix,
    pages: options.pages,
    notFound: true,
    behindProxy: Boolean(options.trustProxy),
  });
  await app.ready();

  const handler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    if (next) nextOf.set(req, next);
    app.routing(req, res);
  };
  return Object.assign(handler, { close: () => app.close() });
}
