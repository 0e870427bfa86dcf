/**
 * Browser-based clients (SPAs) call the token endpoint cross-origin: allowed only from the
 * origins registered for the client (`allowed_origins`), answered with CORS headers; any
 * other origin is refused and sees no CORS header. The same-origin rule still guards every
 * other /oidc endpoint (e.g. the logout confirmation, which acts on the browser's cookies).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import type { TestServer } from '../helpers/server.js';
import { authPath, follow, registerRp, REDIRECT_URI, startOidcServer, type Rp } from './rp.js';

const SPA = 'http://spa.example.test';
const EVIL = 'http://evil.example.test';
let server: TestServer;
let spa: Rp;

beforeAll(async () => {
  server = await startOidcServer();
  spa = await registerRp(server, { publicClient: true, allowedOrigins: [SPA] });
}, 60_000);
afterAll(async () => server?.close());

/** A code for the SPA (public client) from a signed-in MFA browser. */
async function codeForSpa() {
  const account = await signupWithTotp(server.url);
  const b = new FormBrowser(server.url);
  await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
  const challenge = await b.go('GET', '/sign-in/verify');
  await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
  const req = await spa.start();
  const done = await follow(b, authPath(server, req.url));
  if (!('landed' in done)) throw new Error(JSON.stringify(done));
  return { code: done.landed.searchParams.get('code')!, verifier: req.verifier, b };
}

const tokenRequest = (origin: string, code: string, verifier: string) =>
  request(`${server.url}/oidc/token`, {
    method: 'POST',
    headers: { origin, 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
      client_id: spa.clientId,
    }).toString(),
  });

describe('CORS on /oidc/token for SPAs', () => {
  it('the preflight and the token request from the registered origin are allowed', async () => {
    const pre = await request(`${server.url}/oidc/token`, {
      method: 'OPTIONS',
      headers: { origin: SPA, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(SPA);
    await pre.body.dump();

    const { code, verifier } = await codeForSpa();
    const res = await tokenRequest(SPA, code, verifier);
    const body = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(SPA);
    expect(typeof body.id_token).toBe('string');
  });

  it('another origin is refused without CORS headers, and its attempt does not burn the legitimate flow', async () => {
    const { code, verifier } = await codeForSpa();
    const res = await tokenRequest(EVIL, code, verifier);
    const body = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(400);
    expect(body.error).toBe('invalid_request');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const ok = await tokenRequest(SPA, code, verifier);
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
  });

  it('the same-origin rule still guards the cookie-acting endpoints (logout confirmation)', async () => {
    const { b } = await codeForSpa();
    const res = await b.go('POST', '/oidc/session/end/confirm', { xsrf: 'x', logout: 'yes' }, { origin: EVIL });
    expect(res.status).toBe(403);
    expect((await b.go('GET', '/settings')).status).toBe(200);
  });
});
