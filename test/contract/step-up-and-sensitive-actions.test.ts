import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client,
  FAST,
  Totp,
  expectError,
  expectIso,
  login,
  loginFull,
  mfaUser,
  signup,
  sleep,
  strongPassword,
  takeRecovery,
  uniqueEmail,
  type MfaUser,
  type User,
  currentStep,
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
    const v = await c.post(
      '/api/auth/mfa/verify',
      { method: 'recovery_code', code: takeRecovery(u) },
      { bearer: l.body.sessionToken, noCookies: true },
    );
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

  it("DELETE /api/mfa/totp/:id → 204 and the account has no factor; another account's factor id is 404", async () => {
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

  it('password change revokes other pending sessions too', async () => {
    const u = await mfaUser(srv.url, 'pwcpend');
    const p = await login(srv.url, u);
    expect(p.res.status).toBe(202);
    expect((await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: strongPassword() })).status).toBe(200);
    expectError(
      await p.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) }),
      401,
      'no_pending_authentication',
    );
  });

  it('password change with a wrong current password is refused', async () => {
    const u = await signup(srv.url, 'pwcw');
    const r = await u.client.post('/api/account/password', { currentPassword: 'Wrong!pass123', newPassword: strongPassword() });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect((await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(200);
  });
});

describe('assurance edges', () => {
  let srv: TestServer;
  let all: TestServer;
  beforeAll(async () => {
    [srv, all] = await Promise.all([
      startTestServer({ ...FAST, GATEHOUSE_LOCKOUT_SECONDS: '60' }),
      startTestServer({ ...FAST, GATEHOUSE_MFA_REQUIRED: 'all' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([srv?.close(), all?.close()]);
  });

  describe.concurrent('assurance edges: token replacement, freshness, lockout inputs, at-rest secrets, enrolling', () => {
    it('reauth replaces the session token', async () => {
      const u = await signup(srv.url, 'rr');
      const before = u.client.clone();
      const r = await u.client.post('/api/auth/reauth', { password: u.password });
      expect(r.status).toBe(200);
      expect((await u.client.get('/api/session')).status).toBe(200);
      expectError(await before.get('/api/session'), 401, 'unauthenticated');
    });
    it('reauth with token transport returns the new sessionToken', async () => {
      const u = await signup(srv.url, 'rrt');
      const c = new Client(srv.url);
      const l = await c.post('/api/auth/login', { email: u.email, password: u.password, transport: 'token' });
      const r = await c.post('/api/auth/reauth', { password: u.password }, { bearer: l.body.sessionToken, noCookies: true });
      expect(r.status, r.text).toBe(200);
      expect(typeof r.body.sessionToken).toBe('string');
    });
    it('a password-fresh session stops being fresh once another session adds a factor', async () => {
      const u = await signup(srv.url, 'fa');
      const s1 = (await login(srv.url, u)).client;
      const m = await (await import('./client.js')).enrolTotp(u);
      const r = await s1.post('/api/tokens', { name: 'x', scopes: [] });
      expectError(r, 403, 'step_up_required');
      void m;
    });
    it('wrong step-up codes count toward the account lockout', async () => {
      const u = await mfaUser(srv.url, 'sul');
      const c = await loginFull(srv.url, u);
      for (let i = 0; i < 10; i++) await c.post('/api/auth/step-up', { method: 'totp', code: u.totp.wrong() });
      const { client } = await login(srv.url, u);
      expectError(await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) }), 429, 'too_many_attempts');
    });
    it('while locked, a correct step-up code also gets 429', async () => {
      const u = await mfaUser(srv.url, 'sul2');
      const c = await loginFull(srv.url, u);
      for (let s = 0; s < 3; s++) {
        const { client } = await login(srv.url, u);
        for (let i = 0; i < 4; i++) await client.post('/api/auth/mfa/verify', { method: 'totp', code: u.totp.wrong() });
      }
      expectError(await c.post('/api/auth/step-up', { method: 'recovery_code', code: takeRecovery(u) }), 429, 'too_many_attempts');
    });
    it('wrong reauth passwords count toward the password lockout', async () => {
      const u = await signup(srv.url, 'ral');
      for (let i = 0; i < 10; i++) await u.client.post('/api/auth/reauth', { password: `Wrong!${i}abcdefg` });
      expectError(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }), 429, 'too_many_attempts');
    });
    it('wrong current passwords count toward the password lockout', async () => {
      const u = await signup(srv.url, 'cpl');
      for (let i = 0; i < 10; i++)
        await u.client.post('/api/account/password', { currentPassword: `Wrong!${i}abcdefg`, newPassword: strongPassword() });
      expectError(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }), 429, 'too_many_attempts');
    });
    it('login without cookies from a foreign origin: either allowed or csrf, never a session', async () => {
      const u = await signup(srv.url, 'lcsrf');
      const c = new Client(srv.url);
      const r = await c.post('/api/auth/login', { email: u.email, password: u.password }, { headers: { origin: 'https://evil.example' } });
      // Interpretation: the contract requires csrf for cookie-authenticated requests only and is silent
      // on anonymous ones; Gatehouse also refuses cross-site anonymous state changes (login CSRF).
      if (r.status === 200) return;
      expectError(r, 403, 'csrf');
      expectError(await c.get('/api/session'), 401, 'unauthenticated');
      expect((await c.post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(200);
    });
    it('TOTP codes two steps away are refused', async () => {
      const u = await signup(srv.url, 'drift');
      const s = await u.client.post('/api/mfa/totp/setup');
      const t = new Totp(s.body.secret);
      const cur = currentStep();
      expectError(await u.client.post('/api/mfa/totp/confirm', { code: t.at(cur + 3) }), 401, 'invalid_code');
      expectError(await u.client.post('/api/mfa/totp/confirm', { code: t.at(cur - 3) }), 401, 'invalid_code');
      const uri = new URL(s.body.otpauthUri);
      for (const [k, v] of [
        ['algorithm', 'SHA1'],
        ['digits', '6'],
        ['period', '30'],
      ]) {
        const got = uri.searchParams.get(k!);
        if (got !== null) expect(got.toUpperCase()).toBe(v);
      }
    });
    it('secrets at rest: no recovery code, TOTP secret or remember token in plaintext in the data dir', async () => {
      const u = await mfaUser(srv.url, 'rest');
      const { client, res } = await login(srv.url, u, { remember: true });
      await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
      const rem = client.jar.map.get('gatehouse_remember')?.value;
      await sleep(300);
      const blobs = fs
        .readdirSync(srv.dataDir)
        .filter((f) => fs.statSync(path.join(srv.dataDir, f)).isFile())
        .map((f) => fs.readFileSync(path.join(srv.dataDir, f)));
      const needles = [u.totp.secret, ...u.recovery, ...u.recovery.map((c) => c.replace(/[\s-]/g, '')), u.totp.key.toString('hex')];
      if (rem) needles.push(rem);
      for (const n of needles) for (const b of blobs) expect(b.includes(Buffer.from(n)), n).toBe(false);
      for (const b of blobs) expect(b.includes(u.totp.key)).toBe(false);
      void res;
    });
    it('enrolling: token transport carries sessionToken; confirm returns a new one; remember:true is issued when full', async () => {
      const c = new Client(all.url);
      const email = uniqueEmail('enr');
      const password = strongPassword();
      expect((await c.post('/api/auth/signup', { email, password })).status).toBe(201);
      const t = await new Client(all.url).post('/api/auth/login', { email, password, transport: 'token' });
      expect(t.status).toBe(202);
      expect(typeof t.body.sessionToken).toBe('string');
      const b = new Client(all.url);
      const s = await b.post('/api/mfa/totp/setup', undefined, { bearer: t.body.sessionToken, noCookies: true });
      expect(s.status, s.text).toBe(200);
      const tt = new Totp(s.body.secret);
      const cf = await b.post('/api/mfa/totp/confirm', { code: tt.next() }, { bearer: t.body.sessionToken, noCookies: true });
      expect(cf.status, cf.text).toBe(200);
      expect(typeof cf.body.sessionToken).toBe('string');
      expectError(await b.get('/api/session', { bearer: t.body.sessionToken, noCookies: true }), 401, 'unauthenticated');
      expect((await b.get('/api/session', { bearer: cf.body.sessionToken, noCookies: true })).status).toBe(200);
    });
    it('enrolling with remember:true gets the remember-me cookie once enrolment makes it full', async () => {
      const c = new Client(all.url);
      const email = uniqueEmail('enrr');
      const password = strongPassword();
      expect((await new Client(all.url).post('/api/auth/signup', { email, password })).status).toBe(201);
      const l = await c.post('/api/auth/login', { email, password, remember: true });
      expect(l.status).toBe(202);
      const s = await c.post('/api/mfa/totp/setup');
      const cf = await c.post('/api/mfa/totp/confirm', { code: new Totp(s.body.secret).next() });
      expect(cf.status).toBe(200);
      expect(c.jar.map.has('gatehouse_remember')).toBe(true);
    });
    it('enrolling: other endpoints incl. reauth, step-up, GET /api/mfa are 403 enrollment_required', async () => {
      const c = new Client(all.url);
      const email = uniqueEmail('enro');
      const password = strongPassword();
      expect((await c.post('/api/auth/signup', { email, password })).status).toBe(201);
      for (const [m, p, b] of [
        ['POST', '/api/auth/reauth', { password }],
        ['POST', '/api/auth/step-up', { method: 'totp', code: '123456' }],
        ['GET', '/api/mfa'],
        ['GET', '/api/tokens'],
        ['GET', '/api/account/events'],
        ['POST', '/api/account/email', { email: uniqueEmail('x') }],
      ] as [string, string, unknown?][]) {
        expectError(await c.req(m, p, b), 403, 'enrollment_required');
      }
    });
  });
});
