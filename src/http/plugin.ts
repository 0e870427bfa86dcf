/**
 * The Gatehouse Fastify plugin. Two layers:
 * - at the host's level (fastify-plugin): cookie parsing, the gate's hooks and its
 *   "every route declares a requirement" check, so the gate also guards every route the
 *   host registers after it, and a host route without a requirement stops startup;
 * - encapsulated: Gatehouse's own routes and pages with their CSP, `Cache-Control:
 *   no-store`, JSON body parser and error/404 handlers, none of which touch host routes.
 */
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createRequire } from 'node:module';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidRequestError, TooManyAttemptsError } from '../core/errors.js';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../core/json-limits.js';
import { internalsOf, type Gatehouse as GatehouseFacade } from '../facade.js';
import type { Gatehouse } from '../gatehouse.js';
import { cookiePolicy, type CookiePolicy } from './cookies.js';
import { gateExtensionsOf } from './credentials.js';
import { installErrorHandling } from './errors.js';
import { gate } from './gate.js';
import { accountRoutes } from './routes/account.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { deviceRoutes } from './routes/devices.js';
import { healthRoutes } from './routes/health.js';
import { mfaRoutes } from './routes/mfa.js';
import { passwordRoutes } from './routes/password.js';
import { emailRoutes } from './routes/email.js';
import { passwordResetRoutes } from './routes/password-reset.js';
import { tokenRoutes } from './routes/tokens.js';
import { webauthnRoutes } from './routes/webauthn.js';
import { openapiRoutes, RouteCatalogue } from './routes/openapi.js';
import { webPages } from '../web/plugin.js';
import { oidcRoutes } from '../oidc/plugin.js';
import { upstreamRoutes } from './routes/upstreams.js';

export interface GatehousePluginOptions {
  gatehouse: GatehouseFacade;
  /**
   * Mounts Gatehouse's routes under this prefix (e.g. `/auth`); default none. The pages,
   * their assets, redirects and mailed links then live under it too (`/auth/sign-in`).
   */
  prefix?: string;
  /** The server-rendered pages (sign-in, settings, …), under `prefix`; default true. */
  pages?: boolean;
  /**
   * Answer unknown URLs with Gatehouse's JSON 404. Default: only under a prefix (the
   * host owns its 404s); the ready-to-run server turns it on.
   */
  notFound?: boolean;
  /**
   * Where Gatehouse's CSP and security headers, `no-store`, JSON body parser and JSON
   * error handler apply: only its own routes (default), or the whole app (the ready-to-run
   * server, whose other routes are the demo bank's and follow the contract too).
   */
  conventions?: 'own-routes' | 'whole-app';
  /** Set when the host's Fastify `trustProxy` is on: the OpenID Provider then trusts X-Forwarded-* too. */
  behindProxy?: boolean;
}

/** Marks the routes registered in Gatehouse's own context (the gate throws to their error handlers). */
const OWN_ROUTE = 'gatehouseOwnRoute';

declare module 'fastify' {
  interface FastifyContextConfig {
    [OWN_ROUTE]?: boolean;
  }
}

async function gatehousePlugin(app: FastifyInstance, options: GatehousePluginOptions): Promise<void> {
  const gatehouse = internalsOf(options.gatehouse);
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  if (prefix !== '' && !/^\/[A-Za-z0-9._~/-]+$/.test(prefix)) throw new Error(`gatehouseFastify: invalid prefix "${options.prefix}"`);
  const pages = options.pages ?? true;
  // Redirects, links and mailed links to a page are rooted at the prefix (one base per Gatehouse).
  if (pages) gatehouse.origins.mountPages(prefix);
  const cookies = cookiePolicy(gatehouse.config.publicUrl);
  const extensions = gateExtensionsOf(gatehouse, cookies);

  // In development the public origin follows the port the host really listens on.
  app.addHook('onListen', async function () {
    const bound = this.server.address();
    if (typeof bound === 'object' && bound)
      gatehouse.origins.listening(
        bound.port,
        this.addresses().map((a) => (typeof a === 'string' ? a : a.address)),
      );
  });
  const notFound = options.notFound ?? prefix !== '';
  const wholeApp = options.conventions === 'whole-app';
  if (wholeApp) await httpConventions(app, gatehouse, cookies, notFound);
  await app.register(cookie);
  await app.register(gate, { gatehouse, extensions, ownRoute: OWN_ROUTE });
  await app.register(ownRoutes, {
    gatehouse,
    cookies,
    pages,
    notFound,
    conventions: !wholeApp,
    prefix,
    behindProxy: options.behindProxy ?? false,
  });
}

async function ownRoutes(
  app: FastifyInstance,
  options: {
    gatehouse: Gatehouse;
    cookies: CookiePolicy;
    pages: boolean;
    notFound: boolean;
    conventions: boolean;
    behindProxy: boolean;
    prefix: string;
  },
): Promise<void> {
  const { gatehouse, cookies, pages } = options;
  const catalogue = new RouteCatalogue();
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, [OWN_ROUTE]: true };
    catalogue.add(route);
  });
  if (options.conventions) await httpConventions(app, gatehouse, cookies, options.notFound);
  await app.register(healthRoutes, { gatehouse });
  await app.register(openapiRoutes, { gatehouse, cookies, catalogue, prefix: options.prefix, version: packageVersion() });
  await app.register(authRoutes, { gatehouse, cookies });
  await app.register(mfaRoutes, { gatehouse, cookies });
  await app.register(webauthnRoutes, { gatehouse, cookies });
  // The pages: an encapsulated plugin with its own form parser and HTML errors.
  if (pages) await app.register(webPages, { gatehouse, cookies, base: options.prefix });
  await app.register(accountRoutes, { gatehouse });
  await app.register(deviceRoutes, { gatehouse });
  await app.register(passwordRoutes, { gatehouse });
  await app.register(tokenRoutes, { gatehouse });
  await app.register(emailRoutes, { gatehouse });
  await app.register(passwordResetRoutes, { gatehouse });
  await app.register(upstreamRoutes, { gatehouse });
  await app.register(adminRoutes, { gatehouse, cookies });
  // The OpenID Provider: /oidc/*, /.well-known/openid-configuration (encapsulated). Its
  // issuer and interaction pages live at the root; under a prefix it would answer with
  // wrong URLs, so it is not mounted there at all (fail closed, said once at start).
  if (options.prefix) gatehouse.logger.info({ prefix: options.prefix }, 'OpenID Provider not mounted: it runs only at the root');
  else await app.register(oidcRoutes, { gatehouse, cookies, behindProxy: options.behindProxy });
}

/** src/http/plugin.ts and dist/http/plugin.js both sit two folders below package.json. */
const packageVersion = (): string => (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Security headers, `no-store`, the JSON body parser and JSON errors, on the context `app`. */
async function httpConventions(app: FastifyInstance, gatehouse: Gatehouse, cookies: CookiePolicy, notFound: boolean): Promise<void> {
  installErrorHandling(app, { notFound });
  // JSON only. Prototype-poisoning keys are refused; an empty body is "no body" (clients
  // often send the JSON content type on body-less POSTs). Nesting is limited before the
  // text is parsed (core/json-limits.ts); bodies refused as too deep are counted per
  // client address, and a flood of them is answered 429 (no client of ours sends one).
  const json = app.getDefaultJsonParser('error', 'error');
  const parseJson = (request: FastifyRequest, text: string) =>
    new Promise<unknown>((resolve, reject) => json(request, text, (err, value) => (err ? reject(err) : resolve(value))));
  const countBadBody = async (request: FastifyRequest) => {
    const allowed = await gatehouse.limits.badBodiesPerAddress.reserve(request.ip);
    if (!allowed.allowed)
      throw new TooManyAttemptsError(allowed.retryAfterSeconds, 'Too many malformed requests from this address. Try again later.');
  };
  app.removeContentTypeParser('application/json');
  // JSON only: a text/plain body is what a cross-site HTML form can send without a
  // preflight, so the API refuses it instead of ignoring it (an empty one is no body at
  // all); the pages and the OpenID Provider register their own parsers in their own scopes.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, async (_request: FastifyRequest, body: string | Buffer) => {
    if (body.length === 0) return undefined;
    throw new InvalidRequestError('Send a JSON body with Content-Type: application/json.');
  });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, async (request: FastifyRequest, body: string | Buffer) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return undefined;
    if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
      await countBadBody(request);
      throw new InvalidRequestError(`The request body is nested too deeply (at most ${MAX_JSON_DEPTH} levels of arrays and objects).`);
    }
    return parseJson(request, text);
  });
  const headers = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
    },
    hsts: cookies.secure,
  });
  // On the raw response, as helmet itself does: hijacked replies (the OpenID Provider) get them too.
  app.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Authentication responses must never be cached by browsers or proxies.
    reply.header('Cache-Control', 'no-store');
    done(null, payload);
  });
}

/**
 * The headers helmet sets for `options`, worked out once: they depend on nothing in the
 * request, and helmet rebuilds them (the CSP string above all) on every call.
 */
export function securityHeaders(options: HelmetOptions): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

export const gatehouseFastify = fp(gatehousePlugin, { name: 'gatehouse', fastify: '5.x' });
