import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client,
  FAST,
  login,
  mfaUser,
  signup,
  sleep,
  startMailCatcher,
  strongPassword,
  takeRecovery,
  uniqueEmail,
  type MailCatcher,
  type User,
} from './client.js';

let srv: TestServer;
let mail: MailCatcher;

beforeAll(async () => {
  mail = await startMailCatcher();
  srv = await startTestServer({ ...FAST, GATEHOUSE_SMTP_URL: mail.url, GATEHOUSE_LOCKOUT_SECONDS: '60' });
});
afterAll(async () => {
  await srv?.close();
  await mail?.close();
});

/** The mail with that event reached the account's address, and the same type is in its events. */
async function expectNotified(u: User, type: string, address = u.email, viewer: Client = u.client): Promise<void> {
  const m = await mail.waitFor((x) => x.event === type && x.to.map((t) => t.toLowerCase()).includes(address.toLowerCase()));
  expect(m.to).toHaveLength(1);
  expect(m.headers['x-gatehouse-event']).toBe(type);
  const ev = await viewer.get('/api/account/events');
  expect(ev.status, ev.text).toBe(200);
  expect(ev.body.events.map((e: any) => e.type)).toContain(type);
}

describe.concurrent('security notifications', () => {
  it('mfa.factor_added', async () => {
    const u = await mfaUser(srv.url, 'nfa');
    await expectNotified(u, 'mfa.factor_added');
  });

  it('mfa.failed after a correct password and a wrong code', async () => {
    const u = await mfaUser(srv.url, 'nff');
    const { client } = await login(srv.url, u);
    await client.post('/api/auth/mfa/verify', { method: 'totp', code: u.totp.wrong() });
    await expectNotified(u, 'mfa.failed');
  });

  it('mfa.recovery_code_used', async () => {
    const u = await mfaUser(srv.url, 'nfr');
    const { client } = await login(srv.url, u);
    expect((await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) })).status).toBe(200);
    await expectNotified(u, 'mfa.recovery_code_used');
  });

  it('mfa.factor_removed', async () => {
    const u = await mfaUser(srv.url, 'nfd');
    expect((await u.client.del(`/api/mfa/totp/${u.factorId}`)).status).toBe(204);
    await expectNotified(u, 'mfa.factor_removed');
  });

  it('mfa.recovery_codes_regenerated', async () => {
    const u = await mfaUser(srv.url, 'nfg');
    expect((await u.client.post('/api/mfa/recovery-codes')).status).toBe(200);
    await expectNotified(u, 'mfa.recovery_codes_regenerated');
  });

  it('account.email_changed goes to the old address', async () => {
    const u = await signup(srv.url, 'nec');
    const ne = uniqueEmail('necnew');
    expect((await u.client.post('/api/account/email', { email: ne })).status).toBe(202);
    const m = await mail.waitFor((x) => x.to.includes(ne) && x.tokens.length > 0);
    expect((await new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] })).status).toBe(200);
    await expectNotified(u, 'account.email_changed', u.email);
    expect(mail.mails.filter((x) => x.event === 'account.email_changed' && x.to.includes(ne))).toHaveLength(0);
  });

  it('account.password_changed', async () => {
    const u = await signup(srv.url, 'npc');
    expect((await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: strongPassword() })).status).toBe(200);
    await expectNotified(u, 'account.password_changed');
  });

  it('account.locked once when a password lockout begins', async () => {
    const u = await signup(srv.url, 'nlk');
    for (let i = 0; i < 13; i++) await new Client(srv.url).post('/api/auth/login', { email: u.email, password: `Wrong!${i}abcdefg` });
    await expectNotified(u, 'account.locked');
    await sleep(300);
    expect(mail.mails.filter((x) => x.event === 'account.locked' && x.to.includes(u.email))).toHaveLength(1);
  });

  it('account.locked once, even when the lockout is reached by parallel requests', async () => {
    const u = await signup(srv.url, 'nlkp');
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => new Client(srv.url).post('/api/auth/login', { email: u.email, password: `Wrong!${i}abcdefg` })),
    );
    await expectNotified(u, 'account.locked');
    await sleep(500);
    expect(mail.mails.filter((x) => x.event === 'account.locked' && x.to.includes(u.email))).toHaveLength(1);
  });

  it('account.locked once when a second-factor lockout begins', async () => {
    const u = await mfaUser(srv.url, 'nlm');
    for (let s = 0; s < 3; s++) {
      const { client } = await login(srv.url, u);
      for (let i = 0; i < 4; i++) await client.post('/api/auth/mfa/verify', { method: 'totp', code: u.totp.wrong() });
    }
    await expectNotified(u, 'account.locked');
    await sleep(300);
    expect(mail.mails.filter((x) => x.event === 'account.locked' && x.to.includes(u.email))).toHaveLength(1);
  });

  it('token.created', async () => {
    const u = await signup(srv.url, 'ntc');
    expect((await u.client.post('/api/tokens', { name: 'n', scopes: [] })).status).toBe(201);
    await expectNotified(u, 'token.created');
  });

  it('password_reset.requested only for an existing account', async () => {
    const u = await signup(srv.url, 'npr');
    expect((await new Client(srv.url).post('/api/auth/password/forgot', { email: u.email })).status).toBe(202);
    await expectNotified(u, 'password_reset.requested');
  });
});
