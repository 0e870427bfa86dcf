/**
 * Issue 16 / contract v1.1: every hostile address in the table is refused with
 * `400 invalid_request` naming the field on every input path (API sign-up, login,
 * forgot-password, e-mail change; the pages for each), nothing is stored and no mail goes
 * out; and each accepted address is stored in its canonical form and gets its mail, over
 * a real SMTP server, at exactly that mailbox (RCPT TO and To:).
 */
import { describe, expect, it } from 'vitest';
import { NOTIFIED_EVENT_TYPES } from '../../src/mail/index.js';
import { bodyContext } from '../../src/mail/outbox.js';
import { login, loginFull, PASSWORD, signup, signupWithTotp } from '../helpers/accounts.js';
import { wrongTotpCodes } from '../helpers/totp.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import { linkToken, serverWithMailSink } from '../helpers/smtp.js';
import { ACCEPTED, HOSTILE, withTag } from '../fixtures/email-addresses.js';

const mailed = serverWithMailSink({ GATEHOUSE_ROLES: JSON.stringify({ staff: { mfa: 'required' } }) });
const { smtp } = mailed;

const db = () => mailed.server.server.gatehouse.database.db;
const userCount = async () =>
  (
    await db()
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
  ).n;

/** The mail of `event` whose RCPT TO, as sent, named `address`. */
const rcptFor = (address: string, event: string) => smtp.waitFor((m) => m.rcptRaw.includes(address) && m.event === event);

function expectFieldRefusal(res: { status: number; body: any; text: string }, label: string) {
  expect(res.status, `${label}: ${res.text}`).toBe(400);
  expect(res.body.error, label).toBe('invalid_request');
  expect(res.body.details?.[0]?.path, label).toBe('email');
}

describe('hostile addresses are refused on every input path', () => {
  it(`refuses all ${HOSTILE.length} of them by API and by page; stores nothing, mails nothing`, async () => {
    const owner = await signup(mailed.server.url, { transport: 'token' });
    const page = new FormBrowser(mailed.server.url);
    const pageOwner = `page-owner-${Date.now()}@example.test`;
    expect((await page.go('POST', '/sign-up', { email: pageOwner, password: PASSWORD })).location).toBe('/settings');
    const csrf = csrfIn((await page.go('GET', '/settings')).text);
    expect(csrf).not.toBe('');
    const before = await userCount();
    const mailsBefore = smtp.messages.length;

    for (const [name, email] of HOSTILE) {
      const label = `${name} ${JSON.stringify(email)}`;
      expectFieldRefusal(await new Client(mailed.server.url).post('/api/auth/signup', { email, password: PASSWORD }), `signup: ${label}`);
      expectFieldRefusal(await new Client(mailed.server.url).post('/api/auth/login', { email, password: PASSWORD }), `login: ${label}`);
      expectFieldRefusal(await new Client(mailed.server.url).post('/api/auth/password/forgot', { email }), `forgot: ${label}`);
      expectFieldRefusal(await owner.client.post('/api/account/email', { email }), `change: ${label}`);

      for (const path of ['/sign-up', '/sign-in', '/forgot-password']) {
        const res = await new FormBrowser(mailed.server.url).go('POST', path, { email, password: PASSWORD });
        expect(res.status, `page ${path}: ${label}`).toBe(400);
        expect(res.text, `page ${path}: ${label}`).toContain('role="alert"');
      }
      const change = await page.go('POST', '/settings/email', { _csrf: csrf, email });
      expect(change.status, `page /settings/email: ${label}`).toBe(400);
      expect(change.text).toContain('Enter a valid email address.');
    }

    expect(await userCount()).toBe(before);
    const pending = await db().selectFrom('email_changes').select('new_email').execute();
    expect(pending).toEqual([]);
    // The legitimate flows still work afterwards, on the same sessions.
    const next = `still-works-${Date.now()}@example.test`;
    expect((await owner.client.post('/api/account/email', { email: next })).status).toBe(202);
    await smtp.waitFor((m) => m.to.includes(next));
    const news = smtp.messages.slice(mailsBefore);
    // Only the legitimate change produced mail (confirmation to the new address, notice to the old).
    expect(news.map((m) => m.rcptRaw).sort()).toEqual([[next], [owner.email]].sort());
  });

  it('a refused address at login says nothing about accounts: the same answer for a stored look-alike', async () => {
    const { email } = await signup(mailed.server.url);
    const lookAlike = email.replace('@', '\u200B@');
    const unknown = `nobody-${Date.now()}\u200B@example.test`;
    const a = await new Client(mailed.server.url).post('/api/auth/login', { email: lookAlike, password: PASSWORD });
    const b = await new Client(mailed.server.url).post('/api/auth/login', { email: unknown, password: PASSWORD });
    expect([a.status, a.body.error]).toEqual([400, 'invalid_request']);
    expect(b.body).toEqual(a.body);
  });
});

describe('each accepted address gets its mail at exactly that mailbox', () => {
  it('signs up with the typed form, stores the canonical one, and mails only it (RCPT TO and To:)', async () => {
    for (const [i, template] of ACCEPTED.entries()) {
      const a = withTag(template, `s${i}`);
      const res = await new Client(mailed.server.url).post('/api/auth/signup', { email: a.typed, password: PASSWORD });
      expect(res.status, `${a.typed}: ${res.text}`).toBe(201);
      expect(res.body.user.email).toBe(a.stored);
      // Login and reset find it by its typed, stored and display forms alike.
      for (const form of new Set([a.typed, a.stored, a.display])) {
        expect((await new Client(mailed.server.url).post('/api/auth/login', { email: form, password: PASSWORD })).status, form).toBe(200);
      }
      expect((await new Client(mailed.server.url).post('/api/auth/password/forgot', { email: a.display })).status).toBe(202);
      const mail = await rcptFor(a.stored, 'password_reset.requested');
      expect(mail.rcptRaw).toEqual([a.stored]);
      expect(mail.to).toHaveLength(1);
      expect(mail.headers.to).toBe(a.stored);
    }
  });

  it('an e-mail change to each accepted address: the link goes to exactly the stored new mailbox, the notice to the old', async () => {
    for (const [i, template] of ACCEPTED.entries()) {
      const a = withTag(template, `c${i}`);
      const owner = await signup(mailed.server.url, { transport: 'token' });
      expect((await owner.client.post('/api/account/email', { email: a.typed })).status).toBe(202);
      const confirmation = await rcptFor(a.stored, 'account.email_change_confirmation');
      expect(confirmation.rcptRaw).toEqual([a.stored]);
      expect(confirmation.headers.to).toBe(a.stored);
      const notice = await rcptFor(owner.email, 'account.email_change_requested');
      expect(notice.rcptRaw).toEqual([owner.email]);
      expect((await new Client(mailed.server.url).post('/api/account/email/confirm', { token: linkToken(confirmation) })).body.email).toBe(
        a.stored,
      );
      expect((await owner.client.get('/api/account')).body.email).toBe(a.stored);
    }
  });
});

describe('every notification type goes to exactly the stored mailbox', () => {
  it('for an internationalised, mixed-case, plus-tagged address: RCPT TO and To: are the stored form, one recipient each', async () => {
    const typed = `Ada.L+${Date.now()}@B\u00FCcher.Example`;
    const account = await signupWithTotp(mailed.server.url, { email: typed });
    const stored = (await account.client.get('/api/account')).body.email as string;
    expect(stored).toBe(typed.replace('@B\u00FCcher.Example', '@xn--bcher-kva.example'));
    const acct = { ...account, email: stored };

    const pending = await login(mailed.server.url, acct);
    await pending.client.post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotpCodes(account.secret, 1)[0] });
    const full = await loginFull(mailed.server.url, acct);
    // A remember-me chain, rotated by a thief's restore, then its stale first token presented.
    const remembered = await login(mailed.server.url, acct, { remember: true });
    expect(
      (await remembered.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes.pop() })).status,
    ).toBe(200);
    const firstToken = remembered.client.cookies.get('gatehouse_remember')!;
    for (let i = 0; i < 2; i++) {
      const holder = new Client(mailed.server.url);
      holder.cookies.set('gatehouse_remember', firstToken);
      await holder.get('/api/session');
    }
    expect((await full.post('/api/auth/step-up', { method: 'totp', code: account.totp.next() })).status).toBe(200);
    expect((await full.post('/api/mfa/recovery-codes')).status).toBe(200);
    expect((await full.post('/api/tokens', { name: 'ci', scopes: ['account:read'] })).status).toBe(201);
    expect((await full.delete(`/api/mfa/totp/${account.factorId}`)).status).toBe(204);
    const newPassword = 'granite-orchard-44-violin';
    expect((await full.post('/api/account/password', { currentPassword: PASSWORD, newPassword })).status).toBe(200);
    expect((await new Client(mailed.server.url).post('/api/auth/password/forgot', { email: typed })).status).toBe(202);
    const next = `next-${Date.now()}@\u4F8B\u3048.\u30C6\u30B9\u30C8`;
    const nextStored = next.replace('@\u4F8B\u3048.\u30C6\u30B9\u30C8', '@xn--r8jz45g.xn--zckzah');
    expect((await full.post('/api/account/email', { email: next })).status).toBe(202);
    const confirmation = await rcptFor(nextStored, 'account.email_change_confirmation');
    expect((await new Client(mailed.server.url).post('/api/account/email/confirm', { token: linkToken(confirmation) })).status).toBe(200);
    for (let i = 0; i < 10; i++)
      await new Client(mailed.server.url).post('/api/auth/login', { email: next, password: `wrong-${i}-password` });
    // Policy (docs/policy.md): a role's enrolment reminder, an admin's sign-out and factor reset.
    await mailed.server.server.facade.admin.setRoles(account.userId, ['staff']);
    await mailed.server.server.facade.admin.revokeSessions(account.userId);
    const admin = await signupWithTotp(mailed.server.url);
    await mailed.server.server.facade.admin.setRoles(admin.userId, ['admin']);
    expect((await admin.client.post(`/api/admin/users/${account.userId}/factors/reset`, {})).status).toBe(200);

    const expected: Record<string, string> = {
      'mfa.factor_added': stored,
      'mfa.failed': stored,
      'mfa.recovery_code_used': stored,
      'mfa.recovery_codes_regenerated': stored,
      'token.created': stored,
      'mfa.factor_removed': stored,
      'account.password_changed': stored,
      'password_reset.requested': stored,
      'account.email_change_requested': stored,
      'account.email_change_confirmation': nextStored,
      'account.email_changed': stored,
      'account.locked': nextStored,
      'remember_me.replayed': stored,
      'account.enrolment_reminder': nextStored,
      'admin.sessions_revoked': nextStored,
      'admin.factors_reset': nextStored,
    };
    // Every contract notification type is in the list.
    for (const type of NOTIFIED_EVENT_TYPES) expect(Object.keys(expected)).toContain(type);
    for (const [event, to] of Object.entries(expected)) {
      const mail = await rcptFor(to, event);
      expect(mail.rcptRaw, event).toEqual([to]);
      expect(mail.to, event).toHaveLength(1);
      expect(mail.headers.to, event).toBe(to);
    }
    // Nothing of this account's went anywhere else.
    const mine = smtp.messages.filter((m) => m.raw.includes(stored.split('@')[0]!) || m.rcptRaw.includes(nextStored));
    for (const m of mine) expect([[stored], [nextStored]]).toContainEqual(m.rcptRaw);
  });
});

describe('an address stored before the grammar is never handed to the mail library', () => {
  it('a queued message to a list or a display-name address is given up at once, and nothing is sent', async () => {
    const gatehouse = mailed.server.server.gatehouse;
    const before = smtp.messages.length;
    const ids: string[] = [];
    for (const to of ['a,victim@example.test', 'x<other@evil.test>', 'victim@example.test\u200B', 'victim@B\u00FCcher.example']) {
      const id = `legacy-${ids.length}-${Date.now()}`;
      ids.push(id);
      await gatehouse.database.db
        .insertInto('mail_outbox')
        .values({
          id,
          user_id: null,
          event_type: 'password_reset.requested',
          to_address: to,
          subject: 'x',
          body_enc: gatehouse.keys.box.encrypt('hello', bodyContext(id)),
          status: 'pending',
          next_attempt_at: Date.now(),
          last_error: null,
          created_at: Date.now(),
          sent_at: null,
        })
        .execute();
    }
    // A legitimate message queued after them still goes out (the worker did not stall).
    const ok = await signup(mailed.server.url);
    await new Client(mailed.server.url).post('/api/auth/password/forgot', { email: ok.email });
    await rcptFor(ok.email, 'password_reset.requested');
    const rows = await gatehouse.database.db.selectFrom('mail_outbox').select(['status', 'last_error']).where('id', 'in', ids).execute();
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(rows.every((r) => /not a single mailbox/.test(r.last_error ?? ''))).toBe(true);
    expect(smtp.messages.slice(before).map((m) => m.rcptRaw)).toEqual([[ok.email]]);
  });
});
