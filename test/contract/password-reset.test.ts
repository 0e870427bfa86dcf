import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client,
  FAST,
  expectError,
  login,
  mfaUser,
  signup,
  sleep,
  startMailCatcher,
  strongPassword,
  takeRecovery,
  uniqueEmail,
  type MailCatcher,
} from './client.js';

let srv: TestServer;
let mail: MailCatcher;

beforeAll(async () => {
  mail = await startMailCatcher();
  srv = await startTestServer({ ...FAST, GATEHOUSE_SMTP_URL: mail.url, GATEHOUSE_MAIL_FROM: 'security@gatehouse.test' });
});
afterAll(async () => {
  await srv?.close();
  await mail?.close();
});

async function requestReset(email: string, as = email) {
  const r = await new Client(srv.url).post('/api/auth/password/forgot', { email: as });
  expect(r.status).toBe(202);
  const m = await mail
    .waitFor((x) => x.to.includes(email) && x.event === 'password_reset.requested' && x.tokens.length > 0)
    .catch((e) => {
      console.log(
        email,
        mail.mails.map((x) => [x.to, x.event, x.tokens]),
      );
      throw e;
    });
  return { res: r, mail: m, token: m.tokens[0]! };
}

describe.concurrent('password reset', () => {
  it('forgot → 202 for existing and unknown accounts alike; mail only to existing ones, from GATEHOUSE_MAIL_FROM', async () => {
    const u = await signup(srv.url, 'fg');
    const { res, mail: m } = await requestReset(u.email);
    expect(m.from).toBe('security@gatehouse.test');
    expect(m.headers['x-gatehouse-event']).toBe('password_reset.requested');
    const nobody = uniqueEmail('nobody');
    const r2 = await new Client(srv.url).post('/api/auth/password/forgot', { email: nobody });
    expect(r2.status).toBe(202);
    expect(r2.body).toEqual(res.body);
    await sleep(300);
    expect(mail.to(nobody)).toHaveLength(0);
  });

  it('mail goes to the address as stored, even when asked with another case/width form', async () => {
    const u = await signup(srv.url, 'fgnorm');
    const [local, domain] = u.email.split('@') as [string, string];
    const variant = `  ${local.toUpperCase()}＠${domain.toUpperCase()} `;
    const r = await new Client(srv.url).post('/api/auth/password/forgot', { email: variant });
    expect(r.status).toBe(202);
    const m = await mail.waitFor((x) => x.to.includes(u.email) && x.event === 'password_reset.requested');
    expect(m.to).toEqual([u.email]);
    await sleep(200);
    expect(mail.mails.filter((x) => x.to.some((t) => t.toLowerCase().includes(local.toLowerCase()) && t !== u.email))).toHaveLength(0);
  });

  it('reset → 200 {status:"password_changed"}; no session; all sessions and remember-me tokens revoked; single-use', async () => {
    const u = await signup(srv.url, 'rs');
    const other = await login(srv.url, u, { remember: true });
    const rememberName = other.client.jar
      .names()
      .find((n) => n !== 'gatehouse_session' && other.res.setCookies.some((s) => s.startsWith(n + '=') && /max-age=\d{6,}/i.test(s)));
    const remember = rememberName ? other.client.jar.get(rememberName) : undefined;
    const { token } = await requestReset(u.email);
    const np = strongPassword();
    const c = new Client(srv.url);
    const r = await c.post('/api/auth/password/reset', { token, password: np });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ status: 'password_changed' });
    expect(r.body.sessionToken).toBeUndefined();
    expectError(await c.get('/api/session'), 401, 'unauthenticated');
    expectError(await u.client.get('/api/session'), 401, 'unauthenticated');
    expectError(await other.client.get('/api/session'), 401, 'unauthenticated');
    if (remember && rememberName) {
      const rc = new Client(srv.url);
      rc.jar.set(rememberName, remember);
      expectError(await rc.get('/api/session'), 401, 'unauthenticated');
    }
    expectError(await new Client(srv.url).post('/api/auth/password/reset', { token, password: strongPassword() }), 400, 'invalid_token');
    expect((await new Client(srv.url).post('/api/auth/login', { email: u.email, password: np })).status).toBe(200);
    expectError(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }), 401, 'invalid_credentials');
  });

  it('reset also revokes pending sessions (someone holding the old password)', async () => {
    const u = await mfaUser(srv.url, 'rspend');
    const p = await login(srv.url, u);
    expect(p.res.status).toBe(202);
    const { token } = await requestReset(u.email);
    expect((await new Client(srv.url).post('/api/auth/password/reset', { token, password: strongPassword() })).status).toBe(200);
    expectError(
      await p.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) }),
      401,
      'no_pending_authentication',
    );
  });

  it('reset does not bypass the second factor', async () => {
    const u = await mfaUser(srv.url, 'rsmfa');
    const { token } = await requestReset(u.email);
    const np = strongPassword();
    expect((await new Client(srv.url).post('/api/auth/password/reset', { token, password: np })).status).toBe(200);
    const l = await new Client(srv.url).post('/api/auth/login', { email: u.email, password: np });
    expect(l.status).toBe(202);
    expect(l.body.status).toBe('mfa_required');
    void takeRecovery;
  });

  it('400 invalid_token for an unknown token; weak passwords are 400 weak_password; malformed body 400 invalid_request', async () => {
    expectError(
      await new Client(srv.url).post('/api/auth/password/reset', { token: 'nope', password: strongPassword() }),
      400,
      'invalid_token',
    );
    const u = await signup(srv.url, 'rsweak');
    const { token } = await requestReset(u.email);
    expectError(await new Client(srv.url).post('/api/auth/password/reset', { token, password: 'short' }), 400, 'weak_password');
    expectError(await new Client(srv.url).post('/api/auth/password/reset', { token }), 400, 'invalid_request');
    expectError(await new Client(srv.url).post('/api/auth/password/forgot', {}), 400, 'invalid_request');
  });

  it('a reset token is no session credential and no email-change token', async () => {
    const u = await signup(srv.url, 'rsx');
    const { token } = await requestReset(u.email);
    expectError(await new Client(srv.url).get('/api/session', { bearer: token }), 401, 'unauthenticated');
    expectError(await new Client(srv.url).post('/api/account/email/confirm', { token }), 400, 'invalid_token');
  });
});
