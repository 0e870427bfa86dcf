/**
 * A passkey as the first factor of an enrolling session (GATEHOUSE_MFA_REQUIRED=all), over
 * the JSON API and the /enrol page, with the software authenticator; and registration
 * staying ★ for full sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import { login, PASSWORD, signup, signupWithTotp, sleep, uniqueEmail } from '../helpers/accounts.js';
import { SoftAuthenticator } from './webauthn-soft-authenticator.js';

async function enrollingClient(base: string) {
  const account = await signup(base);
  expect(account.status).toBe('enrollment_required');
  return account;
}

async function register(client: Client, auth: SoftAuthenticator) {
  const options = await client.post('/api/mfa/webauthn/register/options');
  expect(options.status).toBe(200);
  return client.post('/api/mfa/webauthn/register', { response: auth.register(options.body), label: 'First key' });
}

describe('passkey enrolment (GATEHOUSE_MFA_REQUIRED=all)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer({ GATEHOUSE_MFA_REQUIRED: 'all' });
  });
  afterAll(() => server.close());

  it('sign up → enrolling → passkey → full (aal 2, recovery codes) → logout → login with the passkey', async () => {
    const { email, client } = await enrollingClient(server.url);
    expect((await client.get('/api/session')).body.error).toBe('enrollment_required');

    const auth = new SoftAuthenticator({ origin: server.url });
    const before = client.sessionCookie;
    const reg = await register(client, auth);
    expect(reg.status).toBe(201);
    expect(reg.body.aal).toBe(2);
    expect(reg.body.recoveryCodes).toHaveLength(10);
    expect(reg.body.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'user', 'mfa']));
    expect(client.sessionCookie).not.toBe(before);

    const session = await client.get('/api/session');
    expect(session.status).toBe(200);
    expect(session.body.aal).toBe(2);
    expect((await client.get('/api/mfa')).body.factors.map((f: { type: string }) => f.type)).toEqual(['webauthn']);
    const events = await client.get('/api/account/events');
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('mfa.factor_added');

    // The old enrolling token stopped working.
    const old = new Client(server.url);
    old.cookies.set('gatehouse_session', before!);
    expect((await old.get('/api/session')).status).toBe(401);
    expect((await old.post('/api/mfa/webauthn/register/options')).status).toBe(401);

    expect((await client.post('/api/auth/logout')).status).toBeLessThan(300);
    expect((await client.get('/api/session')).status).toBe(401);

    const next = await login(server.url, { email, password: PASSWORD });
    expect(next.res.status).toBe(202);
    expect(next.res.body.status).toBe('mfa_required');
    expect(next.res.body.methods).toContain('webauthn');
    const options = await next.client.post('/api/auth/webauthn/options');
    expect(options.status).toBe(200);
    const verify = await next.client.post('/api/auth/mfa/verify', { method: 'webauthn', response: auth.authenticate(options.body) });
    expect(verify.status).toBe(200);
    expect(verify.body.aal).toBe(2);
    expect((await next.client.get('/api/session')).status).toBe(200);
  });

  it('an enrolling session still reaches nothing else (403 enrollment_required)', async () => {
    const { client } = await enrollingClient(server.url);
    for (const [method, path, json] of [
      ['GET', '/api/session'],
      ['GET', '/api/mfa'],
      ['GET', '/api/mfa/webauthn'],
      ['DELETE', '/api/mfa/webauthn/some-factor'],
      ['POST', '/api/mfa/recovery-codes', {}],
      ['POST', '/api/auth/step-up/webauthn/options', {}],
      ['POST', '/api/auth/step-up', { method: 'totp', code: '123456' }],
      ['GET', '/api/account'],
      ['POST', '/api/tokens', { name: 'x', scopes: [] }],
    ] as const) {
      const res = await client.req(method, path, { json });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error, `${method} ${path}`).toBe('enrollment_required');
    }
    expect((await client.post('/api/auth/webauthn/options')).body.error).toBe('no_pending_authentication');
    // A response that does not verify changes nothing: still enrolling.
    const options = await client.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    const bad = await client.post('/api/mfa/webauthn/register', { response: { id: 'x', response: {} } });
    expect(bad.status).toBe(400);
    expect((await client.get('/api/session')).body.error).toBe('enrollment_required');
  });

  it('a pending session cannot register a passkey', async () => {
    const { email, client } = await enrollingClient(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    expect((await register(client, auth)).status).toBe(201);

    const { client: pending, res } = await login(server.url, { email, password: PASSWORD });
    expect(res.status).toBe(202);
    const options = await pending.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(401);
    expect(options.body.error).toBe('mfa_required');
    const other = new SoftAuthenticator({ origin: server.url });
    const reg = await pending.post('/api/mfa/webauthn/register', { response: other.register({ challenge: 'AAAA', rp: {} }) });
    expect(reg.status).toBe(401);
    expect(reg.body.error).toBe('mfa_required');
    expect((await client.get('/api/mfa')).body.factors).toHaveLength(1);
  });

  it('token transport gets a new token; a login with remember:true gets its remember-me cookie once full', async () => {
    const { client: viaToken } = await signup(server.url, { transport: 'token' });
    const signedToken = viaToken.bearer;
    const reg = await register(viaToken, new SoftAuthenticator({ origin: server.url }));
    expect(reg.status).toBe(201);
    expect(reg.body.sessionToken).toBeTruthy();
    expect(reg.body.sessionToken).not.toBe(signedToken);
    expect((await viaToken.get('/api/session')).status).toBe(401);
    viaToken.bearer = reg.body.sessionToken;
    expect((await viaToken.get('/api/session')).status).toBe(200);

    const other = await enrollingClient(server.url);
    const { client, res } = await login(server.url, { email: other.email, password: PASSWORD }, { remember: true });
    expect(res.body.status).toBe('enrollment_required');
    expect(client.cookies.has('gatehouse_remember')).toBe(false);
    expect((await register(client, new SoftAuthenticator({ origin: server.url }))).status).toBe(201);
    expect(client.cookies.has('gatehouse_remember')).toBe(true);
  });

  it('a second passkey of a full session brings no recovery codes', async () => {
    const { client } = await enrollingClient(server.url);
    expect((await register(client, new SoftAuthenticator({ origin: server.url }))).status).toBe(201);
    const second = await register(client, new SoftAuthenticator({ origin: server.url }));
    expect(second.status).toBe(201);
    expect(second.body.recoveryCodes).toBeUndefined();
    expect((await client.get('/api/mfa/webauthn')).body.passkeys).toHaveLength(2);
  });

  it('the /enrol page offers a passkey (JavaScript only) and adding one there makes the session full', async () => {
    const b = new FormBrowser(server.url);
    const signUp = await b.go('POST', '/sign-up', { email: uniqueEmail(), password: PASSWORD });
    expect(signUp.location).toBe('/enrol');
    const enrol = await b.go('GET', '/enrol');
    expect(enrol.status).toBe(200);
    expect(enrol.text).toContain('action="/settings/totp/setup"');
    // The button is hidden until /assets/gatehouse.js finds WebAuthn in the browser.
    expect(enrol.text).toMatch(
      /<button[^>]*data-passkey="register"[^>]*data-options="\/api\/mfa\/webauthn\/register\/options"[^>]*hidden>Add a passkey<\/button>/,
    );
    expect(enrol.text).toContain('action="/settings/passkeys"');

    // What the script does: fetch the options with the page's cookie, run the authenticator, post the form.
    const api = new Client(server.url);
    api.cookies = new Map(b.cookies);
    const options = await api.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    const auth = new SoftAuthenticator({ origin: server.url });
    const added = await b.go('POST', '/settings/passkeys', {
      _csrf: csrfIn(enrol.text),
      response: JSON.stringify(auth.register(options.body)),
    });
    expect(added.status).toBe(200);
    expect(added.text).toContain('id="recovery-codes"');
    expect((await b.go('GET', '/settings')).status).toBe(200);
  });

  it('the passkey page of an enrolling session cancels back to /enrol', async () => {
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-up', { email: uniqueEmail(), password: PASSWORD });
    const enrol = await b.go('GET', '/enrol');
    const page = await b.go('POST', '/settings/passkeys/new', { _csrf: csrfIn(enrol.text) });
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/enrol"');
    const bad = await b.go('POST', '/settings/passkeys', { _csrf: csrfIn(enrol.text), response: '{"id":"x"}' });
    expect(bad.status).toBe(400);
    expect((await b.go('GET', '/settings')).location).toBe('/enrol');
  });
});

describe('passkey registration freshness (GATEHOUSE_STEP_UP_MAX_AGE=1)', () => {
  let full: TestServer;
  let enrolling: TestServer;
  beforeAll(async () => {
    [full, enrolling] = await Promise.all([
      startFastServer({ GATEHOUSE_STEP_UP_MAX_AGE: '1' }),
      startFastServer({ GATEHOUSE_STEP_UP_MAX_AGE: '1', GATEHOUSE_MFA_REQUIRED: 'all' }),
    ]);
  });
  afterAll(async () => {
    await full?.close();
    await enrolling?.close();
  });

  it('an account with a factor: options and registration stay ★ at the moment of registration (a stale session steps up)', async () => {
    const account = await signupWithTotp(full.url);
    const auth = new SoftAuthenticator({ origin: full.url });
    const options = await account.client.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    await sleep(1_300);
    const reg = await account.client.post('/api/mfa/webauthn/register', { response: auth.register(options.body) });
    expect(reg.status).toBe(403);
    expect(reg.body.error).toBe('step_up_required');
    expect((await account.client.post('/api/mfa/webauthn/register/options')).body.error).toBe('step_up_required');
    // Legitimate: after a step-up the same set-up completes, as an additional factor.
    expect((await account.client.post('/api/auth/step-up', { method: 'totp', code: account.totp.next() })).status).toBe(200);
    const again = await account.client.post('/api/mfa/webauthn/register', { response: auth.register(options.body) });
    expect(again.status).toBe(201);
    expect(again.body.recoveryCodes).toBeUndefined();
  });

  it('a full session of an account without a factor: the first passkey completes the set-up it began while fresh', async () => {
    const account = await signup(full.url);
    const auth = new SoftAuthenticator({ origin: full.url });
    const options = await account.client.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    await sleep(1_300);
    const reg = await account.client.post('/api/mfa/webauthn/register', { response: auth.register(options.body) });
    expect(reg.status).toBe(201);
    expect(reg.body.aal).toBe(2);
    expect(reg.body.recoveryCodes).toHaveLength(10);
  });

  it('an enrolling session: the options need a fresh password check; the registration then completes like a TOTP confirmation', async () => {
    const { client } = await enrollingClient(enrolling.url);
    const auth = new SoftAuthenticator({ origin: enrolling.url });
    const options = await client.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    await sleep(1_300);
    const stale = await client.post('/api/mfa/webauthn/register/options');
    expect(stale.status).toBe(403);
    expect(stale.body.error).toBe('step_up_required');
    // The challenge issued while fresh is still the session's (the stale call issued none).
    const reg = await client.post('/api/mfa/webauthn/register', { response: auth.register(options.body) });
    expect(reg.status).toBe(201);
    expect(reg.body.aal).toBe(2);
  });
});
