import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, expectIso, signup, strongPassword, uniqueEmail, sleep } from './client.js';

let srv: TestServer;
let lock: TestServer;

beforeAll(async () => {
  [srv, lock] = await Promise.all([
    startTestServer({ ...FAST }),
    startTestServer({ ...FAST, GATEHOUSE_LOCKOUT_SECONDS: '3', GATEHOUSE_TRUST_PROXY: '127.0.0.1' }),
  ]);
});
afterAll(async () => {
  await Promise.all([srv?.close(), lock?.close()]);
});

describe('signup', () => {
  it('201 {status:"authenticated", user:{id,email}} and a full aal1 session', async () => {
    const c = new Client(srv.url);
    const email = uniqueEmail('su');
    const r = await c.post('/api/auth/signup', { email, password: strongPassword() });
    expect(r.status).toBe(201);
    expect(r.body.status).toBe('authenticated');
    expect(r.body.user).toMatchObject({ email });
    expect(r.body.user.id).toBeDefined();
    const s = await c.get('/api/session');
    expect(s.status).toBe(200);
    expect(s.body.user).toEqual({ id: r.body.user.id, email });
    expect(s.body.aal).toBe(1);
    expect(Array.isArray(s.body.amr)).toBe(true);
    expect(s.body.mfaAt).toBeNull();
    expectIso(s.body.authTime);
    expectIso(s.body.expiresAt);
  });

  it('409 email_taken, also for another letter case, whitespace and NFKC form', async () => {
    const base = `dup-${Date.now()}`;
    const c = new Client(srv.url);
    expect((await c.post('/api/auth/signup', { email: `${base}@example.test`, password: strongPassword() })).status).toBe(201);
    for (const variant of [`${base}@example.test`, `  ${base.toUpperCase()}@EXAMPLE.TEST `, `${base}＠ｅｘａｍｐｌｅ.test`]) {
      const r = await new Client(srv.url).post('/api/auth/signup', { email: variant, password: strongPassword() });
      expectError(r, 409, 'email_taken');
    }
  });

  it('parallel signups of one address (any case/whitespace) create one account', async () => {
    const email = uniqueEmail('race');
    const rs = await Promise.all(
      [email, email.toUpperCase(), ` ${email}`, email, email].map((e) =>
        new Client(srv.url).post('/api/auth/signup', { email: e, password: strongPassword() }),
      ),
    );
    expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of rs.filter((x) => x.status !== 201)) expectError(r, 409, 'email_taken');
  });

  it('400 weak_password: fewer than 8, more than 256, commonly used', async () => {
    for (const pw of ['Ab1!xyz', 'A'.repeat(1) + 'b9!'.repeat(86), 'password', 'password123', '12345678', 'qwertyuiop']) {
      const r = await new Client(srv.url).post('/api/auth/signup', { email: uniqueEmail('weak'), password: pw });
      expectError(r, 400, 'weak_password');
    }
  });

  it('accepts 8 and 256 character passwords', async () => {
    const p8 = 'Zq7#vLp2';
    const p256 = ('Xk9$' + 'qWz7!mNb'.repeat(32)).slice(0, 256);
    expect(p256.length).toBe(256);
    for (const pw of [p8, p256]) {
      const r = await new Client(srv.url).post('/api/auth/signup', { email: uniqueEmail('len'), password: pw });
      expect(r.status, r.text).toBe(201);
    }
  });

  it('400 invalid_request for missing or mistyped fields', async () => {
    for (const body of [
      {},
      { email: 'a@b.test' },
      { password: 'Gh!abcdefg12' },
      { email: 1, password: 'Gh!abcdefg12' },
      { email: 'a@b.test', password: 12345678901 },
    ]) {
      const r = await new Client(srv.url).post('/api/auth/signup', body);
      expectError(r, 400, 'invalid_request');
    }
  });
});

describe('login', () => {
  it('no second factor: 200 {status:"authenticated", aal:1, user}', async () => {
    const u = await signup(srv.url, 'li');
    const c = new Client(srv.url);
    const r = await c.post('/api/auth/login', { email: u.email, password: u.password });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'authenticated', aal: 1, user: { id: u.id, email: u.email } });
    expect((await c.get('/api/session')).status).toBe(200);
  });

  it('matches the email normalised (case, whitespace, NFKC)', async () => {
    const u = await signup(srv.url, 'norm');
    const [local, domain] = u.email.split('@') as [string, string];
    for (const variant of [u.email.toUpperCase(), `  ${u.email}\t`, `${local}＠${domain}`]) {
      const r = await new Client(srv.url).post('/api/auth/login', { email: variant, password: u.password });
      expect(r.status, variant).toBe(200);
      expect(r.body.user.email).toBe(u.email);
    }
  });

  it('401 invalid_credentials with the same body whether or not the account exists', async () => {
    const u = await signup(srv.url, 'bad');
    const a = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: 'Wrong!pass123' });
    const b = await new Client(srv.url).post('/api/auth/login', { email: uniqueEmail('nobody'), password: 'Wrong!pass123' });
    expectError(a, 401, 'invalid_credentials');
    expectError(b, 401, 'invalid_credentials');
    expect(a.body).toEqual(b.body);
    expect(a.setCookies.length).toBe(0);
  });

  it('a new login replaces the session token: the old one stops working', async () => {
    const u = await signup(srv.url, 'repl');
    const before = u.client.jar.snapshot();
    const r = await u.client.post('/api/auth/login', { email: u.email, password: u.password });
    expect(r.status).toBe(200);
    const after = u.client.jar.snapshot();
    expect([...after.entries()]).not.toEqual([...before.entries()]);
    const old = new Client(srv.url);
    for (const [k, v] of before) old.jar.set(k, v);
    expectError(await old.get('/api/session'), 401, 'unauthenticated');
    expect((await u.client.get('/api/session')).status).toBe(200);
  });

  it('logout: 204, the session is revoked server-side', async () => {
    const u = await signup(srv.url, 'lo');
    const copy = u.client.clone();
    const r = await u.client.post('/api/auth/logout');
    expect(r.status).toBe(204);
    expectError(await copy.get('/api/session'), 401, 'unauthenticated');
  });

  it('GET /api/session: 401 unauthenticated for no, garbage cookie and garbage bearer', async () => {
    const c = new Client(srv.url);
    expectError(await c.get('/api/session'), 401, 'unauthenticated');
    expectError(await c.get('/api/session', { headers: { cookie: 'gh_session=garbage; session=garbage; sid=x' } }), 401, 'unauthenticated');
    expectError(await c.get('/api/session', { bearer: 'garbage' }), 401, 'unauthenticated');
  });

  it('transport:"token" returns a sessionToken that works as Bearer', async () => {
    const u = await signup(srv.url, 'tok');
    const c = new Client(srv.url);
    const r = await c.post('/api/auth/login', { email: u.email, password: u.password, transport: 'token' });
    expect(r.status).toBe(200);
    expect(typeof r.body.sessionToken).toBe('string');
    const s = await new Client(srv.url).get('/api/session', { bearer: r.body.sessionToken });
    expect(s.status).toBe(200);
    expect(s.body.user.id).toBe(u.id);
    const bad = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password, transport: 'carrier-pigeon' });
    expectError(bad, 400, 'invalid_request');
  });
});

describe('password lockout', () => {
  it('10 consecutive wrong passwords across case and X-Forwarded-For lock the account; 429 with retryAfter; then it unlocks', async () => {
    const u = await signup(lock.url, 'plock');
    for (let i = 0; i < 10; i++) {
      const email = i % 2 ? u.email.toUpperCase() : ` ${u.email}`;
      const r = await new Client(lock.url).post(
        '/api/auth/login',
        { email, password: `Wrong!${i}xyzabc` },
        { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } },
      );
      expect(r.status, `attempt ${i}`).toBeOneOf([401, 429]);
    }
    const ok = await new Client(lock.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '198.51.100.200' } },
    );
    expectError(ok, 429, 'too_many_attempts');
    await sleep(3300);
    const later = await new Client(lock.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '198.51.100.201' } },
    );
    expect(later.status, later.text).toBe(200);
  });

  it('parallel wrong passwords lock the account too', async () => {
    const u = await signup(lock.url, 'plockp');
    await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        new Client(lock.url).post(
          '/api/auth/login',
          { email: u.email, password: `Wrong!${i}xyzabc` },
          { headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } },
        ),
      ),
    );
    const ok = await new Client(lock.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '192.0.2.99' } },
    );
    expectError(ok, 429, 'too_many_attempts');
  });

  it('a correct password resets the count (consecutive failures only)', async () => {
    const u = await signup(lock.url, 'preset');
    const wrong = async (n: number, off: number) => {
      for (let i = 0; i < n; i++) {
        const r = await new Client(lock.url).post(
          '/api/auth/login',
          { email: u.email, password: `Wrong!${i}xyzabc` },
          { headers: { 'x-forwarded-for': `198.18.0.${off + i}` } },
        );
        expectError(r, 401, 'invalid_credentials');
      }
    };
    await wrong(9, 1);
    const ok = await new Client(lock.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '198.18.1.1' } },
    );
    expect(ok.status).toBe(200);
    await wrong(9, 20);
    const ok2 = await new Client(lock.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '198.18.1.2' } },
    );
    expect(ok2.status).toBe(200);
  });
});
