/**
 * The cancel link of an e-mail change (issue 16, contract v1.1): requesting a change tells
 * the old address at once, with a link that cancels that change without a session and
 * signs out the session that asked. Attack tests: the link is single use (also in
 * parallel), bound to its change (it cannot void another change, of this account or
 * another), cannot be guessed or swapped with the confirmation token, and grants no
 * session; the legitimate flows keep working around it.
 */
import { describe, expect, it } from 'vitest';
import { hashToken } from '../../src/services/keys.js';
import { login, PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client, FormBrowser } from '../helpers/http-client.js';
import { linkToken, type ReceivedMail, serverWithMailSink } from '../helpers/smtp.js';

const mailed = serverWithMailSink();
const { smtp } = mailed;

const cancel = (token: unknown, client = new Client(mailed.server.url)) => client.post('/api/account/email/cancel', { token });
const confirm = (token: string) => new Client(mailed.server.url).post('/api/account/email/confirm', { token });
const alive = async (client: Client) => (await client.get('/api/session')).status === 200;
const emailOf = async (client: Client) => (await client.get('/api/account')).body.email as string;

/** The victim's account (its own session) and a second session that asks for the change (an attacker with the password). */
async function victimAndAttacker(extra: Record<string, unknown> = {}) {
  const victim = await signup(mailed.server.url);
  const { client: attacker, res } = await login(mailed.server.url, victim, extra);
  expect(res.status).toBe(200);
  return { victim, attacker };
}

/** Asks for a change from `client`; the notice to the old address and the confirmation to the new one. */
async function requestChange(client: Client, oldEmail: string, next = uniqueEmail('new')) {
  const seen = new Set(smtp.messages);
  expect((await client.post('/api/account/email', { email: next })).status).toBe(202);
  const notice = await smtp.waitFor((m) => !seen.has(m) && m.rcptRaw.includes(oldEmail) && m.event === 'account.email_change_requested');
  const confirmation = await smtp.waitFor(
    (m) => !seen.has(m) && m.rcptRaw.includes(next) && m.event === 'account.email_change_confirmation',
  );
  return { next, notice, cancelToken: cancelTokenOf(notice), confirmToken: linkToken(confirmation) };
}

function cancelTokenOf(mail: ReceivedMail): string {
  const m = /\/cancel-email-change\?token=([A-Za-z0-9_-]{43})$/m.exec(mail.text);
  if (!m) throw new Error(`no cancel link in:\n${mail.text}`);
  return m[1]!;
}

describe('the old address is told when a change is requested', () => {
  it('with what was asked, the cancel link, and the advice to check the factors; the event is in the activity list', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const { next, notice } = await requestChange(attacker, victim.email);
    expect(notice.rcptRaw).toEqual([victim.email]);
    expect(notice.headers.subject).toBe('Gatehouse: someone asked to change your e-mail address');
    expect(notice.text).toContain(next);
    expect(notice.text).toMatch(/does not sign you in/);
    expect(notice.text).toMatch(/second factors/);
    // Nothing changed yet, and the session that asked is still signed in until the link is used.
    expect(await emailOf(victim.client)).toBe(victim.email);
    expect(await alive(attacker)).toBe(true);
    const events = (await victim.client.get('/api/account/events')).body.events.map((e: { type: string }) => e.type);
    expect(events).toContain('account.email_change_requested');
    // The stored event never holds the link's token.
    const rows = await mailed.server.server.gatehouse.database.db
      .selectFrom('events')
      .select('details')
      .where('type', '=', 'account.email_change_requested')
      .execute();
    for (const r of rows) expect(r.details).not.toMatch(/token|cancel-email-change/);
  });
});

describe('the cancel link', () => {
  it('voids the change and signs out the session that asked (and its remember-me), granting no session; the owner keeps theirs', async () => {
    const { victim, attacker } = await victimAndAttacker({ remember: true });
    expect(attacker.cookies.has('gatehouse_remember')).toBe(true);
    const { cancelToken, confirmToken } = await requestChange(attacker, victim.email);

    const reader = new Client(mailed.server.url);
    const res = await cancel(cancelToken, reader);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ status: 'email_change_cancelled', sessionRevoked: true });
    expect(res.setCookies).toEqual([]);
    expect(await alive(reader)).toBe(false);

    expect(await alive(attacker)).toBe(false);
    // The remember-me cookie of the revoked session does not bring it back.
    const rememberOnly = attacker.only('gatehouse_remember');
    expect((await rememberOnly.get('/api/session')).status).toBe(401);
    expect(await alive(rememberOnly)).toBe(false);

    expect((await confirm(confirmToken)).body.error).toBe('invalid_token');
    expect(await emailOf(victim.client)).toBe(victim.email);
    expect(await alive(victim.client)).toBe(true);
    const events = (await victim.client.get('/api/account/events')).body.events.map((e: { type: string }) => e.type);
    expect(events).toContain('account.email_change_cancelled');
    // The legitimate owner can still change the address afterwards.
    const again = await requestChange(victim.client, victim.email);
    expect((await confirm(again.confirmToken)).status).toBe(200);
    expect(await emailOf(victim.client)).toBe(again.next);
  });

  it('is single use, also under 20 parallel uses', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const { cancelToken } = await requestChange(attacker, victim.email);
    const replies = await Promise.all(Array.from({ length: 20 }, () => cancel(cancelToken)));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of replies.filter((x) => x.status !== 200)) expect([r.status, r.body.error]).toEqual([400, 'invalid_token']);
    expect((await cancel(cancelToken)).body.error).toBe('invalid_token');
  });

  it('is bound to its change: an older link cannot void a newer change, nor one of another account', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const first = await requestChange(attacker, victim.email);
    const { client: second } = await login(mailed.server.url, victim);
    const newer = await requestChange(second, victim.email);
    // Another account's pending change.
    const other = await signup(mailed.server.url);
    const othersChange = await requestChange(other.client, other.email);

    const res = await cancel(first.cancelToken);
    expect(res.body).toEqual({ status: 'change_not_pending', sessionRevoked: true });
    expect(await alive(attacker)).toBe(false);
    // The newer change, its session, and the other account are untouched.
    expect(await alive(second)).toBe(true);
    expect(await alive(other.client)).toBe(true);
    expect((await confirm(newer.confirmToken)).status).toBe(200);
    expect((await confirm(othersChange.confirmToken)).status).toBe(200);
    expect(await emailOf(victim.client)).toBe(newer.next);
    expect(await emailOf(other.client)).toBe(othersChange.next);
  });

  it('after the change was confirmed, still signs out the session that asked but changes no address', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const { cancelToken, confirmToken, next } = await requestChange(attacker, victim.email);
    expect((await confirm(confirmToken)).status).toBe(200);
    expect((await cancel(cancelToken)).body).toEqual({ status: 'change_not_pending', sessionRevoked: true });
    expect(await alive(attacker)).toBe(false);
    expect(await emailOf(victim.client)).toBe(next);
  });

  it('cannot be swapped with the confirmation token, guessed, or malformed into a 5xx; it is stored only as a hash', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const { cancelToken, confirmToken } = await requestChange(attacker, victim.email);
    expect((await cancel(confirmToken)).body.error).toBe('invalid_token');
    expect((await confirm(cancelToken)).body.error).toBe('invalid_token');
    for (const guess of [
      'A'.repeat(43),
      cancelToken.slice(0, 42) + (cancelToken.endsWith('A') ? 'B' : 'A'),
      cancelToken.toUpperCase() === cancelToken ? 'x' : cancelToken.toUpperCase(),
    ]) {
      expect((await cancel(guess)).body.error).toBe('invalid_token');
    }
    for (const bad of ['', 'x'.repeat(500), 42, null, ['a'], { $ne: null }, '\u0000', `${cancelToken}\u200B`]) {
      const r = await cancel(bad);
      expect(r.status, JSON.stringify(bad)).toBeGreaterThanOrEqual(400);
      expect(r.status, JSON.stringify(bad)).toBeLessThan(500);
    }
    // Nothing above spent or weakened it: the session is alive and the change pending.
    expect(await alive(attacker)).toBe(true);
    const rows = await mailed.server.server.gatehouse.database.db.selectFrom('email_change_cancels').select('token_hash').execute();
    expect(rows.map((r) => r.token_hash)).toContain(hashToken(cancelToken));
    expect(JSON.stringify(rows)).not.toContain(cancelToken);
    expect((await cancel(cancelToken)).status).toBe(200);
  });
});

describe('/cancel-email-change', () => {
  const page = (...args: Parameters<FormBrowser['go']>) => new FormBrowser(mailed.server.url).go(...args);

  it('GET shows a button and changes nothing; a cross-site POST is refused; the POST cancels and says to check the factors', async () => {
    const { victim, attacker } = await victimAndAttacker();
    const { cancelToken, confirmToken } = await requestChange(attacker, victim.email);
    for (let i = 0; i < 2; i++) {
      const shown = await page('GET', `/cancel-email-change?token=${cancelToken}`);
      expect(shown.status).toBe(200);
      expect(shown.text).toContain('<form class="card" method="post" action="/cancel-email-change">');
      expect(shown.text).toContain(`<input type="hidden" name="token" value="${cancelToken}" />`);
    }
    expect(await alive(attacker)).toBe(true);
    expect((await page('POST', '/cancel-email-change', { token: cancelToken }, { origin: 'https://evil.example' })).status).toBe(403);
    expect(
      (await page('POST', '/cancel-email-change', { token: cancelToken }, { origin: null, 'sec-fetch-site': 'cross-site' })).status,
    ).toBe(403);
    expect(await alive(attacker)).toBe(true);

    const done = await page('POST', '/cancel-email-change', { token: cancelToken });
    expect(done.status).toBe(200);
    expect(done.text).toContain('The e-mail address change was cancelled');
    expect(done.text).toContain('second factors');
    expect(done.headers['set-cookie']).toBeUndefined();
    expect(await alive(attacker)).toBe(false);
    expect((await confirm(confirmToken)).body.error).toBe('invalid_token');
    const again = await page('POST', '/cancel-email-change', { token: cancelToken });
    expect(again.status).toBe(400);
    expect(again.text).toContain('unknown, already used or expired');
    expect((await page('GET', '/cancel-email-change')).status).toBe(400);
    expect(victim.password).toBe(PASSWORD);
  });
});
