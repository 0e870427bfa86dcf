/**
 * Security notifications over a real SMTP server: every contract type arrives with its
 * X-Gatehouse-Event header and a body a person can act on; and a mail server outage
 * loses nothing: requests succeed meanwhile and every message arrives once it is back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { MailSink } from '../helpers/smtp.js';
import { Client } from '../helpers/http-client.js';
import { login, loginFull, signup, signupWithTotp, sleep, uniqueEmail } from '../helpers/accounts.js';

const UA = 'Mozilla/5.0 (X11; Linux x86_64) NotificationTest/1.0';

describe('notifications over SMTP', () => {
  let server: TestServer;
  const smtp = new MailSink();
  beforeAll(async () => {
    await smtp.start();
    server = await startFastServer({
      GATEHOUSE_SMTP_URL: smtp.url,
      GATEHOUSE_MAIL_FROM: 'Gatehouse <security@bank.test>',
      GATEHOUSE_LOCKOUT_SECONDS: '60',
    });
  });
  afterAll(async () => {
    await server?.close();
    await smtp.stop();
  });

  function expectActionable(mail: { text: string; headers: Record<string, string> }, type: string) {
    expect(mail.headers['x-gatehouse-event']).toBe(type);
    expect(mail.headers.from).toBe('Gatehouse <security@bank.test>');
    expect(mail.headers.subject).toMatch(/^Gatehouse: /);
    expect(mail.text).toMatch(/^When: {4}\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d UTC$/m);
    expect(mail.text).toMatch(/^From IP: 127\.0\.0\.1$/m);
    expect(mail.text).toMatch(/If this was not you/);
  }

  it('sends every second-factor, token and password notification to the account address', async () => {
    const account = await signupWithTotp(server.url);
    const { email } = account;
    expectActionable(await smtp.waitForEvent(email, 'mfa.factor_added'), 'mfa.factor_added');

    // mfa.failed: the right password, then a wrong code.
    const pending = await login(server.url, account);
    await pending.client.post('/api/auth/mfa/verify', { method: 'totp', code: '000000' }, { headers: { 'user-agent': UA } });
    const failed = await smtp.waitForEvent(email, 'mfa.failed');
    expectActionable(failed, 'mfa.failed');
    expect(failed.text).toContain(`Browser: ${UA}`);
    expect(failed.text).toMatch(/know your password/);

    const full = await loginFull(server.url, account);
    const used = await smtp.waitForEvent(email, 'mfa.recovery_code_used');
    expectActionable(used, 'mfa.recovery_code_used');
    expect(used.text).toMatch(/Recovery codes left: 9\./);

    // ★ actions need a fresh factor: a TOTP step not used yet.
    expect((await full.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) })).status).toBe(200);
    expect((await full.post('/api/mfa/recovery-codes')).status).toBe(200);
    expectActionable(await smtp.waitForEvent(email, 'mfa.recovery_codes_regenerated'), 'mfa.recovery_codes_regenerated');

    expect((await full.post('/api/tokens', { name: 'deploy', scopes: ['transactions:read'] })).status).toBe(201);
    const token = await smtp.waitForEvent(email, 'token.created');
    expectActionable(token, 'token.created');
    expect(token.text).toContain('transactions:read');

    expect((await full.delete(`/api/mfa/totp/${account.factorId}`)).status).toBe(204);
    expectActionable(await smtp.waitForEvent(email, 'mfa.factor_removed'), 'mfa.factor_removed');

    const changed = await full.post('/api/account/password', {
      currentPassword: account.password,
      newPassword: 'granite-orchard-44-violin',
    });
    expect(changed.status).toBe(200);
    expectActionable(await smtp.waitForEvent(email, 'account.password_changed'), 'account.password_changed');

    const types = (await full.get('/api/account/events')).body.events.map((e: { type: string }) => e.type);
    for (const t of [
      'mfa.factor_added',
      'mfa.failed',
      'mfa.recovery_code_used',
      'mfa.recovery_codes_regenerated',
      'token.created',
      'mfa.factor_removed',
      'account.password_changed',
    ]) {
      expect(types).toContain(t);
    }
    // Everything went to the account's own address, and nowhere else.
    expect(smtp.messages.filter((m) => m.to.includes(email)).every((m) => m.to.length === 1)).toBe(true);
  });

  it('mails account.locked once when a password lockout begins', async () => {
    const { email } = await signup(server.url);
    for (let i = 0; i < 12; i++) await new Client(server.url).post('/api/auth/login', { email, password: `wrong-password-${i}` });
    const locked = await smtp.waitForEvent(email, 'account.locked');
    expectActionable(locked, 'account.locked');
    await sleep(300);
    expect(smtp.to(email, 'account.locked')).toHaveLength(1);
  });

  it('sends password_reset.requested with the link, and the e-mail change notice to the old address', async () => {
    const { client, email } = await signup(server.url);
    await new Client(server.url).post('/api/auth/password/forgot', { email });
    const reset = await smtp.waitForEvent(email, 'password_reset.requested');
    expect(reset.text).toMatch(/token=[A-Za-z0-9_-]{43}/);
    const next = uniqueEmail('moved');
    await client.post('/api/account/email', { email: next });
    const confirm = await smtp.waitFor((m) => m.to.includes(next));
    const token = /token=([A-Za-z0-9_-]{43})/.exec(confirm.text)![1];
    expect((await new Client(server.url).post('/api/account/email/confirm', { token })).status).toBe(200);
    const notice = await smtp.waitForEvent(email, 'account.email_changed');
    expectActionable(notice, 'account.email_changed');
    expect(notice.text).toContain(next);
  });
});

describe('mail server outage', () => {
  it('loses no notification while the SMTP server is down, and never fails the request', async () => {
    const smtp = new MailSink();
    await smtp.start();
    const port = smtp.port;
    const server = await startFastServer({ GATEHOUSE_SMTP_URL: smtp.url });
    try {
      const { client, email } = await signup(server.url);
      await smtp.stop();

      // Notifications produced while the server is down: every request still answers at once.
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) expect((await client.post('/api/tokens', { name: `t${i}`, scopes: ['account:read'] })).status).toBe(201);
      expect((await new Client(server.url).post('/api/auth/password/forgot', { email })).status).toBe(202);
      const elapsed = performance.now() - t0;
      expect(elapsed).toBeLessThan(3_000);

      const { db } = server.server.gatehouse.database;
      await sleep(1_500);
      const waiting = await db.selectFrom('mail_outbox').selectAll().where('status', '=', 'pending').execute();
      expect(waiting.length).toBe(6);
      expect(waiting.some((r) => r.attempts > 0 && r.last_error)).toBe(true);
      expect(smtp.messages).toHaveLength(0);

      await smtp.start(port);
      await smtp.waitFor(
        () => smtp.to(email, 'token.created').length === 5 && smtp.to(email, 'password_reset.requested').length === 1,
        20_000,
      );
      await sleep(300);
      expect(smtp.to(email)).toHaveLength(6); // each exactly once
      const names = smtp
        .to(email, 'token.created')
        .map((m) => /named "(t\d)"/.exec(m.text)![1])
        .sort();
      expect(names).toEqual(['t0', 't1', 't2', 't3', 't4']);
      const left = await db.selectFrom('mail_outbox').select(['status', 'body_enc']).execute();
      expect(left.every((r) => r.status === 'sent' && r.body_enc === '')).toBe(true);
    } finally {
      await server.close();
      await smtp.stop();
    }
  });
});

describe('mail without SMTP', () => {
  it('writes each message as a file in <dataDir>/mail, link intact', async () => {
    const server = await startFastServer();
    try {
      const { email } = await signup(server.url);
      await new Client(server.url).post('/api/auth/password/forgot', { email });
      const dir = path.join(server.dataDir, 'mail');
      let files: string[] = [];
      for (let i = 0; i < 100 && files.length === 0; i++) {
        await sleep(50);
        files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
      }
      expect(files).toHaveLength(1);
      const raw = fs.readFileSync(path.join(dir, files[0]!), 'utf8');
      expect(raw).toMatch(/^X-Gatehouse-Event: password_reset\.requested$/m);
      expect(raw).toMatch(new RegExp(`^To: ${email.replace(/[.+]/g, '\\$&')}$`, 'm'));
      expect(raw).toMatch(/\/reset-password\?token=[A-Za-z0-9_-]{43}$/m);
      expect(fs.statSync(path.join(dir, files[0]!)).mode & 0o077).toBe(0);
    } finally {
      await server.close();
    }
  });
});
