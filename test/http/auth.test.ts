/**
 * Sign-up, login, verify, logout, session and account shapes, second-factor management,
 * sessions list/delete, input handling (size, syntax, unknown fields), CSRF and token
 * transport, session fixation and token rotation: against a real listening server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client } from '../helpers/http-client.js';
import { login, loginFull, PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';

let server: TestServer;
let base: string;

beforeAll(async () => {
  server = await startFastServer();
  base = server.url;
});
afterAll(() => server?.close());

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('health', () => {
  it('GET /healthz → 200 {status:"ok"}', async () => {
    const res = await new Client(base).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });
});

describe('sign-up', () => {
  it('201 authenticated with a full session in an HttpOnly, SameSite, Path=/ cookie', async () => {
    const c = new Client(base);
    const email = uniqueEmail();
    const res = await c.post('/api/auth/signup', { email, password: PASSWORD });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'authenticated', user: { id: expect.any(String), email } });
    const cookie = res.setCookies.find((s) => s.startsWith('gatehouse_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=(Lax|Strict)/i);
    expect(cookie).toMatch(/Path=\//i);
    expect(cookie).not.toMatch(/Secure/i); // http public URL
    // 256-bit token, base64url.
    expect(c.sessionCookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await c.get('/api/session')).status).toBe(200);
  });

  it('409 email_taken, also across letter case and surrounding space', async () => {
    const { email } = await signup(base);
    const res = await new Client(base).post('/api/auth/signup', { email: `  ${email.toUpperCase()} `, password: PASSWORD });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('email_taken');
  });

  it.each([
    ['short', 'Xy7!abc'],
    ['common', 'password123'],
    ['too long', 'a'.repeat(257)],
  ])('400 weak_password (%s)', async (_what, password) => {
    const res = await new Client(base).post('/api/auth/signup', { email: uniqueEmail(), password });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('weak_password');
  });

  it('400 invalid_request for a missing or malformed email', async () => {
    const c = new Client(base);
    expect((await c.post('/api/auth/signup', { password: PASSWORD })).body.error).toBe('invalid_request');
    const bad = await c.post('/api/auth/signup', { email: 'not an email', password: PASSWORD });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
  });
});

describe('login', () => {
  it('no factor → 200 authenticated, aal 1', async () => {
    const account = await signup(base);
    const { res, client } = await login(base, account);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'authenticated', aal: 1, user: { id: account.userId } });
    expect((await client.get('/api/session')).body).toMatchObject({ aal: 1, amr: ['pwd'], mfaAt: null });
  });

  it('email is matched case-insensitively after NFKC and trimming', async () => {
    const account = await signup(base);
    const { res } = await login(base, { email: `  ${account.email.toUpperCase()}  `, password: account.password });
    expect(res.status).toBe(200);
  });

  it('wrong password and unknown account get the same 401 invalid_credentials body', async () => {
    const account = await signup(base);
    const wrong = await login(base, { email: account.email, password: 'not-the-password-1' });
    const unknown = await login(base, { email: uniqueEmail('nobody'), password: 'not-the-password-1' });
    expect(wrong.res.status).toBe(401);
    expect(unknown.res.status).toBe(401);
    expect(wrong.res.body).toEqual(unknown.res.body);
    expect(wrong.res.body.error).toBe('invalid_credentials');
    expect(wrong.client.sessionCookie).toBeUndefined();
  });

  it('a huge password is refused cheaply, without a 5xx', async () => {
    const account = await signup(base);
    const res = await new Client(base).post('/api/auth/login', { email: account.email, password: 'x'.repeat(4096) });
    expect(res.status).toBe(401);
    const tooBig = await new Client(base).post('/api/auth/login', { email: account.email, password: 'x'.repeat(5000) });
    expect(tooBig.status).toBe(400);
  });
});

describe('MFA login: password alone is never enough', () => {
  it('with a factor: 202 mfa_required + pending; verify → 200 aal 2 and a full session', async () => {
    const account = await signupWithTotp(base);
    const { client, res } = await login(base, account);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'mfa_required', methods: expect.arrayContaining(['totp', 'recovery_code']), expiresIn: 300 });
    expect(client.sessionCookie).toBeDefined();
    // Password-only access: the pending session reaches nothing.
    const session = await client.get('/api/session');
    expect(session.status).toBe(401);
    expect(session.body.error).toBe('mfa_required');

    const verify = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) });
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ status: 'authenticated', aal: 2 });
    const full = await client.get('/api/session');
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({ aal: 2, amr: expect.arrayContaining(['pwd', 'otp']) });
    expect(full.body.mfaAt).toMatch(ISO);
  });

  it('forced browsing with a pending session: every protected endpoint refuses, verify and logout work', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['GET', '/api/mfa'],
      ['GET', '/api/sessions'],
      ['DELETE', '/api/sessions/whatever'],
      ['POST', '/api/mfa/totp/setup', {}],
      ['POST', '/api/mfa/totp/confirm', { code: '123456' }],
      ['DELETE', `/api/mfa/totp/${account.factorId}`],
      ['POST', '/api/mfa/recovery-codes', {}],
      ['POST', '/api/auth/step-up', { method: 'totp', code: '123456' }],
      ['POST', '/api/auth/reauth', { password: account.password }],
      ['GET', '/api/account/transactions'],
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 1 }],
    ];
    for (const [method, path, json] of attempts) {
      const res = await client.req(method, path, { json });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.error, `${method} ${path}`).toBe('mfa_required');
    }
    // The factor was not removed, nothing was transferred: finish the legitimate login.
    const verify = await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] });
    expect(verify.status).toBe(200);
    expect((await client.get('/api/mfa')).body.factors).toHaveLength(1);
    expect((await client.get('/api/account/transactions')).body.transactions).toEqual([]);
  });

  it('verify without a pending session → 401 no_pending_authentication (none, and full)', async () => {
    const none = await new Client(base).post('/api/auth/mfa/verify', { method: 'totp', code: '123456' });
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('no_pending_authentication');
    const account = await signupWithTotp(base);
    const full = await account.client.post('/api/auth/mfa/verify', { method: 'totp', code: '123456' });
    expect(full.status).toBe(401);
    expect(full.body.error).toBe('no_pending_authentication');
  });

  it('a wrong code → 401 invalid_code and the session stays pending', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const wrongCode = totpCodeAt(account.secret, Date.now()) === '000000' ? '111111' : '000000';
    const res = await client.post('/api/auth/mfa/verify', { method: 'totp', code: wrongCode });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_code');
    expect((await client.get('/api/session')).body.error).toBe('mfa_required');
  });

  it('pending logout → 204 and the pending session cannot be verified any more', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const cookie = client.sessionCookie!;
    expect((await client.post('/api/auth/logout')).status).toBe(204);
    expect(client.sessionCookie).toBeUndefined();
    const replay = new Client(base);
    replay.cookies.set('gatehouse_session', cookie);
    const res = await replay.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] });
    expect(res.body.error).toBe('no_pending_authentication');
  });
});

describe('logout', () => {
  it('204; the session is revoked server-side (the old cookie no longer works)', async () => {
    const account = await signup(base);
    const cookie = account.client.sessionCookie!;
    expect((await account.client.post('/api/auth/logout')).status).toBe(204);
    const replay = new Client(base);
    replay.cookies.set('gatehouse_session', cookie);
    expect((await replay.get('/api/session')).status).toBe(401);
  });

  it('204 without any session, and with an empty JSON body', async () => {
    expect((await new Client(base).post('/api/auth/logout')).status).toBe(204);
    expect((await new Client(base).req('POST', '/api/auth/logout', { raw: '' })).status).toBe(204);
  });
});

describe('GET /api/session and /api/account', () => {
  it('session: user, aal, amr, authTime, mfaAt, expiresAt', async () => {
    const account = await signup(base);
    const res = await account.client.get('/api/session');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      user: { id: account.userId, email: account.email },
      aal: 1,
      amr: ['pwd'],
      authTime: expect.stringMatching(ISO),
      mfaAt: null,
      expiresAt: expect.stringMatching(ISO),
    });
    expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());
  });

  it('session without one → 401 unauthenticated; garbage cookies too', async () => {
    const c = new Client(base);
    expect((await c.get('/api/session')).body.error).toBe('unauthenticated');
    c.cookies.set('gatehouse_session', 'A'.repeat(43));
    expect((await c.get('/api/session')).body.error).toBe('unauthenticated');
    c.cookies.set('gatehouse_session', '%00%ff;;');
    expect((await c.get('/api/session')).status).toBe(401);
  });

  it('account: id, email, mfaEnabled, createdAt', async () => {
    const plain = await signup(base);
    expect((await plain.client.get('/api/account')).body).toEqual({
      id: plain.userId,
      email: plain.email,
      mfaEnabled: false,
      createdAt: expect.stringMatching(ISO),
    });
    const mfa = await signupWithTotp(base);
    expect((await mfa.client.get('/api/account')).body).toMatchObject({ id: mfa.userId, mfaEnabled: true });
    expect((await new Client(base).get('/api/account')).status).toBe(401);
  });

  it('account: a session answers what an API token answers (the account as of this request, never a copy from an earlier one)', async () => {
    const account = await signup(base);
    const created = await account.client.post('/api/tokens', { name: 'reader', scopes: ['account:read'] });
    expect(created.status).toBe(201);
    const byToken = new Client(base);
    byToken.bearer = created.body.token;
    // A later session: its own created_at differs from the account's.
    await new Promise((r) => setTimeout(r, 5));
    const later = (await login(base, account)).client;
    const expected = (await byToken.get('/api/account')).body;
    expect(expected).toMatchObject({ id: account.userId, email: account.email, mfaEnabled: false });
    expect((await account.client.get('/api/account')).body).toEqual(expected);
    expect((await later.get('/api/account')).body).toEqual(expected);

    // Changed in the database between two requests: the next request of the same session sees it.
    const renamed = uniqueEmail();
    await server.server.gatehouse.database.db.updateTable('users').set({ email: renamed }).where('id', '=', account.userId).execute();
    expect((await later.get('/api/account')).body).toEqual({ ...expected, email: renamed });
    expect((await byToken.get('/api/account')).body).toEqual({ ...expected, email: renamed });
  });
});

describe('second factors', () => {
  it('setup → secret, otpauth URI and SVG QR; the factor is inactive until confirmed', async () => {
    const account = await signup(base);
    const setup = await account.client.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    expect(setup.body).toMatchObject({ factorId: expect.any(String), secret: expect.stringMatching(/^[A-Z2-7]{32}$/) });
    expect(setup.body.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(setup.body.otpauthUri).toContain(`secret=${setup.body.secret}`);
    expect(setup.body.qrSvg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    // Not active yet: login still needs no second factor. The set-up is listed as this session's.
    expect((await account.client.get('/api/mfa')).body).toEqual({
      factors: [],
      recoveryCodesRemaining: 0,
      pendingSetups: [{ id: setup.body.factorId, type: 'totp', createdAt: expect.stringMatching(ISO), expiresAt: setup.body.expiresAt }],
    });
    expect(Date.parse(setup.body.expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);
    expect((await login(base, account)).res.status).toBe(200);
  });

  it('confirm with a wrong code → 401 invalid_code; with the right one → 10 recovery codes, factor listed', async () => {
    const account = await signup(base);
    const setup = await account.client.post('/api/mfa/totp/setup');
    const wrong = totpCodeAt(setup.body.secret, Date.now() + 5 * 60_000);
    const bad = await account.client.post('/api/mfa/totp/confirm', { code: wrong });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_code');
    const before = account.client.sessionCookie;
    const ok = await account.client.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now()) });
    expect(ok.status).toBe(200);
    expect(ok.body.recoveryCodes).toHaveLength(10);
    for (const code of ok.body.recoveryCodes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    expect(new Set(ok.body.recoveryCodes).size).toBe(10);
    // The session counts as having verified a second factor; its token was replaced.
    expect(account.client.sessionCookie).not.toBe(before);
    expect((await account.client.get('/api/session')).body).toMatchObject({ aal: 2, mfaAt: expect.stringMatching(ISO) });
    const list = await account.client.get('/api/mfa');
    expect(list.body).toEqual({
      factors: [{ id: setup.body.factorId, type: 'totp', createdAt: expect.stringMatching(ISO) }],
      recoveryCodesRemaining: 10,
      pendingSetups: [],
    });
    // The confirming code counts as used.
    const { client } = await login(base, account);
    const replay = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(setup.body.secret, Date.now()) });
    expect(replay.body.error).toBe('invalid_code');
  });

  it('confirm without a setup → 400 no_pending_setup', async () => {
    const account = await signup(base);
    const res = await account.client.post('/api/mfa/totp/confirm', { code: '123456' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('no_pending_setup');
  });

  it('regenerating recovery codes: 10 new ones, all earlier codes stop working', async () => {
    const account = await signupWithTotp(base);
    const res = await account.client.post('/api/mfa/recovery-codes');
    expect(res.status).toBe(200);
    expect(res.body.recoveryCodes).toHaveLength(10);
    const old = await login(base, account);
    expect((await old.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] })).body.error).toBe(
      'invalid_code',
    );
    expect((await old.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: res.body.recoveryCodes[0] })).status).toBe(200);
  });

  it('deleting the TOTP factor → 204; login needs no second factor any more; another account’s factor is 404', async () => {
    const victim = await signupWithTotp(base);
    const attacker = await signupWithTotp(base);
    const cross = await attacker.client.delete(`/api/mfa/totp/${victim.factorId}`);
    expect(cross.status).toBe(404);
    expect(cross.body.error).toBe('not_found');
    expect((await login(base, victim)).res.status).toBe(202);

    expect((await victim.client.delete(`/api/mfa/totp/${victim.factorId}`)).status).toBe(204);
    expect((await victim.client.get('/api/mfa')).body).toEqual({ factors: [], recoveryCodesRemaining: 0, pendingSetups: [] });
    expect((await login(base, victim)).res.status).toBe(200);
    expect((await victim.client.delete(`/api/mfa/totp/${victim.factorId}`)).status).toBe(404);
  });
});

describe('sessions list and delete', () => {
  it('lists this account’s sessions, marks the current one, deletes another; another account’s id is 404', async () => {
    const account = await signup(base);
    const second = await login(base, account, {});
    const list = await account.client.get('/api/sessions');
    expect(list.status).toBe(200);
    expect(list.body.sessions).toHaveLength(2);
    for (const s of list.body.sessions) {
      expect(s).toMatchObject({
        id: expect.any(String),
        current: expect.any(Boolean),
        createdAt: expect.stringMatching(ISO),
        lastSeenAt: expect.stringMatching(ISO),
        ip: expect.any(String),
        userAgent: expect.any(String),
        aal: 1,
      });
    }
    const current = list.body.sessions.filter((s: { current: boolean }) => s.current);
    expect(current).toHaveLength(1);
    const other = list.body.sessions.find((s: { current: boolean }) => !s.current);

    const stranger = await signup(base);
    const cross = await stranger.client.delete(`/api/sessions/${other.id}`);
    expect(cross.status).toBe(404);
    expect(cross.body.error).toBe('not_found');
    expect((await second.client.get('/api/session')).status).toBe(200);

    expect((await account.client.delete(`/api/sessions/${other.id}`)).status).toBe(204);
    expect((await second.client.get('/api/session')).status).toBe(401);
    expect((await account.client.get('/api/sessions')).body.sessions).toHaveLength(1);
    expect((await account.client.delete(`/api/sessions/${other.id}`)).status).toBe(404);
    expect((await account.client.delete('/api/sessions/does-not-exist')).status).toBe(404);
  });

  it('never shows another account’s sessions', async () => {
    const a = await signup(base);
    const b = await signup(base);
    const ids = (await a.client.get('/api/sessions')).body.sessions.map((s: { id: string }) => s.id);
    const bIds = (await b.client.get('/api/sessions')).body.sessions.map((s: { id: string }) => s.id);
    expect(ids.filter((id: string) => bIds.includes(id))).toEqual([]);
  });
});

describe('input handling', () => {
  it('a body over 64 KiB → 413 payload_too_large (also unauthenticated)', async () => {
    const c = new Client(base);
    const res = await c.post('/api/auth/login', { email: 'a@example.com', password: 'x'.repeat(70_000) });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
    const account = await signup(base);
    const big = await account.client.post('/api/transfers', { to: 'x', amountCents: 1, memo: 'y'.repeat(66_000) });
    expect(big.status).toBe(413);
    // Just under the limit is not refused for its size.
    const under = await c.req('POST', '/api/auth/login', {
      raw: JSON.stringify({ email: 'a@example.com', password: 'p', pad: 'z'.repeat(60_000) }),
    });
    expect(under.status).toBe(400);
  });

  it.each([
    '{',
    '{"email":',
    'not json',
    '{"email": "a@b.c",}',
    '\u0000',
    '[1,2',
    '{"__proto__": {"x": 1}}',
    '{"constructor": {"prototype": {}}}',
  ])('malformed JSON %j → 400 invalid_request', async (raw) => {
    const res = await new Client(base).req('POST', '/api/auth/login', { raw });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('wrong content type → 4xx JSON error, never 5xx', async () => {
    const res = await new Client(base).req('POST', '/api/auth/login', {
      raw: 'email=a&password=b',
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.error).toBe('invalid_request');
  });

  it('unknown fields → 400 invalid_request with details naming them', async () => {
    const res = await new Client(base).post('/api/auth/login', { email: 'a@example.com', password: 'x', isAdmin: true });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(JSON.stringify(res.body.details)).toContain('isAdmin');
    const account = await signup(base);
    const t = await account.client.post('/api/transfers', { to: 'bob', amountCents: 100, fee: 0 });
    expect(t.status).toBe(400);
    expect(JSON.stringify(t.body.details)).toContain('fee');
  });

  it.each([
    [null],
    [[]],
    ['a string'],
    [42],
    [{ email: 42, password: true }],
    [{ email: 'a@example.com' }],
    [{ email: 'a@example.com', password: 'x', transport: 'pigeon' }],
    [{ email: 'a@example.com', password: 'x', remember: 'yes' }],
  ])('wrong shapes %j → 400 invalid_request with details', async (json) => {
    const res = await new Client(base).req('POST', '/api/auth/login', { raw: JSON.stringify(json) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(Array.isArray(res.body.details)).toBe(true);
  });

  it('unknown endpoints → 404 not_found in the JSON shape', async () => {
    const res = await new Client(base).get('/api/nope');
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
  });
});

describe('CSRF (cookie-authenticated state-changing requests)', () => {
  it('cross-site Origin → 403 csrf; nothing happens', async () => {
    const account = await signup(base);
    const res = await account.client.post(
      '/api/transfers',
      { to: 'mallory', amountCents: 500 },
      { headers: { origin: 'https://evil.example' } },
    );
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('csrf');
    const del = await account.client.post('/api/auth/logout', undefined, { headers: { origin: 'http://evil.example' } });
    expect(del.status).toBe(403);
    expect((await account.client.get('/api/account/transactions')).body.transactions).toEqual([]);
    expect((await account.client.get('/api/session')).status).toBe(200);
  });

  it('Sec-Fetch-Site: cross-site → 403 csrf', async () => {
    const account = await signup(base);
    const res = await account.client.post(
      '/api/transfers',
      { to: 'mallory', amountCents: 500 },
      { headers: { 'sec-fetch-site': 'cross-site' } },
    );
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('csrf');
  });

  it('same origin, same-site, and no Origin at all are accepted', async () => {
    const account = await signup(base);
    expect((await account.client.post('/api/transfers', { to: 'a', amountCents: 1 }, { headers: { origin: base } })).status).toBe(201);
    expect(
      (await account.client.post('/api/transfers', { to: 'b', amountCents: 1 }, { headers: { 'sec-fetch-site': 'same-origin' } })).status,
    ).toBe(201);
    expect((await account.client.post('/api/transfers', { to: 'c', amountCents: 1 })).status).toBe(201);
    expect((await account.client.get('/api/account/transactions')).body.transactions).toHaveLength(3);
  });

  it('GET is not state-changing: a cross-site GET is answered normally', async () => {
    const account = await signup(base);
    expect(
      (await account.client.get('/api/session', { headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })).status,
    ).toBe(200);
  });

  it('a look-alike origin (prefix, port, scheme) is cross-site', async () => {
    const account = await signup(base);
    const u = new URL(base);
    for (const origin of [`${base}.evil.example`, `https://${u.host}`, `http://${u.hostname}:${Number(u.port) + 1}`, 'null']) {
      const res = await account.client.post('/api/transfers', { to: 'x', amountCents: 1 }, { headers: { origin } });
      expect(res.status, origin).toBe(403);
    }
  });

  it('Bearer-authenticated requests are unaffected', async () => {
    const account = await signup(base);
    const { client } = await login(base, account, { transport: 'token' });
    const res = await client.post(
      '/api/transfers',
      { to: 'bob', amountCents: 5 },
      { headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } },
    );
    expect(res.status).toBe(201);
  });
});

describe('token transport', () => {
  it('login with transport:"token" returns sessionToken and sets no cookie; Bearer works', async () => {
    const account = await signup(base);
    const { client, res } = await login(base, account, { transport: 'token' });
    expect(res.status).toBe(200);
    expect(res.body.sessionToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(res.setCookies.filter((c) => c.startsWith('gatehouse_session='))).toEqual([]);
    const session = await client.get('/api/session');
    expect(session.status).toBe(200);
    expect(session.body.user.id).toBe(account.userId);
  });

  it('every rule holds for Bearer: pending → mfa_required, verify rotates the token, logout revokes', async () => {
    const account = await signupWithTotp(base);
    const { client, res } = await login(base, account, { transport: 'token' });
    expect(res.status).toBe(202);
    const pendingToken = res.body.sessionToken;
    expect(pendingToken).toBeDefined();
    expect((await client.get('/api/session')).body.error).toBe('mfa_required');
    expect((await client.get('/api/account')).body.error).toBe('mfa_required');

    const verify = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) });
    expect(verify.status).toBe(200);
    expect(verify.body.sessionToken).toBeDefined();
    expect(verify.body.sessionToken).not.toBe(pendingToken);
    expect(verify.setCookies.filter((c) => c.startsWith('gatehouse_session='))).toEqual([]);
    // The pending token stopped working.
    const stale = new Client(base);
    stale.bearer = pendingToken;
    expect((await stale.get('/api/session')).status).toBe(401);
    expect((await stale.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] })).body.error).toBe(
      'no_pending_authentication',
    );

    client.bearer = verify.body.sessionToken;
    expect((await client.get('/api/session')).body.aal).toBe(2);
    expect((await client.post('/api/auth/logout')).status).toBe(204);
    expect((await client.get('/api/session')).status).toBe(401);
  });

  it('a cookie token is not accepted as Bearer, and a Bearer token not as a cookie', async () => {
    const account = await signup(base);
    const cookieToken = account.client.sessionCookie!;
    const asBearer = new Client(base);
    asBearer.bearer = cookieToken;
    expect((await asBearer.get('/api/session')).status).toBe(401);
    // A cookie replayed as Bearer would skip the CSRF check: it must not even authenticate.
    expect((await asBearer.post('/api/transfers', { to: 'x', amountCents: 1 })).status).toBe(401);

    const { res } = await login(base, account, { transport: 'token' });
    const asCookie = new Client(base);
    asCookie.cookies.set('gatehouse_session', res.body.sessionToken);
    expect((await asCookie.get('/api/session')).status).toBe(401);

    // Legitimate use of each still works.
    expect((await account.client.get('/api/session')).status).toBe(200);
    const bearer = new Client(base);
    bearer.bearer = res.body.sessionToken;
    expect((await bearer.get('/api/session')).status).toBe(200);
  });

  it('malformed Authorization headers are 401, never 5xx', async () => {
    for (const authorization of ['Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', `Bearer ${'x'.repeat(5000)}`, 'Bearer ../../etc']) {
      const res = await new Client(base).get('/api/session', { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
  });
});

describe('session fixation and token rotation', () => {
  it('a session cookie planted before login is not the session after it (and is revoked)', async () => {
    const attacker = await signup(base);
    const planted = attacker.client.sessionCookie!;
    const victim = await signup(base);
    const browser = new Client(base);
    browser.cookies.set('gatehouse_session', planted);
    const res = await browser.post('/api/auth/login', { email: victim.email, password: victim.password });
    expect(res.status).toBe(200);
    expect(browser.sessionCookie).not.toBe(planted);
    expect((await browser.get('/api/session')).body.user.id).toBe(victim.userId);
    // The planted session does not give the attacker the victim's account.
    const attackerView = new Client(base);
    attackerView.cookies.set('gatehouse_session', planted);
    const seen = await attackerView.get('/api/session');
    expect(seen.status === 401 || seen.body.user.id === attacker.userId).toBe(true);
  });

  it('an invented cookie value planted before login is ignored and replaced', async () => {
    const victim = await signupWithTotp(base);
    const browser = new Client(base);
    const invented = 'B'.repeat(43);
    browser.cookies.set('gatehouse_session', invented);
    await browser.post('/api/auth/login', { email: victim.email, password: victim.password });
    expect(browser.sessionCookie).not.toBe(invented);
    await browser.post('/api/auth/mfa/verify', { method: 'recovery_code', code: victim.recoveryCodes[0] });
    const attacker = new Client(base);
    attacker.cookies.set('gatehouse_session', invented);
    expect((await attacker.get('/api/session')).status).toBe(401);
  });

  it('the token is replaced after login, verify, step-up, reauth and confirm; each old token stops working', async () => {
    const tokens: string[] = [];
    const account = await signup(base);
    tokens.push(account.client.sessionCookie!);

    // reauth
    const reauth = await account.client.post('/api/auth/reauth', { password: account.password });
    expect(reauth.status).toBe(200);
    tokens.push(account.client.sessionCookie!);

    // confirm
    const setup = await account.client.post('/api/mfa/totp/setup');
    const confirm = await account.client.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now() - 30_000) });
    expect(confirm.status).toBe(200);
    tokens.push(account.client.sessionCookie!);

    // login (pending) and verify
    const { client } = await login(base, account);
    tokens.push(client.sessionCookie!);
    expect((await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(setup.body.secret, Date.now()) })).status).toBe(
      200,
    );
    tokens.push(client.sessionCookie!);

    // step-up
    const step = await client.post('/api/auth/step-up', { method: 'recovery_code', code: confirm.body.recoveryCodes[0] });
    expect(step.status).toBe(200);
    expect(step.body).toMatchObject({ aal: 2, mfaAt: expect.stringMatching(ISO) });
    tokens.push(client.sessionCookie!);

    expect(new Set(tokens).size).toBe(tokens.length);
    // #2 is still account.client's current token and #5 client's; #3 (pending) is checked below.
    for (const old of [tokens[0]!, tokens[1]!, tokens[4]!]) {
      const c = new Client(base);
      c.cookies.set('gatehouse_session', old);
      expect((await c.get('/api/session')).status, `token #${tokens.indexOf(old)}`).toBe(401);
    }
    const pending = new Client(base);
    pending.cookies.set('gatehouse_session', tokens[3]!);
    expect((await pending.post('/api/auth/mfa/verify', { method: 'recovery_code', code: confirm.body.recoveryCodes[1] })).body.error).toBe(
      'no_pending_authentication',
    );
    // The current tokens work.
    expect((await client.get('/api/session')).status).toBe(200);
    expect((await account.client.get('/api/session')).status).toBe(200);
  });

  it('reauth with a wrong password → 401 invalid_credentials and the token is kept', async () => {
    const account = await signup(base);
    const before = account.client.sessionCookie;
    const res = await account.client.post('/api/auth/reauth', { password: 'wrong-password-xyz' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_credentials');
    expect(account.client.sessionCookie).toBe(before);
    expect((await account.client.get('/api/session')).status).toBe(200);
  });

  it('parallel reauths with one token: one wins, none is a 5xx, the winner’s token works', async () => {
    const account = await signup(base);
    const token = account.client.sessionCookie!;
    const clients = Array.from({ length: 4 }, () => {
      const c = new Client(base);
      c.cookies.set('gatehouse_session', token);
      return c;
    });
    const results = await Promise.all(clients.map((c) => c.post('/api/auth/reauth', { password: account.password })));
    for (const r of results) expect(r.status).toBeLessThan(500);
    const winners = clients.filter((_c, i) => results[i]!.status === 200);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    const working = await Promise.all(winners.map((c) => c.get('/api/session')));
    expect(working.filter((r) => r.status === 200)).toHaveLength(1);
  });
});

describe('demo bank', () => {
  it('transfers below the threshold need a full session; transactions list them', async () => {
    const account = await signup(base);
    const res = await account.client.post('/api/transfers', { to: 'bob', amountCents: 1234, memo: 'rent' });
    expect(res.status).toBe(201);
    expect(res.body.id).toEqual(expect.any(String));
    const list = await account.client.get('/api/account/transactions');
    expect(list.status).toBe(200);
    expect(list.body.transactions).toEqual([expect.objectContaining({ id: res.body.id, counterparty: 'bob' })]);
    // Another account does not see them.
    const other = await signup(base);
    expect((await other.client.get('/api/account/transactions')).body.transactions).toEqual([]);
    expect((await new Client(base).get('/api/account/transactions')).status).toBe(401);
  });

  it.each([
    [{ to: '', amountCents: 1 }],
    [{ to: 'x'.repeat(65), amountCents: 1 }],
    [{ to: 'bob', amountCents: 0 }],
    [{ to: 'bob', amountCents: -5 }],
    [{ to: 'bob', amountCents: 1.5 }],
    [{ to: 'bob', amountCents: '100' }],
    [{ to: 'bob' }],
    [{ amountCents: 1 }],
  ])('invalid transfer %j → 400 invalid_request', async (json) => {
    const account = await signup(base);
    const res = await account.client.post('/api/transfers', json);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});

describe('security events', () => {
  it('GET /api/account/events lists what happened, newest first', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    expect((await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: 'AAAA-AAAA-AAAA-AAAA' })).status).toBe(401);
    expect((await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] })).status).toBe(200);
    expect((await client.post('/api/mfa/recovery-codes')).status).toBe(200);
    expect((await client.delete(`/api/mfa/totp/${account.factorId}`)).status).toBe(204);
    const res = await client.get('/api/account/events');
    expect(res.status).toBe(200);
    const types = res.body.events.map((e: { type: string }) => e.type);
    for (const t of ['mfa.factor_added', 'mfa.failed', 'mfa.recovery_code_used', 'mfa.recovery_codes_regenerated', 'mfa.factor_removed']) {
      expect(types).toContain(t);
    }
    expect(types.indexOf('mfa.factor_removed')).toBeLessThan(types.indexOf('mfa.factor_added'));
    const times = res.body.events.map((e: { at: string }) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const e of res.body.events)
      expect(e).toMatchObject({ at: expect.stringMatching(ISO), ip: expect.any(String), userAgent: expect.any(String) });
    // Nothing secret leaks into the log.
    expect(JSON.stringify(res.body)).not.toContain(account.secret);
    expect(JSON.stringify(res.body)).not.toContain(account.recoveryCodes[0]);
  });
});

describe('hostile second-factor input', () => {
  it.each([
    ['totp', '１２３４５６'],
    ['totp', '12345\u0000'],
    ['totp', ' '.repeat(64)],
    ['totp', '9'.repeat(64)],
    ['recovery_code', 'ＡＡＡＡ-ＢＢＢＢ-ＣＣＣＣ-ＤＤＤＤ'],
    ['recovery_code', "'; drop table recovery_codes; --"],
    ['recovery_code', '\u202e\u200b'.repeat(10)],
  ])('%s %j → 401 invalid_code or 400, never 5xx', async (method, code) => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const res = await client.post('/api/auth/mfa/verify', { method, code });
    expect([400, 401]).toContain(res.status);
    expect(['invalid_code', 'invalid_request']).toContain(res.body.error);
  });
});

describe('order of checks: size and syntax, authentication, CSRF, freshness, fields', () => {
  it('malformed JSON beats authentication', async () => {
    const res = await new Client(base).req('POST', '/api/transfers', { raw: '{"to":' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('authentication beats CSRF and body fields', async () => {
    const res = await new Client(base).post('/api/transfers', { nonsense: true }, { headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthenticated');
  });

  it('CSRF beats body fields', async () => {
    const account = await signup(base);
    const res = await account.client.post('/api/transfers', { nonsense: true }, { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('csrf');
  });
});
