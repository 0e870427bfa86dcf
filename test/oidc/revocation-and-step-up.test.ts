/**
 * What the relying party holds after sign-in: refresh never raises assurance; removing a
 * factor or changing the password ends the account's grants (refresh fails); RP-initiated
 * logout ends the Gatehouse session too; and an API's RFC 9470 step-up checks on Gatehouse's
 * JWT access tokens.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACR } from '../../src/oidc/assurance.js';
import { createStepUpGuard } from '../../src/oidc/resource-server.js';
import { PASSWORD, signup, signupWithTotp } from '../helpers/accounts.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import type { TestServer } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';
import { API, authorize, authPath, follow, registerRp, REDIRECT_URI, startOidcServer, type Rp } from './rp.js';

let server: TestServer;
let rp: Rp;

beforeAll(async () => {
  server = await startOidcServer();
  rp = await registerRp(server);
}, 60_000);
afterAll(async () => server?.close());

/** A browser signed in to Gatehouse with password and recovery code (aal2). */
async function mfaBrowser() {
  const account = await signupWithTotp(server.url);
  const b = new FormBrowser(server.url);
  await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
  const challenge = await b.go('GET', '/sign-in/verify');
  await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
  return { account, b };
}

/** The browser's Gatehouse session as a JSON API client. */
function apiClientOf(b: FormBrowser): Client {
  const c = new Client(server.url);
  c.cookies = new Map(b.cookies);
  return c;
}

describe('grants end with the factors and password they were based on', () => {
  it('removing a factor revokes the refresh token (and the refresh worked before)', async () => {
    const { account, b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b);
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.claims()!.acr).toBe(ACR.aal2);

    // The signup client is fresh from confirming the factor: remove it.
    const removed = await account.client.delete(`/api/mfa/totp/${account.factorId}`);
    expect(removed.status).toBe(204);
    await expect(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a password change revokes the refresh token', async () => {
    const { account, b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b);
    const changed = await account.client.post('/api/account/password', {
      currentPassword: PASSWORD,
      newPassword: 'a-different-long-passphrase-77',
    });
    expect(changed.status).toBe(200);
    await expect(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('refresh does not raise assurance: enrolling a factor later leaves the grant at aal1 and auth_time unmoved', async () => {
    const account = await signup(server.url);
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const tokens = await authorize(server, rp, b);
    const first = tokens.claims()!;
    expect(first.acr).toBe(ACR.aal1);

    // The browser's session adds TOTP (and so verifies a second factor).
    const api = apiClientOf(b);
    const setup = await api.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    expect((await api.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) })).status).toBe(200);

    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.claims()!.acr).toBe(ACR.aal1);
    expect(refreshed.claims()!.auth_time).toBe(first.auth_time);
  });
});

describe('RP-initiated logout', () => {
  it('ends the provider session and the Gatehouse session of the browser', async () => {
    const { b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b);
    const end = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${REDIRECT_URI}/bye` });
    const page = await b.go('GET', authPath(server, end));
    expect(page.status).toBe(200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
    expect(xsrf).toBeTruthy();
    const confirm = await b.go('POST', '/oidc/session/end/confirm', { xsrf: xsrf!, logout: 'yes' });
    expect(confirm.status).toBe(303);
    expect(confirm.location).toBe(`${REDIRECT_URI}/bye`);
    expect((await apiClientOf(b).get('/api/session')).status).toBe(401);
    const silent = await follow(b, authPath(server, (await rp.start({ prompt: 'none' })).url));
    expect('landed' in silent && silent.landed.searchParams.get('error')).toBe('login_required');
  });
});

describe('step-up for APIs (RFC 9470)', () => {
  let api: FastifyInstance;
  let clock = Date.now();
  beforeAll(async () => {
    const guard = createStepUpGuard({ issuer: `${server.url}/oidc`, audience: API, now: () => clock });
    api = Fastify();
    api.get('/balance', { preHandler: guard.fastify({ acrValues: [ACR.aal2], maxAge: 60 }) }, async () => ({ ok: true }));
    api.get('/passkey-only', { preHandler: guard.fastify({ acrValues: [ACR.phr] }) }, async () => ({ ok: true }));
    await api.ready();
  });
  afterAll(async () => api?.close());

  const call = (url: string, token?: string) =>
    api.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('an aal2 access token reaches an aal2 route; phr and a stale auth_time are challenged', async () => {
    const { b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b, { scope: 'openid api:read', resource: API }, { resource: API });
    clock = Date.now();
    expect((await call('/balance', tokens.access_token)).statusCode).toBe(200);

    const phr = await call('/passkey-only', tokens.access_token);
    expect(phr.statusCode).toBe(401);
    expect(phr.headers['www-authenticate']).toMatch(
      /^Bearer error="insufficient_user_authentication", error_description="[^"]+", acr_values="urn:gatehouse:phr"$/,
    );

    // Past max_age (the token itself lives ten minutes).
    clock = Date.now() + 61_000;
    const stale = await call('/balance', tokens.access_token);
    expect(stale.statusCode).toBe(401);
    expect(stale.headers['www-authenticate']).toContain('error="insufficient_user_authentication"');
    expect(stale.headers['www-authenticate']).toContain('max_age=60');
    clock = Date.now();
  });

  it('an aal1 token is challenged for aal2; no token, a foreign token and a forged one are invalid_token', async () => {
    clock = Date.now();
    const account = await signup(server.url);
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const tokens = await authorize(server, rp, b, { scope: 'openid api:read', resource: API }, { resource: API });
    const res = await call('/balance', tokens.access_token);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain('acr_values="urn:gatehouse:aal2"');

    expect((await call('/balance')).statusCode).toBe(401);
    // The userinfo token (opaque, not for this API) and a tampered JWT.
    const { b: b2 } = await mfaBrowser();
    const plain = await authorize(server, rp, b2);
    const foreign = await call('/balance', plain.access_token);
    expect(foreign.statusCode).toBe(401);
    expect(foreign.headers['www-authenticate']).toContain('error="invalid_token"');
    const [h, p, s] = tokens.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = [h, Buffer.from(JSON.stringify({ ...claims, acr: ACR.phr })).toString('base64url'), s].join('.');
    expect((await call('/passkey-only', forged)).headers['www-authenticate']).toContain('error="invalid_token"');
  });
});
