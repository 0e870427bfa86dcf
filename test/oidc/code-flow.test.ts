/**
 * Gatehouse as an OpenID Provider, with openid-client as a real relying party over loopback
 * and the browser steps driven over HTTP: the whole code flow with PKCE for an account with
 * a second factor (the RP sees aal2 only once the second factor is done), and beside it the
 * attacks: no code for a pending session, prompt=none with a pending session, acr_values
 * above what the session can reach.
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signup, signupWithTotp, PASSWORD } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import type { TestServer } from '../helpers/server.js';
import { authPath, continuation, follow, registerRp, startOidcServer, type Rp } from './rp.js';

let server: TestServer;
let rp: Rp;

beforeAll(async () => {
  server = await startOidcServer();
  rp = await registerRp(server);
}, 60_000);
afterAll(async () => server?.close());

async function signInWithFactor(b: FormBrowser, email: string, recoveryCode: string) {
  const login = await b.go('POST', '/sign-in', { email, password: PASSWORD });
  expect(login.location).toBe('/sign-in/verify');
  const challenge = await b.go('GET', '/sign-in/verify');
  return b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: recoveryCode });
}

describe('authorization code flow with PKCE, MFA account', () => {
  it('signs in through Gatehouse: aal2 only after the second factor; refresh keeps the assurance', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    const req = await rp.start();
    const first = await follow(b, authPath(server, req.url));
    // No Gatehouse session: the interaction sends the browser to Gatehouse's sign-in page.
    expect(first).toMatchObject({ page: { status: 200, path: '/sign-in' } });

    // Password only: a pending session. No code is issued for it.
    const login = await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    expect(login.location).toBe('/sign-in/verify');
    // A new authorization request from the pending browser: sent to the second step, not to the RP.
    const again = await rp.start();
    const pendingTry = await follow(b, authPath(server, again.url));
    expect(pendingTry).toMatchObject({ page: { path: '/sign-in/verify' } });

    // The second factor: the sign-in pages return to the interaction, which finishes.
    const challenge = await b.go('GET', '/sign-in/verify');
    const verified = await b.go('POST', '/sign-in/verify', {
      _csrf: csrfIn(challenge.text),
      method: 'recovery_code',
      code: account.recoveryCodes.pop()!,
    });
    // A page that continues to the interaction (not a redirect: see continueAfterForm).
    expect(verified.status).toBe(200);
    expect(continuation(verified)).toMatch(/^\/oidc\/interaction\//);
    const done = await follow(b, continuation(verified)!);
    if (!('landed' in done)) throw new Error(`no redirect to the RP: ${JSON.stringify(done)}`);

    // The browser returns to the latest interaction (the request made while pending).
    const before = Math.floor(Date.now() / 1000);
    const tokens = await oidc.authorizationCodeGrant(rp.config, done.landed, {
      pkceCodeVerifier: again.verifier,
      expectedState: again.state,
      expectedNonce: again.nonce,
    });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(account.userId);
    expect(claims.acr).toBe('urn:gatehouse:aal2');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.auth_time).toBeLessThanOrEqual(before + 1);

    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, account.userId);
    expect(info.email).toBe(account.email);

    // Refresh: same acr, amr and auth_time.
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    const after = refreshed.claims()!;
    expect(after.acr).toBe('urn:gatehouse:aal2');
    expect(after.auth_time).toBe(claims.auth_time);
    expect(after.amr).toEqual(claims.amr);
    void req;
  });

  it('a code can be redeemed once', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    await signInWithFactor(b, account.email, account.recoveryCodes.pop()!);
    const req = await rp.start();
    const done = await follow(b, authPath(server, req.url));
    if (!('landed' in done)) throw new Error(JSON.stringify(done));
    await oidc.authorizationCodeGrant(rp.config, done.landed, {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    await expect(
      oidc.authorizationCodeGrant(rp.config, done.landed, {
        pkceCodeVerifier: req.verifier,
        expectedState: req.state,
        expectedNonce: req.nonce,
      }),
    ).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });
});

describe('attacks', () => {
  it('prompt=none with a pending session answers login_required; with the full session it completes silently', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const silent = await rp.start({ prompt: 'none' });
    const res = await follow(b, authPath(server, silent.url));
    if (!('landed' in res)) throw new Error(JSON.stringify(res));
    expect(res.landed.searchParams.get('error')).toBe('login_required');
    expect(res.landed.searchParams.get('code')).toBeNull();

    // Legitimate: complete the factor, sign in once interactively, then prompt=none works.
    const challenge = await b.go('GET', '/sign-in/verify');
    await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
    const interactive = await rp.start();
    const first = await follow(b, authPath(server, interactive.url));
    expect('landed' in first && first.landed.searchParams.get('code')).toBeTruthy();
    const again = await rp.start({ prompt: 'none' });
    const ok = await follow(b, authPath(server, again.url));
    if (!('landed' in ok)) throw new Error(JSON.stringify(ok));
    expect(ok.landed.searchParams.get('code')).toBeTruthy();
    const tokens = await oidc.authorizationCodeGrant(rp.config, ok.landed, {
      pkceCodeVerifier: again.verifier,
      expectedState: again.state,
      expectedNonce: again.nonce,
    });
    expect(tokens.claims()!.acr).toBe('urn:gatehouse:aal2');
  });

  it('prompt=none with no Gatehouse session answers login_required', async () => {
    const b = new FormBrowser(server.url);
    const silent = await rp.start({ prompt: 'none' });
    const res = await follow(b, authPath(server, silent.url));
    if (!('landed' in res)) throw new Error(JSON.stringify(res));
    expect(res.landed.searchParams.get('error')).toBe('login_required');
  });

  it('a signed-out Gatehouse session does not leave the provider signed in', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    await signInWithFactor(b, account.email, account.recoveryCodes.pop()!);
    const first = await follow(b, authPath(server, (await rp.start()).url));
    expect('landed' in first).toBe(true);
    const settings = await b.go('GET', '/settings');
    await b.go('POST', '/sign-out', { _csrf: csrfIn(settings.text) });
    const silent = await follow(b, authPath(server, (await rp.start({ prompt: 'none' })).url));
    expect('landed' in silent && silent.landed.searchParams.get('error')).toBe('login_required');
  });

  it('acr_values=aal2 for an account without a second factor: unmet_authentication_requirements; aal1 is issued as asked', async () => {
    const account = await signup(server.url);
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const req = await rp.start({ acr_values: 'urn:gatehouse:aal2' });
    const res = await follow(b, authPath(server, req.url));
    if (!('landed' in res)) throw new Error(JSON.stringify(res));
    expect(res.landed.searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect(res.landed.searchParams.get('code')).toBeNull();

    const ok = await rp.start({ acr_values: 'urn:gatehouse:aal1' });
    const landed = await follow(b, authPath(server, ok.url));
    if (!('landed' in landed)) throw new Error(JSON.stringify(landed));
    const tokens = await oidc.authorizationCodeGrant(rp.config, landed.landed, {
      pkceCodeVerifier: ok.verifier,
      expectedState: ok.state,
      expectedNonce: ok.nonce,
    });
    expect(tokens.claims()!.acr).toBe('urn:gatehouse:aal1');
    expect(tokens.claims()!.amr).toEqual(['pwd']);
  });

  it('prompt=login sends a signed-in user to sign in again; the new auth_time is later', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    await signInWithFactor(b, account.email, account.recoveryCodes.pop()!);
    const req = await rp.start({ prompt: 'login' });
    const res = await follow(b, authPath(server, req.url));
    expect(res).toMatchObject({ page: { path: '/sign-in' } });
    const verified = await signInWithFactor(b, account.email, account.recoveryCodes.pop()!);
    const done = await follow(b, continuation(verified)!);
    if (!('landed' in done)) throw new Error(JSON.stringify(done));
    const tokens = await oidc.authorizationCodeGrant(rp.config, done.landed, {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    expect(tokens.claims()!.acr).toBe('urn:gatehouse:aal2');
  });

  it('PKCE is required: a request without code_challenge is refused', async () => {
    const b = new FormBrowser(server.url);
    const url = new URL(`${server.url}/oidc/auth`);
    url.search = new URLSearchParams({
      client_id: rp.clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'http://127.0.0.1:9/cb',
      state: 'x',
    }).toString();
    const res = await follow(b, authPath(server, url));
    if (!('landed' in res)) throw new Error(JSON.stringify(res));
    expect(res.landed.searchParams.get('error')).toBe('invalid_request');
  });
});
