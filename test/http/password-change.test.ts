/**
 * POST /api/account/password (★): the current password under the account's password
 * limiter, the policy for the new one; all other sessions and every remember-me token
 * are revoked, the current session stays, and `account.password_changed` is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';

const NEW_PASSWORD = 'marble kettle horizon 2024!';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...FAST_ENV, GATEHOUSE_STEP_UP_MAX_AGE: '900' });
});
afterAll(async () => server?.close());

async function login(address: string, password = PASSWORD, remember = false) {
  const b = new Client(server.url);
  const r = await b.post('/api/auth/login', { email: address, password, remember });
  return { b, r };
}

describe('password change', () => {
  it('revokes other sessions and remember-me tokens but keeps the current session', async () => {
    const { email, client: current } = await signup(server.url, { email: uniqueEmail('pw-change') });
    const { b: other } = await login(email);
    const { b: remembered } = await login(email, PASSWORD, true);
    const rememberOnly = remembered.only('gatehouse_remember');
    const native = new Client(server.url);
    const tokenLogin = await native.post('/api/auth/login', { email, password: PASSWORD, transport: 'token' });
    expect(tokenLogin.status).toBe(200);

    const r = await current.post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('password_changed');

    expect((await current.get('/api/session')).status).toBe(200);
    expect((await other.get('/api/session')).status).toBe(401);
    expect((await remembered.get('/api/session')).status).toBe(401);
    expect((await rememberOnly.get('/api/session')).status).toBe(401);
    const bearer = await fetch(`${server.url}/api/session`, { headers: { authorization: `Bearer ${tokenLogin.body.sessionToken}` } });
    expect(bearer.status).toBe(401);

    expect((await login(email)).r.status).toBe(401);
    expect((await login(email, NEW_PASSWORD)).r.status).toBe(200);
    const events = await current.get('/api/account/events');
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('account.password_changed');
  });

  it('refuses a wrong current password, a weak new one, a stale session and a cross-site request', async () => {
    const { email, client: browser } = await signup(server.url, { email: uniqueEmail('pw-refuse') });
    const wrong = await browser.post('/api/account/password', { currentPassword: 'not my password', newPassword: NEW_PASSWORD });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_credentials');
    const weak = await browser.post('/api/account/password', { currentPassword: PASSWORD, newPassword: 'password' });
    expect(weak.status).toBe(400);
    expect(weak.body.error).toBe('weak_password');
    const bad = await browser.post('/api/account/password', { currentPassword: PASSWORD });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
    const extra = await browser.post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, email: 'x@y.z' });
    expect(extra.status).toBe(400);
    const csrf = await browser.req('POST', '/api/account/password', {
      json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
      headers: { origin: 'https://evil.example' },
    });
    expect(csrf.status).toBe(403);
    expect(csrf.body.error).toBe('csrf');
    const anonymous = await new Client(server.url).post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(anonymous.status).toBe(401);
    // A remember-me session is never fresh: the password must be re-entered first.
    const { b: remembered } = await login(email, PASSWORD, true);
    const restored = remembered.only('gatehouse_remember');
    expect((await restored.get('/api/session')).status).toBe(200);
    const stale = await restored.post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(stale.status).toBe(403);
    expect(stale.body.error).toBe('step_up_required');
    expect((await restored.post('/api/auth/reauth', { password: PASSWORD })).status).toBe(200);
    expect((await restored.post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })).status).toBe(200);
    expect((await restored.get('/api/session')).status).toBe(200);
  });

  it('counts wrong current passwords in the account’s password limiter', async () => {
    const { email, client: browser } = await signup(server.url, { email: uniqueEmail('pw-limit') });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push(
        (await browser.post('/api/account/password', { currentPassword: `wrong ${i} password`, newPassword: NEW_PASSWORD })).status,
      );
    }
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses[10]).toBe(429);
    const locked = await browser.post('/api/account/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(locked.status).toBe(429);
    expect(locked.body.retryAfter).toBeGreaterThan(0);
    // The same lock holds for login.
    expect((await login(email)).r.status).toBe(429);
  });
});
