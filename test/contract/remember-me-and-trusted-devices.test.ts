import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client,
  FAST,
  cookieLifetime,
  expectError,
  login,
  loginFull,
  mfaUser,
  signup,
  strongPassword,
  takeRecovery,
  type Jar,
  parseSetCookie,
  sleep,
  startMailCatcher,
  uniqueEmail,
  type MailCatcher,
} from './client.js';

let srv: TestServer;
let trusted: TestServer;
let short: TestServer;

beforeAll(async () => {
  [srv, trusted, short] = await Promise.all([
    startTestServer({ ...FAST }),
    startTestServer({ ...FAST, GATEHOUSE_TRUSTED_DEVICE_DAYS: '30' }),
    startTestServer({ ...FAST, GATEHOUSE_REMEMBER_DAYS: '2' }),
  ]);
});
afterAll(async () => {
  await Promise.all([srv?.close(), trusted?.close(), short?.close()]);
});

/** Names of persistent cookies living longer than a day and a half. */
function longLived(jar: Jar): string[] {
  return [...jar.map.values()]
    .filter((c) => {
      const l = cookieLifetime(c);
      return Number.isFinite(l) && l > 36 * 3600;
    })
    .map((c) => c.name);
}

/** A client that holds only the given cookie. */
function only(base: string, name: string, value: string): Client {
  const c = new Client(base);
  c.jar.set(name, value);
  return c;
}

describe.concurrent('remember-me', () => {
  it('remember:true sets a long-lived HttpOnly cookie; remember:false does not', async () => {
    const u = await signup(srv.url, 'rm');
    const a = await login(srv.url, u, { remember: true });
    expect(a.res.status).toBe(200);
    const names = longLived(a.client.jar);
    expect(names).toHaveLength(1);
    const ck = a.client.jar.map.get(names[0]!)!;
    expect(ck.attrs['httponly']).toBe(true);
    expect(ck.attrs['path']).toBe('/');
    expect(String(ck.attrs['samesite']).toLowerCase()).toMatch(/^(lax|strict)$/);
    const life = cookieLifetime(ck);
    expect(life).toBeGreaterThan(29 * 86400);
    expect(life).toBeLessThanOrEqual(30 * 86400 + 60);
    const b = await login(srv.url, u, { remember: false });
    expect(longLived(b.client.jar)).toHaveLength(0);
    const c = await login(srv.url, u);
    expect(longLived(c.client.jar)).toHaveLength(0);
  });

  it('GATEHOUSE_REMEMBER_DAYS sets the lifetime', async () => {
    const u = await signup(short.url, 'rmd');
    const a = await login(short.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const life = cookieLifetime(a.client.jar.map.get(name)!);
    expect(life).toBeGreaterThan(1.9 * 86400);
    expect(life).toBeLessThanOrEqual(2 * 86400 + 60);
  });

  it('the cookie alone gives a full aal1 session for an account without a second factor, and rotates', async () => {
    const u = await signup(srv.url, 'rmfull');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const r0 = a.client.jar.get(name)!;
    const c = only(srv.url, name, r0);
    const s = await c.get('/api/session');
    expect(s.status, s.text).toBe(200);
    expect(s.body.aal).toBe(1);
    expect(s.body.user.id).toBe(u.id);
    const r1 = c.jar.get(name);
    expect(r1).toBeDefined();
    expect(r1).not.toBe(r0);
    // the new session works on its own
    expect(c.jar.names().length).toBeGreaterThan(1);
    expect((await c.get('/api/account')).status).toBe(200);
    // and the rotated token alone also works once more
    const d = only(srv.url, name, r1!);
    expect((await d.get('/api/session')).status).toBe(200);
  });

  it('a replayed old token revokes the whole chain', async () => {
    const u = await signup(srv.url, 'rmreplay');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const r0 = a.client.jar.get(name)!;
    const c = only(srv.url, name, r0);
    expect((await c.get('/api/session')).status).toBe(200);
    const r1 = c.jar.get(name)!;
    expect(r1).not.toBe(r0);
    // replay r0
    expectError(await only(srv.url, name, r0).get('/api/session'), 401, 'unauthenticated');
    // r1 is now dead too
    expectError(await only(srv.url, name, r1).get('/api/session'), 401, 'unauthenticated');
  });

  it('for an account with a second factor: issued only once full; the cookie alone gives a pending session (401 mfa_required)', async () => {
    const u = await mfaUser(srv.url, 'rmmfa');
    const c = new Client(srv.url);
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password, remember: true });
    expect(l.status).toBe(202);
    expect(longLived(c.jar)).toHaveLength(0);
    const v = await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
    expect(v.status).toBe(200);
    const name = longLived(c.jar)[0]!;
    expect(name).toBeDefined();
    const d = only(srv.url, name, c.jar.get(name)!);
    expectError(await d.get('/api/account'), 401, 'mfa_required');
    expectError(await d.get('/api/session'), 401, 'mfa_required');
    const v2 = await d.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
    expect(v2.status, v2.text).toBe(200);
    expect(v2.body.aal).toBe(2);
    expect((await d.get('/api/session')).body.aal).toBe(2);
  });

  it('a session restored from remember-me has entered no password: it is not fresh for ★ actions', async () => {
    const u = await signup(srv.url, 'rmfresh');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const c = only(srv.url, name, a.client.jar.get(name)!);
    expect((await c.get('/api/session')).status).toBe(200);
    const r = await c.post('/api/tokens', { name: 't', scopes: [] });
    expectError(r, 403, 'step_up_required');
    expect((await c.post('/api/auth/reauth', { password: u.password })).status).toBe(200);
    expect((await c.post('/api/tokens', { name: 't', scopes: [] })).status).toBe(201);
  });

  it("logout revokes this device's remember-me token", async () => {
    const u = await signup(srv.url, 'rmlogout');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const r0 = a.client.jar.get(name)!;
    expect((await a.client.post('/api/auth/logout')).status).toBe(204);
    expectError(await only(srv.url, name, r0).get('/api/session'), 401, 'unauthenticated');
  });

  it("a password change revokes other devices' remember-me tokens", async () => {
    const u = await signup(srv.url, 'rmpw');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const r0 = a.client.jar.get(name)!;
    const r = await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: strongPassword() });
    expect(r.status).toBe(200);
    expectError(await only(srv.url, name, r0).get('/api/session'), 401, 'unauthenticated');
  });

  it('a remember-me token is tied to its account: logging in as someone else is unaffected', async () => {
    const u = await signup(srv.url, 'rmacct');
    const a = await login(srv.url, u, { remember: true });
    const name = longLived(a.client.jar)[0]!;
    const c = only(srv.url, name, a.client.jar.get(name)!);
    const s = await c.get('/api/session');
    expect(s.body.user.id).toBe(u.id);
  });
});

describe.concurrent('trusted devices', () => {
  it('trustDevice:true marks the browser; a later password login skips the factor; amr shows it; never fresh', async () => {
    const u = await mfaUser(trusted.url, 'td');
    const c = new Client(trusted.url);
    expect((await c.post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(202);
    const v = await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true });
    expect(v.status, v.text).toBe(200);
    const full = await c.get('/api/session');
    const amrVerified: string[] = full.body.amr;
    expect((await c.post('/api/auth/logout')).status).toBe(204);
    // only the trust marker remains
    expectError(await c.get('/api/session'), 401, 'unauthenticated');
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password });
    expect(l.status, l.text).toBe(200);
    expect(l.body.status).toBe('authenticated');
    const s = await c.get('/api/session');
    expect(s.status).toBe(200);
    expect(s.body.amr.join(' ')).not.toBe(amrVerified.join(' '));
    expect(s.body.amr.some((m: string) => /trust|device/i.test(m))).toBe(true);
    expect(s.body.mfaAt).toBeNull();
    // never fresh for ★
    const t = await c.post('/api/tokens', { name: 't', scopes: [] });
    expectError(t, 403, 'step_up_required');
    expectError(await c.post('/api/mfa/recovery-codes'), 403, 'step_up_required');
    // step-up makes it fresh
    expect((await c.post('/api/auth/step-up', { method: 'recovery_code', code: takeRecovery(u) })).status).toBe(200);
    expect((await c.post('/api/tokens', { name: 't', scopes: [] })).status).toBe(201);
  });

  it('the trust is per browser and per account; a wrong password is still refused', async () => {
    const u = await mfaUser(trusted.url, 'td2');
    const v2 = await mfaUser(trusted.url, 'td3');
    const c = new Client(trusted.url);
    await c.post('/api/auth/login', { email: u.email, password: u.password });
    expect((await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true })).status).toBe(200);
    await c.post('/api/auth/logout');
    expect((await new Client(trusted.url).post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(202);
    expect((await c.post('/api/auth/login', { email: v2.email, password: v2.password })).status).toBe(202);
    await c.post('/api/auth/logout');
    expectError(await c.post('/api/auth/login', { email: u.email, password: 'Wrong!pass123' }), 401, 'invalid_credentials');
  });

  it('a trusted device does not turn a remember-me login into a full session', async () => {
    const u = await mfaUser(trusted.url, 'td4');
    const c = new Client(trusted.url);
    await c.post('/api/auth/login', { email: u.email, password: u.password, remember: true });
    expect((await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true })).status).toBe(200);
    const rem = longLived(c.jar);
    expect(rem.length).toBeGreaterThanOrEqual(2);
    // drop the session cookie(s); keep remember-me and trust cookies
    for (const n of c.jar.names()) if (!rem.includes(n)) c.jar.delete(n);
    expectError(await c.get('/api/session'), 401, 'mfa_required');
  });

  it('with GATEHOUSE_TRUSTED_DEVICE_DAYS=0 trustDevice is ignored', async () => {
    const u = await mfaUser(srv.url, 'td0');
    const c = await loginFull(srv.url, u, {}, new Client(srv.url));
    await c.post('/api/auth/logout');
    const c2 = new Client(srv.url);
    await c2.post('/api/auth/login', { email: u.email, password: u.password });
    expect((await c2.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true })).status).toBe(200);
    await c2.post('/api/auth/logout');
    expect((await c2.post('/api/auth/login', { email: u.email, password: u.password })).status).toBe(202);
  });
});

describe('limits, remember-me and cookie edges', () => {
  let srv: TestServer;
  let idle: TestServer;
  let trusted: TestServer;
  let mail: MailCatcher;
  beforeAll(async () => {
    mail = await startMailCatcher();
    [srv, idle, trusted] = await Promise.all([
      startTestServer({ ...FAST, GATEHOUSE_SMTP_URL: mail.url }),
      startTestServer({ ...FAST, GATEHOUSE_SESSION_IDLE_TTL: '1' }),
      startTestServer({ ...FAST, GATEHOUSE_TRUSTED_DEVICE_DAYS: '7', GATEHOUSE_PUBLIC_URL: 'https://gh.example' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([srv?.close(), idle?.close(), trusted?.close()]);
    await mail?.close();
  });

  describe.concurrent('limits, remember-me and cookie edges', () => {
    it('per-address password limit: many wrong passwords from one address eventually get 429, X-Forwarded-For does not help', async () => {
      const s = await startTestServer({ ...FAST });
      try {
        let got: any;
        for (let i = 0; i < 400 && !got; i++) {
          const r = await new Client(s.url).post(
            '/api/auth/login',
            { email: uniqueEmail('spray'), password: `Wrong!${i}abcdefg` },
            { headers: { 'x-forwarded-for': `10.0.${i >> 8}.${i & 255}` } },
          );
          if (r.status === 429) got = r;
          else expect(r.status).toBe(401);
        }
        expect(got).toBeDefined();
        expectError(got, 429, 'too_many_attempts');
      } finally {
        await s.close();
      }
    });
    it('unknown and known accounts answer the same after 11 wrong passwords', async () => {
      const u = await signup(srv.url, 'enum');
      const ghost = uniqueEmail('ghost');
      let a: any, b: any;
      for (let i = 0; i < 11; i++) {
        a = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: `Wrong!${i}abcdefg` });
        b = await new Client(srv.url).post('/api/auth/login', { email: ghost, password: `Wrong!${i}abcdefg` });
      }
      expect(b.status).toBe(a.status);
      expect(b.body.error).toBe(a.body.error);
    });
    it('forgot is limited per address with 429 + Retry-After', async () => {
      const s = await startTestServer({ ...FAST });
      try {
        let got: any;
        for (let i = 0; i < 200 && !got; i++) {
          const r = await new Client(s.url).post('/api/auth/password/forgot', { email: uniqueEmail('fl') });
          if (r.status === 429) got = r;
          else expect(r.status).toBe(202);
        }
        expect(got).toBeDefined();
        expectError(got, 429, 'too_many_attempts');
      } finally {
        await s.close();
      }
    });
    it('remember-me restores a session whose cookie idled out', async () => {
      const u = await signup(idle.url, 'idr');
      const { client } = await login(idle.url, u, { remember: true });
      await sleep(1600);
      const r = await client.get('/api/session');
      expect(r.status, r.text).toBe(200);
      expect(r.body.aal).toBe(1);
    });
    it('remember-me for a second-factor account rotates too, and a replay revokes the chain', async () => {
      const u = await mfaUser(srv.url, 'rmr');
      const c = new Client(srv.url);
      await c.post('/api/auth/login', { email: u.email, password: u.password, remember: true });
      await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
      const r0 = c.jar.get('gatehouse_remember')!;
      const d = new Client(srv.url);
      d.jar.set('gatehouse_remember', r0);
      expectError(await d.get('/api/session'), 401, 'mfa_required');
      const r1 = d.jar.get('gatehouse_remember');
      expect(r1).toBeDefined();
      expect(r1).not.toBe(r0);
      const e = new Client(srv.url);
      e.jar.set('gatehouse_remember', r0);
      expectError(await e.get('/api/session'), 401, 'unauthenticated');
      const f = new Client(srv.url);
      f.jar.set('gatehouse_remember', r1!);
      expectError(await f.get('/api/session'), 401, 'unauthenticated');
    });
    it('trusted-device and remember-me cookies carry the same flags (Secure on https)', async () => {
      const u = await mfaUser(trusted.url, 'tdf');
      const c = new Client(trusted.url);
      await c.post('/api/auth/login', { email: u.email, password: u.password, remember: true });
      const v = await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true });
      expect(v.setCookies.length).toBeGreaterThanOrEqual(3);
      for (const raw of v.setCookies) {
        const ck = parseSetCookie(raw);
        expect(ck.attrs['httponly'], raw).toBe(true);
        expect(ck.attrs['secure'], raw).toBe(true);
        expect(ck.attrs['path'], raw).toBe('/');
        expect(String(ck.attrs['samesite']).toLowerCase(), raw).toMatch(/^(lax|strict)$/);
      }
    });
    it('trustDevice with the feature off sets no device cookie', async () => {
      const u = await mfaUser(srv.url, 'tdoff');
      const c = new Client(srv.url);
      await c.post('/api/auth/login', { email: u.email, password: u.password });
      const v = await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u), trustDevice: true });
      expect(v.setCookies.length).toBe(1);
    });
    it('after an email change, notifications go to the new address', async () => {
      const u = await signup(srv.url, 'ecn');
      const ne = uniqueEmail('ecnew');
      await u.client.post('/api/account/email', { email: ne });
      const m = await mail.waitFor((x) => x.to.includes(ne) && x.tokens.length > 0);
      expect((await new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] })).status).toBe(200);
      expect((await u.client.post('/api/tokens', { name: 'x', scopes: [] })).status).toBe(201);
      const t = await mail.waitFor((x) => x.event === 'token.created' && (x.to.includes(ne) || x.to.includes(u.email)));
      expect(t.to).toEqual([ne]);
    });
    it('verify with wrong field types is 400, trustDevice must be boolean', async () => {
      const u = await mfaUser(srv.url, 'vt');
      const { client } = await login(srv.url, u);
      expectError(
        await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: u.recovery[0], trustDevice: 'yes' }),
        400,
        'invalid_request',
      );
      expectError(await client.post('/api/auth/login', { email: u.email, password: u.password, remember: 'yes' }), 400, 'invalid_request');
    });
  });
});
