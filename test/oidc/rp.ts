/**
 * The relying party side of the OIDC tests: openid-client (a real RP) against a test
 * server's provider over loopback, and a FormBrowser that follows the provider's and the
 * pages' redirects until the browser lands on the RP's redirect URI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { RESOURCES_FILE } from '../../src/oidc/resources.js';
import type { FormBrowser } from '../helpers/http-client.js';
import { startFastServer, type TestServer } from '../helpers/server.js';

export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const API = 'https://api.example.test';

/** A test server with the test API as a resource server; its data dir goes with it. */
export async function startOidcServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-oidc-'));
  fs.writeFileSync(path.join(dataDir, RESOURCES_FILE), JSON.stringify([{ indicator: API, scope: 'api:read api:write' }]));
  const server = await startFastServer({ ...env, GATEHOUSE_DATA_DIR: dataDir });
  return {
    ...server,
    async close() {
      await server.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Rp {
  config: oidc.Configuration;
  clientId: string;
  /** A fresh authorization request: the URL, and what the RP keeps to check the answer. */
  start(params?: Record<string, string>): Promise<{ url: URL; verifier: string; state: string; nonce: string }>;
}

let counter = 0;

/** Registers a client (confidential unless `publicClient`) and discovers the provider with openid-client. */
export async function registerRp(
  server: TestServer,
  options: { publicClient?: boolean; backchannelLogoutUri?: string; allowedOrigins?: string[]; redirectUri?: string } = {},
): Promise<Rp> {
  const g = server.server.gatehouse;
  const registry = new ClientRegistry(g.database.db, g.keys.box, server.dataDir);
  const clientId = `rp-${process.pid}-${++counter}`;
  const redirectUri = options.redirectUri ?? REDIRECT_URI;
  const { clientSecret } = await registry.add(
    {
      client_id: clientId,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [`${redirectUri}/bye`],
      token_endpoint_auth_method: options.publicClient ? 'none' : 'client_secret_basic',
      ...(options.allowedOrigins ? { allowed_origins: options.allowedOrigins } : {}),
      ...(options.backchannelLogoutUri
        ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: true }
        : {}),
    },
    Date.now(),
  );
  const config = await oidc.discovery(
    new URL(`${server.url}/oidc`),
    clientId,
    clientSecret ?? undefined,
    options.publicClient ? oidc.None() : undefined,
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
  return {
    config,
    clientId,
    async start(params = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email offline_access',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...params,
      });
      return { url, verifier, state, nonce };
    },
  };
}

/**
 * Where a finished sign-in form sends the browser: its redirect, or the Refresh header of
 * the page that returns to an OIDC interaction (continueAfterForm).
 */
export function continuation(res: { location?: string; headers: Record<string, unknown> }): string | undefined {
  if (res.location) return res.location;
  const refresh = res.headers.refresh;
  return typeof refresh === 'string' ? /^0; url=(.+)$/.exec(refresh)?.[1] : undefined;
}

/** A path on the server for an absolute or relative location. */
const pathOf = (base: string, location: string) => (location.startsWith(base) ? location.slice(base.length) : location);

/**
 * Follows redirects (GET) from `location` until one leaves the server (the RP's redirect
 * URI, returned as a URL) or a page answers (returned as the page).
 */
export async function follow(
  browser: FormBrowser,
  location: string,
  max = 12,
): Promise<{ landed: URL } | { page: { status: number; path: string; text: string } }> {
  let at = location;
  for (let i = 0; i < max; i++) {
    if (!at.startsWith('/') && !at.startsWith(browser.base)) return { landed: new URL(at) };
    const p = pathOf(browser.base, at);
    const res = await browser.go('GET', p);
    if (process.env.OIDC_TRACE) console.log(res.status, p, res.location ?? '');
    const next = res.status >= 300 && res.status < 400 ? res.location : res.status === 200 ? continuation(res) : undefined;
    if (next) {
      at = next;
      continue;
    }
    return { page: { status: res.status, path: p, text: res.text } };
  }
  throw new Error('too many redirects');
}

/** The authorization URL's path on the server. */
export const authPath = (server: TestServer, url: URL) => pathOf(server.url, url.href);

/**
 * A browser already signed in to Gatehouse runs one authorization request to the end and
 * the RP redeems the code (optionally for a resource server's JWT access token).
 */
export async function authorize(
  server: TestServer,
  rp: Rp,
  browser: FormBrowser,
  params: Record<string, string> = {},
  tokenParams: Record<string, string> = {},
) {
  const req = await rp.start(params);
  const done = await follow(browser, authPath(server, req.url));
  if (!('landed' in done)) throw new Error(`the authorization did not reach the RP: ${JSON.stringify(done).slice(0, 300)}`);
  if (done.landed.searchParams.get('error')) throw new Error(`authorization error: ${done.landed.searchParams.get('error')}`);
  return oidc.authorizationCodeGrant(
    rp.config,
    done.landed,
    { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce },
    tokenParams,
  );
}
