/**
 * Session lifetimes with small TTLs (pending, idle, absolute) and the enrolling state
 * under GATEHOUSE_MFA_REQUIRED=all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client } from '../helpers/http-client.js';
import { login, PASSWORD, signupWithTotp, sleep, uniqueEmail } from '../helpers/accounts.js';

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
async function serve(env: Record<string, string>): Promise<string> {
  const s = await startFastServer(env);
  servers.push(s);
  return s.url;
}

describe.concurrent('timeouts', () => {
  it('a pending session dies after GATEHOUSE_PENDING_TTL; a prompt verification works', async () => {
    const base = await serve({ GATEHOUSE_PENDING_TTL: '2' });
    const account = await signupWithTotp(base);
    const slow = await login(base, account);
    expect(slow.res.body.expiresIn).toBe(2);
    const prompt = await login(base, account);
    expect((await prompt.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] })).status).toBe(
      200,
    );
    await sleep(2_300);
    const late = await slow.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[1] });
    expect(late.status).toBe(401);
    expect(late.body.error).toBe('no_pending_authentication');
    // The completed session is not bound by the pending TTL.
    expect((await prompt.client.get('/api/session')).status).toBe(200);
  });

  it('an idle session dies after GATEHOUSE_SESSION_IDLE_TTL; an active one lives on', async () => {
    const base = await serve({ GATEHOUSE_SESSION_IDLE_TTL: '2', GATEHOUSE_SESSION_TTL: '60' });
    const idle = new Client(base);
    const active = new Client(base);
    await idle.post('/api/auth/signup', { email: uniqueEmail(), password: PASSWORD });
    await active.post('/api/auth/signup', { email: uniqueEmail(), password: PASSWORD });
    for (let i = 0; i < 5; i++) {
      await sleep(800);
      expect((await active.get('/api/session')).status, `active request ${i}`).toBe(200);
    }
    const res = await idle.get('/api/session');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthenticated');
  });

  it('the sessions list leaves out sessions that idled out', async () => {
    const base = await serve({ GATEHOUSE_SESSION_IDLE_TTL: '2', GATEHOUSE_SESSION_TTL: '60' });
    const email = uniqueEmail();
    const active = new Client(base);
    await active.post('/api/auth/signup', { email, password: PASSWORD });
    const idle = await login(base, { email, password: PASSWORD });
    expect((await active.get('/api/sessions')).body.sessions).toHaveLength(2);
    for (let i = 0; i < 4; i++) {
      await sleep(700);
      expect((await active.get('/api/session')).status).toBe(200);
    }
    const list = await active.get('/api/sessions');
    expect(list.body.sessions).toHaveLength(1);
    expect(list.body.sessions[0].current).toBe(true);
    expect((await idle.client.get('/api/session')).status).toBe(401);
  });

  it('a session dies at GATEHOUSE_SESSION_TTL however active it is', async () => {
    const base = await serve({ GATEHOUSE_SESSION_IDLE_TTL: '60', GATEHOUSE_SESSION_TTL: '3' });
    const c = new Client(base);
    await c.post('/api/auth/signup', { email: uniqueEmail(), password: PASSWORD });
    const session = await c.get('/api/session');
    expect(Date.parse(session.body.expiresAt) - Date.now()).toBeLessThanOrEqual(3_000);
    await sleep(1_500);
    expect((await c.get('/api/session')).status).toBe(200);
    await sleep(1_800);
    expect((await c.get('/api/session')).status).toBe(401);
  });
});

describe('enrolling (GATEHOUSE_MFA_REQUIRED=all)', () => {
  let base: string;
  beforeAll(async () => {
    base = await serve({ GATEHOUSE_MFA_REQUIRED: 'all' });
  });

  it('signup → 201 enrollment_required; only TOTP setup/confirm and logout work; then full', async () => {
    const c = new Client(base);
    const email = uniqueEmail();
    const signup = await c.post('/api/auth/signup', { email, password: PASSWORD });
    expect(signup.status).toBe(201);
    expect(signup.body).toMatchObject({ status: 'enrollment_required', user: { email } });
    for (const [method, path, json] of [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['GET', '/api/mfa'],
      ['GET', '/api/sessions'],
      ['POST', '/api/mfa/recovery-codes', {}],
      ['POST', '/api/auth/step-up', { method: 'totp', code: '123456' }],
      ['POST', '/api/auth/reauth', { password: PASSWORD }],
      ['GET', '/api/account/transactions'],
      ['POST', '/api/transfers', { to: 'x', amountCents: 1 }],
    ] as const) {
      const res = await c.req(method, path, { json });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error, `${method} ${path}`).toBe('enrollment_required');
    }
    const verify = await c.post('/api/auth/mfa/verify', { method: 'totp', code: '123456' });
    expect(verify.body.error).toBe('no_pending_authentication');

    const setup = await c.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    const before = c.sessionCookie;
    const confirm = await c.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now()) });
    expect(confirm.status).toBe(200);
    expect(confirm.body.recoveryCodes).toHaveLength(10);
    expect(c.sessionCookie).not.toBe(before);
    const session = await c.get('/api/session');
    expect(session.status).toBe(200);
    expect(session.body.aal).toBe(2);
    expect((await c.get('/api/account')).body.mfaEnabled).toBe(true);
    // The old enrolling token stopped working.
    const old = new Client(base);
    old.cookies.set('gatehouse_session', before!);
    expect((await old.get('/api/session')).status).toBe(401);

    // A later login needs the factor; the last factor cannot be removed under the policy.
    const next = await login(base, { email, password: PASSWORD });
    expect(next.res.status).toBe(202);
    expect(next.res.body.status).toBe('mfa_required');
    const del = await c.delete(`/api/mfa/totp/${setup.body.factorId}`);
    expect(del.status).toBe(400);
    expect((await c.get('/api/mfa')).body.factors).toHaveLength(1);
  });

  it('login of an account with no factor → 202 enrollment_required; logout works', async () => {
    const email = uniqueEmail();
    const first = new Client(base);
    await first.post('/api/auth/signup', { email, password: PASSWORD });
    await first.post('/api/auth/logout');
    const { client, res } = await login(base, { email, password: PASSWORD });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('enrollment_required');
    expect((await client.get('/api/account')).body.error).toBe('enrollment_required');
    expect((await client.post('/api/auth/logout')).status).toBe(204);
    expect((await client.get('/api/account')).body.error).toBe('unauthenticated');
  });

  it('token transport works for enrolment too', async () => {
    const c = new Client(base);
    const signup = await c.post('/api/auth/signup', { email: uniqueEmail(), password: PASSWORD, transport: 'token' });
    expect(signup.body.status).toBe('enrollment_required');
    c.bearer = signup.body.sessionToken;
    expect((await c.get('/api/session')).body.error).toBe('enrollment_required');
    const setup = await c.post('/api/mfa/totp/setup');
    const confirm = await c.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now()) });
    expect(confirm.status).toBe(200);
    expect(confirm.body.sessionToken).toBeDefined();
    c.bearer = confirm.body.sessionToken;
    expect((await c.get('/api/session')).body.aal).toBe(2);
  });
});
