/**
 * The Gatehouse Fastify plugin: cookies, security headers, the gate, error handling and
 * Gatehouse's own routes. It is not encapsulated, so the gate also guards every route
 * the host application registers after it.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { InvalidRequestError, TooManyAttemptsError } from '../core/errors.js';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../core/json-limits.js';
import type { Gatehouse } from '../gatehouse.js';
import { cookiePolicy } from './cookies.js';
import { rememberMeRestorer, rememberMeScreener } from './credentials.js';
import { installErrorHandling } from './errors.js';
import { gate, type GateExtensions } from './gate.js';
import { accountRoutes } from './routes/account.js';
import { authRoutes } from './routes/auth.js';
import { deviceRoutes } from './routes/devices.js';
import { healthRoutes } from './routes/health.js';
import { mfaRoutes } from './routes/mfa.js';
import { passwordRoutes } from './routes/password.js';
import { emailRoutes } from './routes/email.js';
import { passwordResetRoutes } from './routes/password-reset.js';
import { tokenRoutes } from './routes/tokens.js';
import { webauthnRoutes } from './routes/webauthn.js';
import { webPages } from '../web/plugin.js';
// OIDC provider (issue 14)
import { oidcRoutes } from '../oidc/plugin.js';

export interface GatehousePluginOptions {
  gatehouse: Gatehouse;
  extensions?: GateExtensions;
}

async function gatehousePlugin(app: FastifyInstance, { gatehouse, extensions = {} }: GatehousePluginOptions): Promise<void> {
  const cookies = cookiePolicy(gatehouse.config.publicUrl);
  installErrorHandling(app);
  // JSON only. Prototype-poisoning keys are refused; an empty body is "no body" (clients
  // often send the JSON content type on body-less POSTs). Nesting is limited before the
  // text is parsed (core/json-limits.ts); bodies refused as too deep are counted per
  // client address, and a flood of them is answered 429 (no client of ours sends one).
  const json = app.getDefaultJsonParser('error', 'error');
  const parseJson = (request: FastifyRequest, text: string) =>
    new Promise<unknown>((resolve, reject) => json(request, text, (err, value) => (err ? reject(err) : resolve(value))));
  const countBadBody = async (request: FastifyRequest) => {
    const allowed = await gatehouse.limits.badBodiesPerAddress.reserve(request.ip);
    if (!allowed.allowed) throw new TooManyAttemptsError(allowed.retryAfterSeconds, 'Too many malformed requests from this address. Try again later.');
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, async (request: FastifyRequest, body: string | Buffer) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return undefined;
    if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
      await countBadBody(request);
      throw new InvalidRequestError(`The request body is nested too deeply (at most ${MAX_JSON_DEPTH} levels of arrays and objects).`);
    }
    return parseJson(request, text);
  });
  await app.register(cookie);
  await app.register(helmet, {
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'], frameAncestors: ["'none'"], formAction: ["'self'"] } },
    hsts: cookies.secure,
  });
  app.addHook('onSend', async (_request, reply) => {
    // Authentication responses must never be cached by browsers or proxies.
    reply.header('Cache-Control', 'no-store');
  });
  await app.register(gate, { gatehouse, extensions: { restoreSession: rememberMeRestorer(gatehouse, cookies), screenSession: rememberMeScreener(gatehouse, cookies), apiTokens: gatehouse.apiTokens.gateExtension(), ...extensions } });

  await app.register(healthRoutes, { gatehouse });
  await app.register(authRoutes, { gatehouse, cookies });
  await app.register(mfaRoutes, { gatehouse, cookies });
  await app.register(webauthnRoutes, { gatehouse, cookies });
  // The pages (issue 5): an encapsulated plugin with its own form parser and HTML errors.
  await app.register(webPages, { gatehouse, cookies });
  await app.register(accountRoutes, { gatehouse });
  await app.register(deviceRoutes, { gatehouse });
  await app.register(passwordRoutes, { gatehouse });
  await app.register(tokenRoutes, { gatehouse });
  await app.register(emailRoutes, { gatehouse });
  await app.register(passwordResetRoutes, { gatehouse });
  // OIDC provider (issue 14): /oidc/*, /.well-known/openid-configuration; encapsulated.
  await app.register(oidcRoutes, { gatehouse, cookies });
}

export const gatehouseFastify = fp(gatehousePlugin, { name: 'gatehouse', fastify: '5.x' });
