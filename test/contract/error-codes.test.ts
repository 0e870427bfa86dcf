import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, login, mfaUser, signup, sleep, strongPassword, type MfaUser, type Res } from './client.js';

let srv: TestServer;
let all: TestServer;
let u: MfaUser;

beforeAll(async () => {
  [srv, all] = await Promise.all([
    startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '1' }),
    startTestServer({ ...FAST, GATEHOUSE_MFA_REQUIRED: 'all' }),
  ]);
  u = await mfaUser(srv.url, 'codes');
});
afterAll(async () => {
  await Promise.all([srv?.close(), all?.close()]);
});

const seen = new Set<string>();
function check(res: Res, status: number, code: string): void {
  expectError(res, status, code);
  seen.add(code);
}

describe('every error code in the table, with its status', () => {
  it('invalid_request 400', async () => {
    check(await new Client(srv.url).post('/api/auth/login', undefined, { raw: '{' }), 400, 'invalid_request');
    check(await new Client(srv.url).post('/api/auth/login', { email: 'a@b.test' }), 400, 'invalid_request');
  });
  it('weak_password 400', async () => {
    check(await new Client(srv.url).post('/api/auth/signup', { email: 'weak@example.test', password: 'abc' }), 400, 'weak_password');
  });
  it('invalid_token 400', async () => {
    check(await new Client(srv.url).post('/api/auth/password/reset', { token: 'x', password: strongPassword() }), 400, 'invalid_token');
    check(await new Client(srv.url).post('/api/account/email/confirm', { token: 'x' }), 400, 'invalid_token');
  });
  it('unauthenticated 401', async () => {
    check(await new Client(srv.url).get('/api/session'), 401, 'unauthenticated');
    check(await new Client(srv.url).get('/api/mfa'), 401, 'unauthenticated');
    check(await new Client(srv.url).post('/api/auth/reauth', { password: 'x' }), 401, 'unauthenticated');
  });
  it('invalid_credentials 401', async () => {
    check(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: 'Wrong!pass123' }), 401, 'invalid_credentials');
  });
  it('mfa_required 401', async () => {
    const { client } = await login(srv.url, u);
    check(await client.get('/api/session'), 401, 'mfa_required');
  });
  it('no_pending_authentication 401', async () => {
    check(await new Client(srv.url).post('/api/auth/mfa/verify', { method: 'totp', code: '000000' }), 401, 'no_pending_authentication');
  });
  it('invalid_code 401', async () => {
    const { client } = await login(srv.url, u);
    check(await client.post('/api/auth/mfa/verify', { method: 'totp', code: u.totp.wrong() }), 401, 'invalid_code');
  });
  it('csrf 403', async () => {
    const v = await signup(srv.url, 'csrf');
    check(await v.client.post('/api/auth/logout', undefined, { headers: { origin: 'null' } }), 403, 'csrf');
  });
  it('enrollment_required 403', async () => {
    const c = new Client(all.url);
    expect((await c.post('/api/auth/signup', { email: 'enrol@example.test', password: strongPassword() })).status).toBe(201);
    check(await c.get('/api/account'), 403, 'enrollment_required');
  });
  it('step_up_required 403 with methods and maxAge', async () => {
    const v = await signup(srv.url, 'stale');
    await sleep(1200);
    const r = await v.client.post('/api/tokens', { name: 'x', scopes: [] });
    check(r, 403, 'step_up_required');
    expect(Array.isArray(r.body.methods)).toBe(true);
    expect(r.body.maxAge).toBe(1);
  });
  it('interactive_session_required 403 and insufficient_scope 403', async () => {
    const v = await signup(srv.url, 'tok');
    const t = await v.client.post('/api/tokens', { name: 'x', scopes: ['account:read'] });
    expect(t.status).toBe(201);
    const c = new Client(srv.url);
    c.bearer = t.body.token;
    check(await c.post('/api/tokens', { name: 'y', scopes: [] }), 403, 'interactive_session_required');
    check(await c.get('/api/account/transactions'), 403, 'insufficient_scope');
  });
  it('not_found 404', async () => {
    const v = await signup(srv.url, 'nf');
    check(await v.client.del('/api/sessions/00000000-0000-0000-0000-000000000000'), 404, 'not_found');
  });
  it('email_taken 409', async () => {
    check(await new Client(srv.url).post('/api/auth/signup', { email: u.email, password: strongPassword() }), 409, 'email_taken');
  });
  it('payload_too_large 413 (over 64 KiB, not under)', async () => {
    const under = JSON.stringify({ email: 'a@b.test', password: 'p'.repeat(60 * 1024) });
    const r = await new Client(srv.url).post('/api/auth/login', undefined, { raw: under });
    expect(r.status).not.toBe(413);
    check(
      await new Client(srv.url).post('/api/auth/login', undefined, {
        raw: JSON.stringify({ email: 'a@b.test', password: 'p'.repeat(65 * 1024) }),
      }),
      413,
      'payload_too_large',
    );
  });
  it('too_many_attempts 429 with retryAfter and Retry-After', async () => {
    const v = await mfaUser(srv.url, 'tma');
    const { client } = await login(srv.url, v);
    let last: Res | undefined;
    for (let i = 0; i < 5; i++) last = await client.post('/api/auth/mfa/verify', { method: 'totp', code: v.totp.wrong() });
    check(last!, 429, 'too_many_attempts');
    expect(Number(last!.headers['retry-after'])).toBe(last!.body.retryAfter);
  });
  it('covered every code', () => {
    expect([...seen].sort()).toEqual(
      [
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
      ].sort(),
    );
  });
});
