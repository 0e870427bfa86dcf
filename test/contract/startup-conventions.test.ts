import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, expectIso, parseSetCookie, signup, mfaUser, login, sleep, uniqueEmail } from './client.js';

let srv: TestServer;
let https: TestServer;
let proxied: TestServer;

beforeAll(async () => {
  [srv, https, proxied] = await Promise.all([
    startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '2' }),
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
      '['.repeat(5000) + ']'.repeat(5000),
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

describe('conventions: hostile headers', () => {
  it('malformed cookies, authorization, origin and forwarding headers never get a 5xx', async () => {
    const u = await signup(srv.url, 'hdr');
    const hdrs: Record<string, string>[] = [
      { cookie: 'gatehouse_session=%E0%A4%A' },
      { cookie: 'gatehouse_session=' + 'a'.repeat(7000) },
      { cookie: 'gatehouse_remember=%%%' },
      { cookie: 'gatehouse_remember=' },
      { cookie: 'gatehouse_device=x; gatehouse_remember=y; gatehouse_session=z' },
      { cookie: '=;;=;a' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: 'Basic Zm9vOmJhcg==' },
      { authorization: 'Bearer ' + 'x'.repeat(7000) },
      { authorization: 'Bearer a b c' },
      { origin: 'null' },
      { origin: '' },
      { origin: 'http://[::1' },
      { 'sec-fetch-site': '' },
      { 'x-forwarded-for': 'garbage, ,,' },
    ];
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['POST', '/api/transfers', { to: 'b', amountCents: 1 }],
      ['POST', '/api/auth/logout'],
      ['POST', '/api/auth/login', { email: u.email, password: u.password }],
      ['POST', '/api/auth/mfa/verify', { method: 'totp', code: '123456' }],
      ['GET', '/api/sessions?x[]=1&x[y]=2'],
      ['GET', '/healthz?%E0'],
    ];
    for (const h of hdrs) {
      for (const [m, p, b] of routes) {
        const r = await new Client(srv.url).req(m, p, b, { headers: h, noStore: true });
        expect(r.status, `${JSON.stringify(h).slice(0, 60)} ${m} ${p}: ${r.text.slice(0, 80)}`).toBeLessThan(500);
        if (r.status >= 400) expect(typeof r.body?.error).toBe('string');
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
    const r = await c.post(
      '/api/transfers',
      { to: 'bob', amountCents: 5 },
      { bearer: l.body.sessionToken, noCookies: true, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } },
    );
    expect(r.status, r.text).toBe(201);
  });
});

describe('conventions: order of checks', () => {
  it('body size comes before authentication', async () => {
    const r = await new Client(srv.url).post('/api/transfers', undefined, {
      raw: JSON.stringify({ to: 'x'.repeat(70 * 1024), amountCents: 1 }),
    });
    expectError(r, 413, 'payload_too_large');
  });
  it('JSON syntax comes before authentication', async () => {
    const r = await new Client(srv.url).post('/api/transfers', undefined, { raw: '{bad' });
    expectError(r, 400, 'invalid_request');
  });
  it('authentication comes before CSRF', async () => {
    const r = await new Client(srv.url).post(
      '/api/transfers',
      { to: 'bob', amountCents: 5 },
      { headers: { origin: 'https://evil.example' } },
    );
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
    await sleep(2200);
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
    const l = await new Client(srv.url).post(
      '/api/auth/login',
      { email: u.email, password: u.password },
      { headers: { 'x-forwarded-for': '203.0.113.9' } },
    );
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

describe('conventions: edges', () => {
  it('the 64 KiB limit: exactly 64 KiB is accepted, one byte more is 413', async () => {
    const make = (n: number) => {
      const head = '{"email":"a@b.test","password":"';
      const tail = '"}';
      return head + 'p'.repeat(n - head.length - tail.length) + tail;
    };
    const at = await new Client(srv.url).post('/api/auth/login', undefined, { raw: make(64 * 1024) });
    expect(at.status, at.text).not.toBe(413);
    expect(at.status).toBeLessThan(500);
    const over = await new Client(srv.url).post('/api/auth/login', undefined, { raw: make(64 * 1024 + 1) });
    expectError(over, 413, 'payload_too_large');
  });

  it('unknown routes and methods answer a JSON error from the table', async () => {
    const a = await new Client(srv.url).get('/api/does-not-exist');
    expectError(a, 404, 'not_found');
    const b = await new Client(srv.url).req('PUT', '/api/session', { x: 1 });
    expect(b.status).toBeGreaterThanOrEqual(400);
    expect(b.status).toBeLessThan(500);
    expect(typeof b.body.error).toBe('string');
  });

  it('a body that is not JSON gets a table code, never 415/5xx', async () => {
    const codes = [
      'invalid_request',
      'weak_password',
      'invalid_token',
      'unauthenticated',
      'invalid_credentials',
      'mfa_required',
      'no_pending_authentication',
      'invalid_code',
      'csrf',
      'enrollment_required',
      'step_up_required',
      'interactive_session_required',
      'insufficient_scope',
      'not_found',
      'email_taken',
      'payload_too_large',
      'too_many_attempts',
    ];
    const u = await signup(srv.url, 'ctype');
    for (const [ct, raw] of [
      ['text/plain', '{"email":"a@b.test","password":"x"}'],
      ['application/xml', '<a/>'],
      ['multipart/form-data; boundary=x', '--x--'],
      ['application/json; charset=latin1', '{}'],
    ] as const) {
      for (const [c, p] of [
        [new Client(srv.url), '/api/auth/login'],
        [u.client, '/api/transfers'],
      ] as const) {
        const r = await c.post(p, undefined, { raw, headers: { 'content-type': ct }, noStore: true });
        expect(r.status, `${ct} ${p}: ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${ct} ${p}: ${r.text}`).toBeLessThan(500);
        expect(codes, `${ct} ${p}: ${r.text}`).toContain(r.body?.error);
      }
    }
    const gz = await new Client(srv.url).post('/api/auth/login', undefined, { raw: 'garbage', headers: { 'content-encoding': 'gzip' } });
    expect(gz.status).toBeGreaterThanOrEqual(400);
    expect(gz.status).toBeLessThan(500);
    expect(codes).toContain(gz.body?.error);
  });

  it('CSRF: GETs are not state-changing; same-site and none fetch metadata pass; DELETE is checked', async () => {
    const u = await signup(srv.url, 'csrf5');
    expect(
      (await u.client.get('/api/account', { headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })).status,
    ).toBe(200);
    expect(
      (await u.client.post('/api/transfers', { to: 'b', amountCents: 1 }, { headers: { 'sec-fetch-site': 'same-site' } })).status,
    ).toBe(201);
    expect((await u.client.post('/api/transfers', { to: 'b', amountCents: 1 }, { headers: { 'sec-fetch-site': 'none' } })).status).toBe(
      201,
    );
    const other = await login(srv.url, u);
    const id = ((await u.client.get('/api/sessions')).body.sessions as any[]).find((s) => !s.current).id;
    expectError(await u.client.del(`/api/sessions/${id}`, { headers: { origin: 'https://evil.example' } }), 403, 'csrf');
    expect((await other.client.get('/api/session')).status).toBe(200);
  });

  it('CSRF applies to pending-session cookies (verify) and to a remember-me cookie alone', async () => {
    const m = await mfaUser(srv.url, 'csrf6');
    const { client } = await login(srv.url, m);
    expectError(
      await client.post(
        '/api/auth/mfa/verify',
        { method: 'recovery_code', code: m.recovery[0] },
        { headers: { origin: 'https://evil.example' } },
      ),
      403,
      'csrf',
    );
    const v = await signup(srv.url, 'csrf7');
    const r = await login(srv.url, v, { remember: true });
    const remember = r.res.setCookies
      .map(parseSetCookie)
      .find((c) => typeof c.attrs['max-age'] === 'string' && Number(c.attrs['max-age']) > 86400 * 2)!;
    expect(remember).toBeDefined();
    const only = new Client(srv.url);
    only.jar.set(remember.name, remember.value);
    const x = await only.post('/api/transfers', { to: 'b', amountCents: 1 }, { headers: { origin: 'https://evil.example' } });
    expectError(x, 403, 'csrf');
  });

  it('the enrolling state is checked before CSRF', async () => {
    const all = await startTestServer({ ...FAST, GATEHOUSE_MFA_REQUIRED: 'all' });
    try {
      const c = new Client(all.url);
      expect((await c.post('/api/auth/signup', { email: `e-${Date.now()}@example.test`, password: 'Gh!plentyStrong9' })).status).toBe(201);
      expectError(
        await c.post('/api/transfers', { to: 'b', amountCents: 1 }, { headers: { origin: 'https://evil.example' } }),
        403,
        'enrollment_required',
      );
    } finally {
      await all.close();
    }
  });

  it('an API token beats fields in the order: ★ with bad fields is interactive_session_required', async () => {
    const u = await signup(srv.url, 'ordtok');
    await u.client.post('/api/auth/reauth', { password: u.password });
    const t = await u.client.post('/api/tokens', { name: 'x', scopes: ['account:read'] });
    expect(t.status, t.text).toBe(201);
    const r = await new Client(srv.url).post('/api/mfa/recovery-codes', { junk: true }, { bearer: t.body.token });
    expectError(r, 403, 'interactive_session_required');
    const big = await new Client(srv.url).post('/api/tokens', undefined, { bearer: t.body.token, raw: '{oops' });
    expectError(big, 400, 'invalid_request');
  });
});

describe('configuration variables', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ ...FAST });
  });
  afterAll(async () => {
    await srv?.close();
  });

  describe.concurrent('configuration variables and input edges', () => {
    it('password length counts characters, not UTF-16 units', async () => {
      const seven = 'qZ7😀🦊🌵🚀'; // 7 code points, 11 UTF-16 units
      expect([...seven].length).toBe(7);
      expectError(await new Client(srv.url).post('/api/auth/signup', { email: uniqueEmail('pc'), password: seven }), 400, 'weak_password');
      const long = 'qZ7$' + '😀🦊🌵🚀🍕🎲'.repeat(42); // 4 + 252 = 256 code points, 508 units
      expect([...long].length).toBe(256);
      const r = await new Client(srv.url).post('/api/auth/signup', { email: uniqueEmail('pc'), password: long });
      expect(r.status, r.text).toBe(201);
    });
    for (const [label, trust, honoured] of [
      ['a CIDR range', '127.0.0.0/8', true],
      ['a list naming the sender', '10.9.9.9, 127.0.0.1', true],
      ['another address only', '10.9.9.9', false],
    ] as const) {
      it(`GATEHOUSE_TRUST_PROXY as ${label}`, async () => {
        const s = await startTestServer({ ...FAST, GATEHOUSE_TRUST_PROXY: trust });
        try {
          const u = await signup(s.url, 'tp');
          const c = new Client(s.url);
          expect(
            (await c.post('/api/auth/login', { email: u.email, password: u.password }, { headers: { 'x-forwarded-for': '203.0.113.50' } }))
              .status,
          ).toBe(200);
          const cur = (await c.get('/api/sessions')).body.sessions.find((x: any) => x.current);
          if (honoured) expect(cur.ip).toBe('203.0.113.50');
          else expect(cur.ip).not.toBe('203.0.113.50');
        } finally {
          await s.close();
        }
      });
    }
    it('GATEHOUSE_DATABASE_URL=sqlite:PATH puts the database there', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-dburl-'));
      const file = path.join(dir, 'custom.sqlite');
      const s = await startTestServer({ ...FAST, GATEHOUSE_DATABASE_URL: `sqlite:${file}` });
      try {
        await signup(s.url, 'db');
        expect(fs.existsSync(file)).toBe(true);
      } finally {
        await s.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
