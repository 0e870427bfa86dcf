/**
 * E-mail change: ★ to ask, a single-use link to the new address, the token alone to
 * confirm, a notice to the old address, 409 when the address got taken meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { linkToken, serverWithMailSink } from '../helpers/smtp.js';
import { Client } from '../helpers/http-client.js';
import { signup, sleep, uniqueEmail } from '../helpers/accounts.js';

const mailed = serverWithMailSink({ GATEHOUSE_STEP_UP_MAX_AGE: '2', GATEHOUSE_PUBLIC_URL: 'http://127.0.0.1:1/' });
const { smtp } = mailed;

describe('e-mail change', () => {
  it('mails a link to the new address; the token alone confirms it; the old address is told', async () => {
    const { client, email, password } = await signup(mailed.server.url);
    const next = uniqueEmail('new');
    const res = await client.post('/api/account/email', { email: next });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: 'confirmation_sent' });

    const mail = await smtp.waitFor((m) => m.to.includes(next));
    expect(mail.text).toContain('http://127.0.0.1:1/confirm-email?token=');
    const token = linkToken(mail);
    // Not changed until confirmed.
    expect((await client.get('/api/account')).body.email).toBe(email);

    const confirm = await new Client(mailed.server.url).post('/api/account/email/confirm', { token });
    expect(confirm.status).toBe(200);
    expect((await client.get('/api/account')).body.email).toBe(next);

    const notice = await smtp.waitForEvent(email, 'account.email_changed');
    expect(notice.text).toContain(next);
    expect(notice.text).toMatch(/If this was not you/);
    expect(smtp.to(next, 'account.email_changed')).toHaveLength(0);

    // Single use.
    const again = await new Client(mailed.server.url).post('/api/account/email/confirm', { token });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_token');

    // The new address logs in; the old one no longer does.
    expect((await new Client(mailed.server.url).post('/api/auth/login', { email: next.toUpperCase(), password })).status).toBe(200);
    expect((await new Client(mailed.server.url).post('/api/auth/login', { email, password })).status).toBe(401);
    const events = (await client.get('/api/account/events')).body.events.map((e: { type: string }) => e.type);
    expect(events).toContain('account.email_changed');
  });

  it('needs a fresh check: a stale session gets step_up_required', async () => {
    const { client, password } = await signup(mailed.server.url);
    await sleep(2_100);
    const res = await client.post('/api/account/email', { email: uniqueEmail('late') });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('step_up_required');
    await client.post('/api/auth/reauth', { password });
    expect((await client.post('/api/account/email', { email: uniqueEmail('late') })).status).toBe(202);
  });

  it('answers 409 email_taken when the address was taken after the link was sent', async () => {
    const { client } = await signup(mailed.server.url);
    const wanted = uniqueEmail('wanted');
    expect((await client.post('/api/account/email', { email: wanted })).status).toBe(202);
    const token = linkToken(await smtp.waitFor((m) => m.to.includes(wanted)));
    // Someone signs up with it meanwhile, in another letter case.
    await signup(mailed.server.url, { email: wanted.toUpperCase() });
    const res = await new Client(mailed.server.url).post('/api/account/email/confirm', { token });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('email_taken');
  });

  it('refuses taken, unchanged and malformed addresses, and unknown tokens', async () => {
    const other = await signup(mailed.server.url);
    const { client, email } = await signup(mailed.server.url);
    expect((await client.post('/api/account/email', { email: `  ${other.email.toUpperCase()} ` })).body.error).toBe('email_taken');
    expect((await client.post('/api/account/email', { email: email.toUpperCase() })).status).toBe(400);
    expect((await client.post('/api/account/email', { email: 'not-an-address' })).body.error).toBe('invalid_request');
    expect((await client.post('/api/account/email', { email: 'a@b.c', extra: true })).body.error).toBe('invalid_request');
    for (const token of ['x', 'A'.repeat(43), '../../etc']) {
      const res = await new Client(mailed.server.url).post('/api/account/email/confirm', { token });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_token');
    }
    expect((await new Client(mailed.server.url).post('/api/account/email/confirm', {})).body.error).toBe('invalid_request');
  });

  it('only the newest link works', async () => {
    const { client } = await signup(mailed.server.url);
    const first = uniqueEmail('first');
    const second = uniqueEmail('second');
    await client.post('/api/account/email', { email: first });
    await client.post('/api/account/email', { email: second });
    const t1 = linkToken(await smtp.waitFor((m) => m.to.includes(first)));
    const t2 = linkToken(await smtp.waitFor((m) => m.to.includes(second)));
    expect((await new Client(mailed.server.url).post('/api/account/email/confirm', { token: t1 })).body.error).toBe('invalid_token');
    expect((await new Client(mailed.server.url).post('/api/account/email/confirm', { token: t2 })).status).toBe(200);
    expect((await client.get('/api/account')).body.email).toBe(second);
  });

  it('never stores the token in clear', async () => {
    const { client } = await signup(mailed.server.url);
    const to = uniqueEmail('hash');
    await client.post('/api/account/email', { email: to });
    const token = linkToken(await smtp.waitFor((m) => m.to.includes(to)));
    const { db } = mailed.server.server.gatehouse.database;
    const dump = JSON.stringify([
      await db.selectFrom('email_changes').selectAll().execute(),
      await db.selectFrom('events').selectAll().execute(),
      await db.selectFrom('mail_outbox').selectAll().execute(),
    ]);
    expect(dump).not.toContain(token);
  });
});
