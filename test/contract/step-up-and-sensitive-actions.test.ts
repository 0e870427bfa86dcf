import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client, FAST, Totp, expectError, expectIso, login, loginFull, mfaUser, signup, sleep, strongPassword, takeRecovery, uniqueEmail, type MfaUser, type User,
} from './client.js';

let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '2', GATEHOUSE_TRANSFER_STEP_UP_CENTS: '1000' });
});
afterAll(async () => {
  await srv?.close();
});

type Call = [string, string, unknown?];
function starCalls(u: { factorId?: string; password: string }): Call[] {
  return [
    ['POST', '/api/tokens', { name: 't', scopes: ['account:read'] }],
    ['POST', '/api/account/email', { email: uniqueEmail('new') }],
    ['POST', '/api/account/password', { currentPassword: u.password, newPassword: strongPassword() }],
    ['POST', '/api/mfa/recovery-codes'],
    ['POST', '/api/mfa/totp/setup'],
    ['DELETE', `/api/mfa/totp/${u.factorId ?? 'nonexistent'}`],
    ['POST', '/api/transfers', { to: 'bob', amountCents: 1000 }],
  ];
}

describe.concurrent('freshness for an account without a second factor', () => {
  it('password entered at signup is fresh; after maxAge ★ actions answer 403 step_up_required {methods, maxAge}', async () => {
    const u = await signup(srv.url, 'nofa');
    const fresh = await u.client.post('/api/transfers', { to: 'bob', amountCents: 1000 });
    expect(fresh.status, fresh.text).toBe(201);
    await sleep(2200);
    for (const [m, p, b] of starCalls(u).filter(([, p]) => !p.includes('/api/mfa/totp/nonexistent') && !p.includes('recovery-codes'))) {
      const r = await u.client.req(m, p, b);
      expectError(r, 403, 'step_up_required');
      expect(r.body.maxAge).toBe(2);
      expect(Array.isArray(r.body.methods)).toBe(true);
      expect(r.body.methods.length).toBeGreaterThan(0);
    }
    // non-★ actions still work
    expect((await u.client.get('/api/account')).status).toBe(200);
    expect((await u.client.get('/api/sessions')).status).toBe(200);
    expect((await u.client.post('/api/transfers', { to: 'bob', amountCents: 999 })).status).toBe(201);
  });

  it('reauth {password} → 200 and makes ★ actions possible again; a wrong password does not', async () => {
    const u = await signup(srv.url, 'reauth');
    await sleep(2200);
    const bad = await u.client.post('/api/auth/reauth', { password: 'Wrong!pass123' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expectError(await u.client.post('/api/tokens', { name: 't', scopes: [] }), 403, 'step_up_required');
    const ok = await u.client.post('/api/auth/reauth', { password: u.password });
    expect(ok.status, ok.text).toBe(200);
    const t = await u.client.post('/api/tokens', { name: 't', scopes: [] });
    expect(t.status, t.text).toBe(201);
  });

  it('login counts as entering the password', async () => {
    const u = await signup(srv.url, 'loginfresh');
    await sleep(2200);
    const c = new Client(srv.url);
    expect((await c.post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(200);
    expect((await c.post('/api/tokens', { name: 't', scopes: [] })).status).toBe(201);
  });

  it('TOTP setup with no factor yet needs a fresh password', async () => {
    const u = await signup(srv.url, 'setupfresh');
    await sleep(2200);
    expectError(await u.client.post('/api/mfa/totp/setup'), 403, 'step_up_required');
    expect((await u.client.post('/api/auth/reauth', { password: u.password })).status).toBe(200);
    expect((await u.client.post('/api/mfa/totp/setup')).status).toBe(200);
  });
});

describe.concurrent('freshness for an account with a second factor', () => {
  let u: MfaUser;
  beforeAll(async () => {
    u = await mfaUser(srv.url, 'mfa');
  });

  it('after maxAge every ★ action answers step_up_required (methods include totp); the password is not enough', async () => {
    const c = await loginFull(srv.url, u);
    await sleep(2200);
    for (const [m, p, b] of starCalls(u)) {
      const r = await c.req(m, p, b);
      expectError(r, 403, 'step_up_required');
      expect(r.body.maxAge).toBe(2);
      expect(r.body.methods).toContain('totp');
    }
    const re = await c.post('/api/auth/reauth', { password: u.password });
    expect(re.status).toBeLessThan(500);
    expectError(await c.post('/api/tokens', { name: 't', scopes: [] }), 403, 'step_up_required');
  });

  it('step-up → 200 {aal:2, mfaAt}, token replaced, ★ actions allowed; wrong code is 401 invalid_code', async () => {
    const c = await loginFull(srv.url, u);
    await sleep(2200);
    expectError(await c.post('/api/auth/step-up', { method: 'recovery_code', code: 'zzzz-zzzz-zzzz-zzzz' }), 401, 'invalid_code');
    expectError(await c.post('/api/auth/step-up', { method: 'totp', code: u.totp.wrong() }), 401, 'invalid_code');
    const before = c.clone();
    const s = await c.post('/api/auth/step-up', { method: 'recovery_code', code: takeRecovery(u) });
    expect(s.status, s.text).toBe(200);
    expect(s.body.aal).toBe(2);
    expectIso(s.body.mfaAt);
    expect(Date.now() - Date.parse(s.body.mfaAt)).toBeLessThan(5000);
    expectError(await before.get('/api/session'), 401, 'unauthenticated');
    const t = await c.post('/api/tokens', { name: 't', scopes: ['account:read'] });
    expect(t.status, t.text).toBe(201);
  });

  it('step-up with TOTP works too', async () => {
    const v = await mfaUser(srv.url, 'totpstep');
    await sleep(2200);
    const code = v.totp.nextOrNull();
    if (code === null) return;
    const s = await v.client.post('/api/auth/step-up', { method: 'totp', code });
    expect(s.status, s.text).toBe(200);
    expect((await v.client.post('/api/transfers', { to: 'bob', amountCents: 5000 })).status).toBe(201);
  });

  it('step-up with token transport returns a new sessionToken', async () => {
    const c = new Client(srv.url);
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password, transport: 'token' });
    const v = await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) }, { bearer: l.body.sessionToken, noCookies: true });
    const t1 = v.body.sessionToken as string;
    const s = await c.post('/api/auth/step-up', { method: 'recovery_code', code: takeRecovery(u) }, { bearer: t1, noCookies: true });
    expect(s.status, s.text).toBe(200);
    expect(typeof s.body.sessionToken).toBe('string');
    expect(s.body.sessionToken).not.toBe(t1);
    expectError(await c.get('/api/session', { bearer: t1, noCookies: true }), 401, 'unauthenticated');
    expect((await c.get('/api/session', { bearer: s.body.sessionToken, noCookies: true })).status).toBe(200);
  });

  it('step-up without a session is 401 unauthenticated', async () => {
    expectError(await new Client(srv.url).post('/api/auth/step-up', { method: 'totp', code: '123456' }), 401, 'unauthenticated');
  });
});

describe.concurrent('sensitive actions when fresh', () => {
  it('recovery-code regeneration: 10 new codes; all earlier codes stop working', async () => {
    const u = await mfaUser(srv.url, 'regen');
    const r = await u.client.post('/api/mfa/recovery-codes');
    expect(r.status, r.text).toBe(200);
    expect(r.body.recoveryCodes).toHaveLength(10);
    const { client } = await login(srv.url, u);
    expectError(await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: u.recovery[0] }), 401, 'invalid_code');
    expect((await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: r.body.recoveryCodes[0] })).status).toBe(200);
  });

  it('DELETE /api/mfa/totp/:id → 204 and the account has no factor; another account\'s factor id is 404', async () => {
    const u = await mfaUser(srv.url, 'del');
    const other = await mfaUser(srv.url, 'delother');
    expectError(await u.client.del(`/api/mfa/totp/${other.factorId}`), 404, 'not_found');
    expectError(await u.client.del(`/api/mfa/totp/does-not-exist`), 404, 'not_found');
    expect((await u.client.del(`/api/mfa/totp/${u.factorId}`)).status).toBe(204);
    expect((await u.client.get('/api/account')).body.mfaEnabled).toBe(false);
    const l = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password });
    expect(l.status).toBe(200);
    // other account's factor intact
    expect((await other.client.get('/api/mfa')).body.factors).toHaveLength(1);
  });

  it('adding a second TOTP factor returns no recovery codes', async () => {
    const u = await mfaUser(srv.url, 'second');
    const s = await u.client.post('/api/mfa/totp/setup');
    expect(s.status, s.text).toBe(200);
    const t2 = new Totp(s.body.secret);
    const c = await u.client.post('/api/mfa/totp/confirm', { code: t2.next() });
    expect(c.status, c.text).toBe(200);
    expect(c.body.recoveryCodes ?? []).toHaveLength(0);
    expect((await u.client.get('/api/mfa')).body.factors).toHaveLength(2);
  });

  it('password change: 200; other sessions revoked, this one kept; weak new password is 400', async () => {
    const u: User = await signup(srv.url, 'pwc');
    const other = await login(srv.url, u);
    expectError(await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: 'short' }), 400, 'weak_password');
    const np = strongPassword();
    const r = await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: np });
    expect(r.status, r.text).toBe(200);
    expect((await u.client.get('/api/session')).status).toBe(200);
    expectError(await other.client.get('/api/session'), 401, 'unauthenticated');
    expect((await new Client(srv.url).post('/api/auth/login', { email: u.email, password: np })).status).toBe(200);
    expectError(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }), 401, 'invalid_credentials');
  });

  it('password change with a wrong current password is refused', async () => {
    const u = await signup(srv.url, 'pwcw');
    const r = await u.client.post('/api/account/password', { currentPassword: 'Wrong!pass123', newPassword: strongPassword() });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect((await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(200);
  });
});
