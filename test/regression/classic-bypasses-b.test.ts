/**
 * Seed regression suite, part B: the classic MFA-bypass write-up, step (2).
 * Each test asserts that the attack fails against Gatehouse AND that the legitimate
 * flow still works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...FAST_ENV, GATEHOUSE_TRUSTED_DEVICE_DAYS: '30' });
});
afterAll(async () => server?.close());

describe('classic bypasses (B)', () => {
  it('(2) a remember-me cookie restores a session without MFA', async () => {
    const victim = await signupWithTotp(server.url, { email: uniqueEmail('seed2') });
    // Legitimate: the victim logs in with "remember me" and completes the second factor.
    const browser = new Client(server.url);
    const login = await browser.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true });
    expect(login.status).toBe(202);
    expect(browser.cookies.has('gatehouse_remember')).toBe(false); // not before the factor
    const verify = await browser.post('/api/auth/mfa/verify', { method: 'totp', code: victim.totp.next() });
    expect(verify.status).toBe(200);
    const token = browser.cookies.get('gatehouse_remember');
    expect(token).toBeTruthy();

    // Attack: the remember-me cookie alone (stolen, or the victim's own browser after the
    // session ended) must not give an authenticated session without the second factor.
    const attacker = new Client(server.url);
    attacker.cookies.set('gatehouse_remember', token!);
    for (const [method, path, body] of [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['GET', '/api/account/transactions'],
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 500 }],
      ['POST', '/api/account/password', { currentPassword: PASSWORD, newPassword: 'attacker chosen phrase 99' }],
    ] as const) {
      const r = await attacker.req(method, path, { json: body });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.body.error).toBe('mfa_required');
    }
    // Guessing codes in that pending session ends it (the per-session limit).
    for (let i = 0; i < 4; i++) {
      expect((await attacker.post('/api/auth/mfa/verify', { method: 'totp', code: '000000' })).status).toBe(401);
    }
    expect((await attacker.post('/api/auth/mfa/verify', { method: 'totp', code: '000000' })).status).toBe(429);
    expect((await attacker.get('/api/session')).status).toBe(401);

    // Nor does it raise a trusted-device or token-transport login: bearer use of the
    // remember-me secret is not a session.
    const bearer = await fetch(`${server.url}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(401);

    // The attacker used the token first, so the owner's copy is now a replay: the chain
    // is revoked and the owner must sign in again (theft detected).
    const owner = browser.only('gatehouse_remember');
    const pending = await owner.get('/api/session');
    expect(pending.status).toBe(401);
    // Legitimate path: a new remembered login restores a pending session later, and the
    // second factor completes it.
    const relogin = new Client(server.url);
    expect((await relogin.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true })).status).toBe(202);
    expect((await relogin.post('/api/auth/mfa/verify', { method: 'recovery_code', code: victim.recoveryCodes[0] })).status).toBe(200);
    const later = relogin.only('gatehouse_remember');
    const restored = await later.get('/api/session');
    expect(restored.status).toBe(401);
    expect(restored.body.error).toBe('mfa_required');
    const done = await later.post('/api/auth/mfa/verify', { method: 'totp', code: victim.totp.next() });
    expect(done.status).toBe(200);
    expect(done.body.aal).toBe(2);
    expect((await later.get('/api/session')).status).toBe(200);
  });
});
