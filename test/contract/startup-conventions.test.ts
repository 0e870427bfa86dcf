import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, expectIso, parseSetCookie, signup, mfaUser, login, sleep } from './client.js';

let srv: TestServer;
let https: TestServer;
let proxied: TestServer;

beforeAll(async () => {
  [srv, https, proxied] = await Promise.all([
    startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '1' }),
    startTestServer({ ...FAST, GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example' }),
    startTestServer({ ...FAST, GATEHOUSE_TRUST_PROXY: '127.0.0.1' }),
  ]);
});
afterAll(async () => {
  await Promise.all([srv?.close(), https?.close(), proxied?.close()]);
});

describe('startup and health', () => {
  it('GET /healthz answers 200 {"status":"ok"} as JSON', async () => {
    const r = await new Client(srv.url).get('/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
    expect(String(r.headers['content-type'])).toMatch(/application\/json/);
  });
});

describe('conventions: errors', () => {
  it('errors are JSON {error, message} with a 4xx status', async () => {
    const r = await new Client(srv.url).get('/api/session');
    expectError(r, 401, 'unauthenticated');
    expect(String(r.headers['content-type'])).toMatch(/application\/json/);
  });

  it('malformed JSON is 400 invalid_request', async () => {
    const r = await new Client(srv.url).post('/api/auth/login', undefined, { raw: '{"email": "a@b.c", ' });
    expectError(r, 400, 'invalid_request');
  });

  it('a body over 64 KiB is 413 payload_too_large', async () => {
    const big = JSON.stringify({ email: 'a@b.test', password: 'x'.repeat(70 * 1024) });
    const r = await new Client(srv.url).post('/api/auth/login', undefined, { raw: big });
    expectError(r, 413, 'payload_too_large');
  });

  it('unknown fields are 400 invalid_request with details', async () => {
    const r = await new Client(srv.url).post('/api/auth/signup', { email: 'x@y.test', password: 'Gh!abcdefghij9', admin: true });
    expectError(r, 400, 'invalid_request');
    expect(r.body.details).toBeDefined();
  });

  it('wrong types are 400 invalid_request with details', async () => {
    const r = await new Client(srv.url).post('/api/auth/login', { email: 42, password: ['x'] });
    expectError(r, 400, 'invalid_request');
    expect(r.body.details).toBeDefined();
  });

  it('no malformed input gets a 5xx', async () => {
    const u = await signup(srv.url, 'hostile');
    const bodies: (string | Buffer)[] = [
      '',
      'null',
      '[]',
      '"str"',
      '123',
      '{"email":null,"password":null}',
      '{"email":{"$gt":""},"password":{}}',
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{"x":1}}}',
      '[' .repeat(5000) + ']'.repeat(5000),
      '{"email":"\u0000\uffff\ud800","password":"\ud83d"}',
      Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      '{"code":1e400,"method":"totp"}',
      '{"to":"x","amountCents":1e308}',
      '{"to":"x","amountCents":-0}',
      '{"name":"n","scopes":"account:read"}',
    ];
    const routes: [string, string][] = [
      ['POST', '/api/auth/signup'],
      ['POST', '/api/auth/login'],
      ['POST', '/api/auth/mfa/verify'],
      ['POST', '/api/auth/reauth'],
      ['POST', '/api/auth/step-up'],
      ['POST', '/api/auth/password/forgot'],
      ['POST', '/api/auth/password/reset'],
      ['POST', '/api/mfa/totp/confirm'],
      ['POST', '/api/account/email'],
      ['POST', '/api/account/email/confirm'],
      ['POST', '/api/account/password'],
      ['POST', '/api/tokens'],
      ['POST', '/api/transfers'],
    ];
    for (const [m, p] of routes) {
      for (const b of bodies) {
        const r = await u.client.req(m, p, undefined, { raw: b, noStore: true });
        expect(r.status, `${m} ${p} ${String(b).slice(0, 40)} -> ${r.text}`).toBeLessThan(500);
        if (r.status >= 400) expect(typeof r.body?.error).toBe('string');
      }
    }
    for (const id of ["'; drop table users;--", '%00', '..%2F..%2Fetc', 'x'.repeat(5000), '-1', '1e9']) {
      for (const p of ['/api/sessions/', '/api/tokens/', '/api/mfa/totp/']) {
        const r = await u.client.del(p + id, { noStore: true });
        expect(r.status, `${p}${id.slice(0, 20)}`).toBeLessThan(500);
      }
    }
  });
});

describe('conventions: cookies', () => {
  it('the session cookie is HttpOnly, SameSite Lax/Strict, Path=/ and not Secure on http', async () => {
    const c = new Client(srv.url);
    const r = await c.post('/api/auth/signup', { email: `ck-${Date.now()}@example.test`, password: 'Gh!plentyStrong9' });
    expect(r.status).toBe(201);
    expect(r.setCookies.length).toBeGreaterThan(0);
    for (const raw of r.setCookies) {
      const ck = parseSetCookie(raw);
      expect(ck.attrs['httponly'], raw).toBe(true);
      expect(String(ck.attrs['samesite']).toLowerCase(), raw).toMatch(/^(lax|strict)$/);
      expect(ck.attrs['path'], raw).toBe('/');
      expect(ck.attrs['secure'], raw).toBeUndefined();
    }
  });

  it('the session cookie is Secure when the public URL is https', async () => {
    const c = new Client(https.url);
    const r = await c.post('/api/auth/signup', { email: `cks-${Date.now()}@example.test`, password: 'Gh!plentyStrong9' });
    expect(r.status).toBe(201);
    expect(r.setCookies.length).toBeGreaterThan(0);
    for (const raw of r.setCookies) {
      const ck = parseSetCookie(raw);
      expect(ck.attrs['secure'], raw).toBe(true);
      expect(ck.attrs['httponly'], raw).toBe(true);
      expect(ck.attrs['path'], raw).toBe('/');
    }
    // the same-origin check uses the public URL's origin
    const ok = await c.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: 'https://gatehouse.example' } });
    expect(ok.status, ok.text).toBe(201);
    const bad = await c.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: https.url } });
    expectError(bad, 403, 'csrf');
  });
});

describe('conventions: CSRF', () => {
  it('cookie-authenticated state change with a foreign Origin is 403 csrf', async () => {
    const u = await signup(srv.url, 'csrf');
    const r = await u.client.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: 'https://evil.example' } });
    expectError(r, 403, 'csrf');
    const r2 = await u.client.post('/api/auth/logout', undefined, { headers: { origin: 'https://evil.example' } });
    expectError(r2, 403, 'csrf');
    // still logged in
    expect((await u.client.get('/api/session')).status).toBe(200);
  });

  it('Sec-Fetch-Site: cross-site is 403 csrf', async () => {
    const u = await signup(srv.url, 'csrf2');
    const r = await u.client.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { 'sec-fetch-site': 'cross-site' } });
    expectError(r, 403, 'csrf');
  });

  it('same origin, same-origin fetch metadata, and no Origin all pass', async () => {
    const u = await signup(srv.url, 'csrf3');
    const a = await u.client.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: srv.url } });
    expect(a.status, a.text).toBe(201);
    const b = await u.client.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { 'sec-fetch-site': 'same-origin' } });
    expect(b.status, b.text).toBe(201);
    const c = await u.client.post('/api/transfers', { to: 'bob', amountCents: 5 });
    expect(c.status, c.text).toBe(201);
  });

  it('the CSRF rule concerns cookies only: bearer session tokens pass with a foreign Origin', async () => {
    const u = await signup(srv.url, 'csrf4');
    const c = new Client(srv.url);
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password, transport: 'token' });
    expect(l.status).toBe(200);
    const r = await c.post('/api/transfers', { to: 'bob', amountCents: 5 }, { bearer: l.body.sessionToken, noCookies: true, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } });
    expect(r.status, r.text).toBe(201);
  });
});

describe('conventions: order of checks', () => {
  it('body size comes before authentication', async () => {
    const r = await new Client(srv.url).post('/api/transfers', undefined, { raw: JSON.stringify({ to: 'x'.repeat(70 * 1024), amountCents: 1 }) });
    expectError(r, 413, 'payload_too_large');
  });
  it('JSON syntax comes before authentication', async () => {
    const r = await new Client(srv.url).post('/api/transfers', undefined, { raw: '{bad' });
    expectError(r, 400, 'invalid_request');
  });
  it('authentication comes before CSRF', async () => {
    const r = await new Client(srv.url).post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: 'https://evil.example' } });
    expectError(r, 401, 'unauthenticated');
  });
  it('session state (pending) comes before CSRF', async () => {
    const u = await mfaUser(srv.url, 'order');
    const { client, res } = await login(srv.url, u);
    expect(res.status).toBe(202);
    const r = await client.post('/api/transfers', { to: 'bob', amountCents: 5 }, { headers: { origin: 'https://evil.example' } });
    expectError(r, 401, 'mfa_required');
  });
  it('CSRF comes before freshness, freshness before fields', async () => {
    const u = await signup(srv.url, 'order2');
    await sleep(1300);
    const a = await u.client.post('/api/tokens', { bogus: 1 }, { headers: { origin: 'https://evil.example' } });
    expectError(a, 403, 'csrf');
    const b = await u.client.post('/api/tokens', { bogus: 1 });
    expectError(b, 403, 'step_up_required');
    const re = await u.client.post('/api/auth/reauth', { password: u.password });
    expect(re.status).toBe(200);
    const c = await u.client.post('/api/tokens', { bogus: 1 });
    expectError(c, 400, 'invalid_request');
  });
});

describe('conventions: X-Forwarded-For', () => {
  it('is ignored without GATEHOUSE_TRUST_PROXY', async () => {
    const u = await signup(srv.url, 'xff');
    const r = await u.client.get('/api/sessions', { headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(r.status).toBe(200);
    const l = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(l.status).toBe(200);
    const s = await u.client.get('/api/sessions');
    for (const sess of s.body.sessions) expect(sess.ip).not.toMatch(/203\.0\.113/);
  });
  it('is honoured when the sender is a trusted proxy', async () => {
    const u = await signup(proxied.url, 'xff2');
    const c = new Client(proxied.url);
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password }, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(l.status).toBe(200);
    const s = await c.get('/api/sessions');
    const cur = s.body.sessions.find((x: any) => x.current);
    expect(cur.ip).toBe('203.0.113.9');
  });
});

describe('conventions: token transport', () => {
  it('login with transport token returns sessionToken; bearer obeys session rules; times are ISO', async () => {
    const u = await signup(srv.url, 'tt');
    const c = new Client(srv.url);
    const l = await c.post('/api/auth/login', { email: u.email, password: u.password, transport: 'token' });
    expect(l.status).toBe(200);
    expect(typeof l.body.sessionToken).toBe('string');
    const s = await c.get('/api/session', { bearer: l.body.sessionToken, noCookies: true });
    expect(s.status).toBe(200);
    expectIso(s.body.authTime);
    expectIso(s.body.expiresAt);
    const out = await c.post('/api/auth/logout', undefined, { bearer: l.body.sessionToken, noCookies: true });
    expect(out.status).toBe(204);
    const after = await c.get('/api/session', { bearer: l.body.sessionToken, noCookies: true });
    expectError(after, 401, 'unauthenticated');
  });
});
