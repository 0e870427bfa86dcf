/**
 * The oidc-provider configuration: Gatehouse's storage, keys and clients, its session
 * state machine in front of every authorization, and assurance (acr, amr, auth_time) on
 * every token.
 *
 * The provider keeps its own session cookie, but it never decides on its own: the first
 * prompt of the policy ("gatehouse") requires an interaction unless the provider session
 * mirrors the browser's current, full Gatehouse session exactly (account, acr, amr,
 * auth_time). So a pending, enrolling, signed-out or changed Gatehouse session always goes
 * back through Gatehouse's interaction (interaction.ts), and `prompt=none` then answers
 * `login_required`.
 */
import type { Kysely } from 'kysely';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Gatehouse } from '../gatehouse.js';
import type { CookiePolicy } from '../http/cookies.js';
import type { Database } from '../store/schema.js';
import { KyselyAdapter } from './adapter.js';
import { ACR_VALUES, acrSatisfies, parseAcrValues, wireAssurance } from './assurance.js';
import type { ClientRegistry } from './clients.js';
import { escapeHtml, simplePage } from './pages.js';
import type { ResourceServers } from './resources.js';
import { loadSigningKeys } from './signing-keys.js';
import { OIDC_TTL_ACCESS } from './ttl.js';

export const OIDC_PREFIX = '/oidc';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Token lifetimes, seconds. Access tokens are short: a JWT access token outlives a revocation until it expires. */
export const OIDC_TTL = {
  AccessToken: OIDC_TTL_ACCESS,
  AuthorizationCode: 60,
  IdToken: 600,
  Interaction: 600,
  Grant: 14 * 24 * 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
};

export interface ProviderDeps {
  /** The host app trusts a proxy's X-Forwarded-* headers (Fastify `trustProxy`). */
  behindProxy: boolean;
  gatehouse: Gatehouse;
  clients: ClientRegistry;
  resources: ResourceServers;
  cookies: CookiePolicy;
  /** The path of Gatehouse's step for an interaction (plugin.ts). */
  interactionUrl: (uid: string) => string;
}

/** The Gatehouse session the browser presents to the provider (cookie), if full and usable. */
async function gatehouseAssuranceOf(ctx: KoaContextWithOIDC, deps: ProviderDeps) {
  const token = ctx.cookies.get(deps.cookies.names.session, { signed: false });
  if (!token) return null;
  const session = await deps.gatehouse.sessions.resolve(token, 'cookie', deps.gatehouse.config.now());
  if (!session) return null;
  const assurance = wireAssurance(session.facts);
  return assurance ? { session, assurance } : null;
}

const sameAmr = (a: readonly string[] | undefined, b: readonly string[]) =>
  (a ?? []).length === b.length && b.every((m) => (a ?? []).includes(m));

function policy(deps: ProviderDeps) {
  const { Prompt, Check, base } = interactionPolicy;
  const prompts = base();
  prompts.add(
    new Prompt(
      { name: 'gatehouse', requestable: false },
      new Check('gatehouse_session', 'End-User must be signed in to Gatehouse with a full session', 'login_required', async (ctx) => {
        const current = await gatehouseAssuranceOf(ctx, deps);
        const s = ctx.oidc.session;
        if (!current || !s) return Check.REQUEST_PROMPT;
        const { session, assurance } = current;
        const matches =
          s.accountId === session.userId &&
          s.acr === assurance.acr &&
          sameAmr(s.amr, assurance.amr) &&
          s.loginTs === Math.floor(assurance.authTime / 1000);
        return matches ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
      }),
    ),
    0,
  );
  // acr_values are essential: a session below every requested value needs an interaction
  // (step-up or re-authentication), and without one the request fails.
  prompts
    .get('login')!
    .checks.push(
      new Check(
        'acr_values',
        'none of the requested acr_values is met by the current authentication',
        'unmet_authentication_requirements',
        (ctx) =>
          acrSatisfies(ctx.oidc.session?.acr, parseAcrValues(ctx.oidc.params?.acr_values)) ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT,
      ),
    );
  return prompts;
}

/** The claims source of an access token: the code or refresh token it was exchanged for. */
function assuranceSource(ctx: KoaContextWithOIDC): { acr?: string; amr?: string[]; authTime?: number } | undefined {
  const e = ctx.oidc.entities;
  return e.AuthorizationCode ?? e.RefreshToken ?? undefined;
}

export async function createProvider(deps: ProviderDeps, db: Kysely<Database>): Promise<Provider> {
  const { gatehouse, clients, resources, cookies } = deps;
  const issuer = `${gatehouse.config.publicUrl}${OIDC_PREFIX}`;
  const keys = await loadSigningKeys(db, gatehouse.keys.box, gatehouse.config.now());

  const configuration: Configuration = {
    adapter: (name: string) => new KyselyAdapter(name, db, clients),
    clients: [],
    jwks: { keys: keys as never },
    // Signs the provider's own cookies; derived from GATEHOUSE_SECRET_KEY, never stored.
    cookies: {
      keys: [gatehouse.keys.hasher.hash('gatehouse/oidc-cookie-keys/v1')],
      long: { httpOnly: true, sameSite: 'lax', secure: cookies.secure },
      short: { httpOnly: true, sameSite: 'lax', secure: cookies.secure },
    },
    acrValues: ACR_VALUES,
    // Assurance goes into every ID token (openid scope), not only when asked for with the claims parameter.
    claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], email: ['email'] },
    scopes: ['openid', 'offline_access', 'email'],
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    // PKCE (S256) for every client, confidential ones included (OAuth 2.1).
    pkce: { required: () => true },
    // Outgoing requests (back-channel logout) keep oidc-provider's SSRF guard, which refuses
    // loopback and private addresses; only a development server (no configured public URL)
    // may reach loopback URIs, for relying parties on the same machine.
    fetch: (url, options) => {
      const target = new URL(String(url));
      if (gatehouse.origins.development && LOOPBACK_HOSTS.has(target.hostname)) {
        const { dispatcher: _guard, ...rest } = options as RequestInit & { dispatcher?: unknown };
        return globalThis.fetch(url, rest);
      }
      return globalThis.fetch(url, options);
    },
    // CORS for browser-based clients (SPAs): only the origins registered for the client
    // (`allowed_origins`); none by default.
    extraClientMetadata: {
      properties: ['allowed_origins'],
      validator(_ctx, key, value) {
        if (key === 'allowed_origins' && value !== undefined && !(Array.isArray(value) && value.every((v) => typeof v === 'string')))
          throw new errors.InvalidClientMetadata('allowed_origins must be an array of origins');
      },
    },
    clientBasedCORS: (_ctx, origin, client) =>
      origin !== 'null' && ((client.metadata().allowed_origins as string[] | undefined) ?? []).includes(origin),
    async findAccount(_ctx, sub) {
      const user = await gatehouse.stores.users.findById(sub);
      if (!user) return undefined;
      return { accountId: user.id, claims: async () => ({ sub: user.id, email: user.email }) };
    },
    interactions: {
      policy: policy(deps),
      url: (_ctx, interaction) => deps.interactionUrl(interaction.uid),
    },
    // Refresh tokens for every client allowed the grant (offline_access not required).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Access tokens carry the assurance of the sign-in that produced them; a refresh copies
    // it from the refresh token, so it can never rise or move auth_time.
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      const src = assuranceSource(ctx);
      if (!src) return undefined;
      return { acr: src.acr, amr: src.amr, auth_time: src.authTime };
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = simplePage(
            'Sign out',
            `${form}<p>Sign out of Gatehouse and the applications you signed in to with it?</p>
<p><button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button></p>`,
          );
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = simplePage('Signed out', '<p>You are signed out.</p><p><a href="/sign-in">Sign in again</a></p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, indicator) => resources.info(indicator),
      },
    },
    ttl: {
      AccessToken: OIDC_TTL.AccessToken,
      AuthorizationCode: OIDC_TTL.AuthorizationCode,
      IdToken: OIDC_TTL.IdToken,
      Interaction: OIDC_TTL.Interaction,
      Grant: OIDC_TTL.Grant,
      Session: OIDC_TTL.Session,
      RefreshToken: OIDC_TTL.RefreshToken,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = simplePage(
        'Sign-in could not continue',
        `${Object.entries(out)
          .map(([k, v]) => `<p><strong>${escapeHtml(k)}</strong>: ${escapeHtml(String(v))}</p>`)
          .join('')}<p><a href="/settings">Security settings</a></p>`,
      );
    },
  };

  const provider = new Provider(issuer, configuration);
  // Trust X-Forwarded-* only when the host app does (Fastify's trustProxy).
  provider.proxy = deps.behindProxy;
  provider.on('server_error', (_ctx, err) => gatehouse.logger.error({ err }, 'oidc provider error'));
  provider.on('backchannel.error', (_ctx, err, client) =>
    gatehouse.logger.warn({ err, clientId: client.clientId }, 'back-channel logout could not be delivered'),
  );

  // The provider's answers bypass Fastify's hooks (the raw request is handed over), so
  // Gatehouse's conventions are applied here: a JSON 404 for unknown paths, no caching
  // unless the provider says otherwise (discovery, JWKS), and the security headers.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.type = 'application/json';
      ctx.body = { error: 'not_found', message: 'No such endpoint.' };
    }
    if (!ctx.response.get('Cache-Control')) ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    if (!ctx.response.get('Content-Security-Policy')) {
      // The provider's own pages (errors, logout confirmation) use inline styles and post
      // forms back to itself or to a client's redirect URI; no script runs.
      ctx.set(
        'Content-Security-Policy',
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action *; frame-ancestors 'none'; base-uri 'none'",
      );
    }
  });

  // RP-initiated logout ("yes, sign me out") also ends the Gatehouse session of this browser.
  const LOGOUT = Symbol('gatehouse-logout');
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.params?.logout) (ctx as unknown as Record<symbol, boolean>)[LOGOUT] = true;
  });
  provider.use(async (ctx, next) => {
    await next();
    if (!(ctx as unknown as Record<symbol, boolean>)[LOGOUT]) return;
    const token = ctx.cookies.get(cookies.names.session, { signed: false });
    const now = gatehouse.config.now();
    const session = token
      ? ((await gatehouse.sessions.resolve(token, 'cookie', now)) ?? (await gatehouse.sessions.resolveReplaced(token, 'cookie', now)))
      : null;
    await gatehouse.auth.logout(session);
    // And this browser's remember-me chain, as the sign-out page does.
    const remember = ctx.cookies.get(cookies.names.remember, { signed: false });
    await gatehouse.rememberMe.logout(session?.id ?? null, remember, {
      ip: ctx.ip,
      userAgent: String(ctx.get('user-agent')).slice(0, 512),
      now: gatehouse.config.now(),
    });
    const clear = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: cookies.secure, signed: false };
    ctx.cookies.set(cookies.names.session, null, clear);
    if (remember !== undefined) ctx.cookies.set(cookies.names.remember, null, clear);
  });
  return provider;
}
