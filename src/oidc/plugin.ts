/**
 * Gatehouse's OpenID Provider under /oidc (issue 14), an encapsulated Fastify plugin:
 *
 * - `/oidc/*` (and `/.well-known/openid-configuration`): handed, raw, to oidc-provider.
 *   They declare `requires({ session: 'none' })`: the provider authenticates clients and
 *   tokens itself, and every authorization passes Gatehouse's interaction below.
 * - `/oidc/interaction/:uid`: Gatehouse's own step of every authorization that needs one.
 *   It finishes the login only from a full Gatehouse session, and otherwise sends the
 *   browser to the sign-in pages, which come back here when done (return-to cookie).
 *
 * The provider is built on the first request, when the public URL (the issuer's origin)
 * is known even for servers listening on port 0.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import type { Gatehouse } from '../gatehouse.js';
import { cookieOptions, type CookiePolicy } from '../http/cookies.js';
import { requires } from '../http/gate.js';
import { constantTimeEqual } from '../services/keys.js';
import { decideInteraction, parseAcrValues } from './assurance.js';
import { ClientRegistry } from './clients.js';
import { escapeHtml, simplePage } from './pages.js';
import { createProvider, OIDC_PREFIX, OIDC_TTL } from './provider.js';
import { ResourceServers, type ResourceServer } from './resources.js';
import { carriesProviderSession, endProviderSession } from './sign-out.js';

export interface OidcPluginOptions {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
  /** Resource servers besides those of the data dir's oidc-resources.json. */
  resources?: ResourceServer[];
  /** The host app trusts a proxy's X-Forwarded-* headers (its Fastify `trustProxy`). */
  behindProxy?: boolean;
}

/** The return-to cookie: set by the interaction, read by the sign-in pages when they are done. */
export const returnCookieName = (cookies: CookiePolicy) => `${cookies.secure ? '__Host-' : ''}gatehouse_oidc_return`;
const RETURN_PATH = /^\/oidc\/interaction\/[A-Za-z0-9_-]{1,64}\?t=\d{1,16}&m=[A-Za-z0-9_-]{43}$/;
/** Federated login's link confirmation (web/pages/upstream.ts): also a place sign-in returns to. */
export const UPSTREAM_LINK_PATH = '/sign-in/upstream/link';

/**
 * Where the sign-in pages send the browser once its session is full: back to the OIDC
 * interaction that sent it, or null. Read once (the cookie is cleared); only interaction
 * paths (and the upstream-link page under the pages' base) are ever accepted, so it is never an open redirect.
 */
export function takeOidcReturn(request: FastifyRequest, reply: FastifyReply, cookies: CookiePolicy, pagesBase = ''): string | null {
  const name = returnCookieName(cookies);
  const value = request.cookies[name];
  if (value === undefined) return null;
  reply.clearCookie(name, cookieOptions(cookies));
  return RETURN_PATH.test(value) || value === pagesBase + UPSTREAM_LINK_PATH ? value : null;
}

/**
 * The answer to a sign-in form that is done: a 303 to `target`, except back to an OIDC
 * interaction. Its redirects end at the relying party's redirect URI (another origin), and
 * browsers hold the whole redirect chain of a form submission to the page's CSP
 * `form-action 'self'` (Chromium blocks it). So that return is a page that continues with
 * a plain navigation (Refresh), which no form-action governs.
 */
export function continueAfterForm(reply: FastifyReply, target: string): FastifyReply {
  if (!target.startsWith(`${OIDC_PREFIX}/interaction/`) || !RETURN_PATH.test(target)) return reply.redirect(target, 303);
  return reply
    .status(200)
    .type('text/html; charset=utf-8')
    .header('Refresh', `0; url=${target}`)
    .send(simplePage('Signed in', `<p>Returning to the application… <a href="${escapeHtml(target)}">Continue</a></p>`));
}

export async function oidcRoutes(app: FastifyInstance, options: OidcPluginOptions): Promise<void> {
  const { gatehouse, cookies } = options;
  const db = gatehouse.database.db;
  const clients = new ClientRegistry(db, gatehouse.keys.box, gatehouse.config.dataDir);
  const resources = new ResourceServers(gatehouse.config.dataDir, options.resources);
  // The interaction's start time travels in its URL, bound to its uid by a keyed hash: a
  // sign-in after it counts as re-authentication (prompt=login, max_age, acr step-up).
  const mac = (uid: string, t: string) => gatehouse.keys.hasher.hash(`oidc-interaction/${uid}/${t}`);
  const interactionUrl = (uid: string) => {
    const t = String(gatehouse.config.now());
    return `${OIDC_PREFIX}/interaction/${uid}?t=${t}&m=${mac(uid, t)}`;
  };
  let built: Promise<Provider> | null = null;
  const provider = () =>
    (built ??= createProvider(
      { gatehouse, clients, resources, cookies, interactionUrl, behindProxy: options.behindProxy ?? false },
      db,
    ).catch((err) => {
      built = null;
      throw err;
    }));
  // Gatehouse's own sign-out of a browser ends its provider session too (sign-out.ts).
  gatehouse.signOutHooks.push(async (req, res) => {
    if (carriesProviderSession(req)) await endProviderSession(await provider(), req, res);
  });

  // The provider reads its own bodies (urlencoded, JSON) from the raw request: no parser here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  const handOver = async (request: FastifyRequest, reply: FastifyReply, path: string) => {
    const callback = (await provider()).callback();
    reply.hijack();
    const raw = request.raw as typeof request.raw & { originalUrl?: string };
    const query = raw.url?.includes('?') ? raw.url.slice(raw.url.indexOf('?')) : '';
    raw.originalUrl = `${OIDC_PREFIX}${path}${query}`;
    raw.url = `${path}${query}`;
    await callback(raw, reply.raw);
  };
  const pathAfterPrefix = (request: FastifyRequest) => {
    const url = request.raw.url ?? '';
    const p = url.split('?')[0]!.slice(OIDC_PREFIX.length);
    return p === '' ? '/' : p;
  };

  const publicRoute = { config: requires({ session: 'none' }) };
  // The methods the provider's endpoints use (OPTIONS: CORS preflight); others are 404.
  const methods = ['GET', 'POST', 'OPTIONS'];
  for (const url of [OIDC_PREFIX, `${OIDC_PREFIX}/*`]) {
    app.route({ method: methods, url, ...publicRoute, handler: (request, reply) => handOver(request, reply, pathAfterPrefix(request)) });
  }
  // Endpoints browser-based clients (SPAs) call cross-origin: they authenticate the client,
  // code and PKCE themselves, never a cookie, and answer CORS per client (allowed_origins).
  const crossOriginRoute = { config: requires({ session: 'none', crossOrigin: true }) };
  for (const path of ['/token', '/token/revocation', '/me']) {
    app.route({
      method: path === '/me' ? ['GET', 'POST', 'OPTIONS'] : ['POST', 'OPTIONS'],
      url: `${OIDC_PREFIX}${path}`,
      ...crossOriginRoute,
      handler: (request, reply) => handOver(request, reply, path),
    });
  }
  app.get('/.well-known/openid-configuration', publicRoute, (request, reply) =>
    handOver(request, reply, '/.well-known/openid-configuration'),
  );

  const expired = (reply: FastifyReply) =>
    reply
      .status(400)
      .type('text/html; charset=utf-8')
      .send(
        simplePage(
          'Sign-in request expired',
          '<p>This sign-in request has expired or was already used. Go back to the application and start again.</p>',
        ),
      );

  app.get<{ Params: { uid: string }; Querystring: { t?: string; m?: string } }>(
    `${OIDC_PREFIX}/interaction/:uid`,
    // Any session or none: this route decides itself, from the session's state. It never
    // restores a session from remember-me (that would not be an authentication).
    { config: requires({ session: 'any' }) },
    async (request, reply) => {
      const p = await provider();
      const { uid } = request.params;
      const { t, m } = request.query;
      if (typeof t !== 'string' || typeof m !== 'string' || !/^\d{1,16}$/.test(t) || !constantTimeEqual(m, mac(uid, t)))
        return expired(reply);
      let details;
      try {
        details = await p.interactionDetails(request.raw, reply.raw);
      } catch {
        return expired(reply);
      }
      if (details.uid !== uid) return expired(reply);
      const principal = request.principal;
      const session = principal.kind === 'session' && principal.via === 'cookie' ? principal.session : null;
      const finish = async (result: Parameters<Provider['interactionResult']>[2]) =>
        reply.redirect(await p.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: true }), 303);

      if (details.prompt.name === 'consent') {
        // Registered clients are the operator's own applications: consent is implied, but
        // only for the account the login step established, from its live full session.
        if (!session || session.facts.state !== 'full' || session.userId !== details.session?.accountId) {
          return finish({ error: 'login_required', error_description: 'the Gatehouse session changed during sign-in' });
        }
        const grantId = details.grantId;
        const grant = grantId
          ? await p.Grant.find(grantId)
          : new p.Grant({ accountId: session.userId, clientId: String(details.params.client_id) });
        if (!grant) return expired(reply);
        const d = details.prompt.details as {
          missingOIDCScope?: string[];
          missingOIDCClaims?: string[];
          missingResourceScopes?: Record<string, string[]>;
        };
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {}))
          grant.addResourceScope(indicator, scopes.join(' '));
        return finish({ consent: { grantId: await grant.save() } });
      }

      const params = details.params as Record<string, unknown>;
      const maxAge = params.max_age === undefined ? undefined : Number(params.max_age);
      const step = decideInteraction({
        session: session?.facts ?? null,
        factorMethods: session?.factorMethods ?? [],
        prompts: typeof params.prompt === 'string' ? params.prompt.split(' ') : [],
        ...(maxAge !== undefined && Number.isFinite(maxAge) ? { maxAgeSeconds: maxAge } : {}),
        acrValues: parseAcrValues(params.acr_values),
        startedAt: Number(t),
        now: request.ctx.now,
      });
      const sendTo = (target: string) => {
        reply.setCookie(returnCookieName(cookies), request.url, cookieOptions(cookies, OIDC_TTL.Interaction));
        return reply.redirect(gatehouse.origins.pagesPath + target, 303);
      };
      switch (step.kind) {
        case 'sign_in':
          return sendTo('/sign-in');
        case 'verify':
          return sendTo('/sign-in/verify');
        case 'enrol':
          return sendTo('/enrol');
        case 'unmet':
          return finish({ error: 'unmet_authentication_requirements', error_description: step.description });
        case 'finish':
          return finish({
            login: {
              accountId: session!.userId,
              acr: step.assurance.acr,
              amr: step.assurance.amr,
              ts: Math.floor(step.assurance.authTime / 1000),
              remember: false,
            },
          });
      }
    },
  );
}
