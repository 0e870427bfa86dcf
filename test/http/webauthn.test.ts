/** WebAuthn / passkeys over the JSON API, with a software authenticator. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { SoftAuthenticator } from './webauthn-soft-authenticator.js';
import { Client } from '../helpers/http-client.js';
import { type Account, login, signup, signupWithTotp } from '../helpers/accounts.js';

async function addPasskey(account: Account, authenticator: SoftAuthenticator, client: Client = account.client) {
  const options = await client.post('/api/mfa/webauthn/register/options');
  expect(options.status).toBe(200);
  const res = await client.post('/api/mfa/webauthn/register', { response: authenticator.register(options.body), label: 'Test key' });
  expect(res.status).toBe(201);
  return res;
}

/** Logs in with the password and completes the second factor with the passkey. */
async function loginWithPasskey(base: string, account: Account, authenticator: SoftAuthenticator) {
  const { client, res } = await login(base, account);
  expect(res.status).toBe(202);
  expect(res.body.methods).toContain('webauthn');
  const options = await client.post('/api/auth/webauthn/options');
  expect(options.status).toBe(200);
  const verify = await client.post('/api/auth/mfa/verify', { method: 'webauthn', response: authenticator.authenticate(options.body) });
  return { client, verify, options: options.body };
}

describe('WebAuthn as a second factor', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer();
  });
  afterAll(() => server.close());

  it('registers a passkey (★), lists it in methods, and completes a login with it', async () => {
    const account = await signup(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    const reg = await addPasskey(account, auth);
    expect(reg.body.recoveryCodes).toHaveLength(10);
    expect(reg.body.amr).toEqual(expect.arrayContaining(['hwk', 'user']));
    const mfa = await account.client.get('/api/mfa');
    expect(mfa.body.factors.map((f: { type: string }) => f.type)).toEqual(['webauthn']);

    const { client, verify } = await loginWithPasskey(server.url, account, auth);
    expect(verify.status).toBe(200);
    expect(verify.body.aal).toBe(2);
    expect(verify.body.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'user', 'mfa']));
    expect((await client.get('/api/session')).status).toBe(200);
  });

  it('refuses registration without a fresh factor check, and a pending session cannot ask for it', async () => {
    const account = await signupWithTotp(server.url);
    const { client } = await login(server.url, account);
    const pending = await client.post('/api/mfa/webauthn/register/options');
    expect(pending.status).toBe(401);
    expect(pending.body.error).toBe('mfa_required');
  });

  it('challenges are single-use and bound to the session that asked for them', async () => {
    const account = await signup(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    await addPasskey(account, auth);

    const first = await loginWithPasskey(server.url, account, auth);
    expect(first.verify.status).toBe(200);

    // The same challenge again, from a new pending session: refused.
    const { client: second } = await login(server.url, account);
    const replay = await second.post('/api/auth/mfa/verify', { method: 'webauthn', response: auth.authenticate(first.options) });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_code');

    // A challenge issued to session A, answered from session B: refused.
    const { client: a } = await login(server.url, account);
    const { client: b } = await login(server.url, account);
    const optionsA = await a.post('/api/auth/webauthn/options');
    await b.post('/api/auth/webauthn/options');
    const crossed = await b.post('/api/auth/mfa/verify', { method: 'webauthn', response: auth.authenticate(optionsA.body) });
    expect(crossed.status).toBe(401);
    // ...and A's own challenge still works once, but not twice.
    const assertion = auth.authenticate(optionsA.body);
    expect((await a.post('/api/auth/mfa/verify', { method: 'webauthn', response: assertion })).status).toBe(200);
    const again = await a.post('/api/auth/step-up', { method: 'webauthn', response: assertion });
    expect(again.status).toBe(401);
  });

  it('refuses a sign counter that goes backwards, and records it', async () => {
    const account = await signup(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    await addPasskey(account, auth);
    const ok = await loginWithPasskey(server.url, account, auth);
    expect(ok.verify.status).toBe(200);
    const { client } = await login(server.url, account);
    const options = await client.post('/api/auth/webauthn/options');
    const cloned = await client.post('/api/auth/mfa/verify', { method: 'webauthn', response: auth.authenticate(options.body, 1) });
    expect(cloned.status).toBe(401);
    const events = await ok.client.get('/api/account/events');
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('mfa.webauthn_sign_count_regression');
  });

  it('rejects malformed WebAuthn bodies with 400, never 5xx', async () => {
    const account = await signup(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    await addPasskey(account, auth);
    const { client } = await login(server.url, account);
    for (const body of [{ method: 'webauthn' }, { method: 'webauthn', response: 'x' }, { method: 'webauthn', response: {}, code: '1' }]) {
      const res = await client.post('/api/auth/mfa/verify', body);
      expect(res.status).toBe(400);
    }
    const junk = await client.post('/api/auth/mfa/verify', {
      method: 'webauthn',
      response: { id: auth.id, response: { clientDataJSON: 'AAAA' } },
    });
    expect(junk.status).toBe(401);
  });

  it('removes a passkey (★); the account then has no second factor', async () => {
    const account = await signup(server.url);
    const reg = await addPasskey(account, new SoftAuthenticator({ origin: server.url }));
    const del = await account.client.delete(`/api/mfa/webauthn/${reg.body.factorId}`);
    expect(del.status).toBe(204);
    expect((await account.client.get('/api/mfa')).body.factors).toEqual([]);
  });
});

describe('GATEHOUSE_STEP_UP_PHISHING_RESISTANT=true', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer({ GATEHOUSE_STEP_UP_PHISHING_RESISTANT: 'true' });
  });
  afterAll(() => server.close());

  it('★ actions need a fresh user-verified passkey check; a TOTP step-up does not count', async () => {
    const account = await signupWithTotp(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    // No passkey yet: the account steps up with what it has, so it can add one.
    await addPasskey(account, auth);

    const { client } = await login(server.url, account);
    const totp = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) });
    expect(totp.status).toBe(200);
    const denied = await client.post('/api/mfa/recovery-codes');
    expect(denied.status).toBe(403);
    expect(denied.body.error).toBe('step_up_required');
    expect(denied.body.methods).toEqual(['webauthn']);

    const options = await client.post('/api/auth/step-up/webauthn/options');
    const stepUp = await client.post('/api/auth/step-up', { method: 'webauthn', response: auth.authenticate(options.body) });
    expect(stepUp.status).toBe(200);
    expect((await client.post('/api/mfa/recovery-codes')).status).toBe(200);

    // A later TOTP step-up does not satisfy the policy on its own behalf...
    const totpStep = await client.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(account.secret, Date.now() + 30_000) });
    expect(totpStep.status).toBe(200);
    // ...but the passkey check is still fresh, so this still passes.
    expect((await client.post('/api/mfa/recovery-codes')).status).toBe(200);
  });

  it('a passkey without user verification is a second factor but not phishing-resistant', async () => {
    const account = await signup(server.url);
    const auth = new SoftAuthenticator({ origin: server.url, userVerified: false });
    await addPasskey(account, auth);
    const { client, verify } = await loginWithPasskey(server.url, account, auth);
    expect(verify.status).toBe(200);
    expect(verify.body.amr).not.toContain('user');
    const denied = await client.post('/api/mfa/recovery-codes');
    expect(denied.status).toBe(403);
    expect(denied.body.error).toBe('step_up_required');
  });
});

describe('GATEHOUSE_STEP_UP_PHISHING_RESISTANT with a short step-up age', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer({ GATEHOUSE_STEP_UP_PHISHING_RESISTANT: 'true', GATEHOUSE_STEP_UP_MAX_AGE: '2' });
  });
  afterAll(() => server.close());

  it('a TOTP step-up after the passkey check went stale does not make the session fresh', async () => {
    const account = await signupWithTotp(server.url);
    const auth = new SoftAuthenticator({ origin: server.url });
    await addPasskey(account, auth);
    const { client, verify } = await loginWithPasskey(server.url, account, auth);
    expect(verify.status).toBe(200);
    expect((await client.post('/api/mfa/recovery-codes')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_200));
    const totpStep = await client.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) });
    expect(totpStep.status).toBe(200);
    const denied = await client.post('/api/mfa/recovery-codes');
    expect(denied.status).toBe(403);
    expect(denied.body.methods).toEqual(['webauthn']);
  });
});
