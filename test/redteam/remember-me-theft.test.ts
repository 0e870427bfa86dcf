/**
 * Red team (issue 18): a stolen remember-me cookie must be caught however the owner's
 * browser next shows its stale copy, and a later login must not erase the evidence.
 *
 * The attack: the thief copies the owner's cookie (T1), restores a session with it (→ T2)
 * and again from a second client (→ T3). The owner's browser still holds T1. Whatever it
 * does next with T1 (password login with or without "remember me", logout, a page
 * sign-in), or whoever else presents an old token (a third client), every session of the
 * chain dies, the chain restores nothing more, `remember_me.replayed` is recorded and the
 * owner gets one mail. Tokens of another account are judged the same way: a stale one is
 * evidence against its chain, a live one is not. The legitimate single-browser flow
 * (restore, rotate, re-login, logout) never signs its owner out and never mails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import { mailOf, mailsOf } from '../helpers/mail-files.js';
import { startFastServer, type TestServer } from '../helpers/server.js';

const REMEMBER = 'gatehouse_remember';
const SESSION = 'gatehouse_session';
const REPLAYED = 'remember_me.replayed';

let server: TestServer;
beforeAll(async () => {
  server = await startFastServer();
});
afterAll(() => server?.close());

const db = () => server.server.gatehouse.database.db;

/** A client holding only this remember-me token. */
function holding(token: string, base = server.url): Client {
  const c = new Client(base);
  c.cookies.set(REMEMBER, token);
  return c;
}

/** An account without a second factor (a restored session is full) and its remembered browser. */
async function owner(label: string) {
  const account = await signup(server.url, { email: uniqueEmail(label) });
  const browser = new Client(server.url);
  expect((await browser.post('/api/auth/login', { email: account.email, password: PASSWORD, remember: true })).status).toBe(200);
  const userId = (await browser.get('/api/account')).body.id as string;
  return { email: account.email, userId, browser };
}

/** The thief copies T1 and restores twice, from two clients: two live sessions, T3 live. */
async function steal(t1: string) {
  const thief = holding(t1);
  expect((await thief.get('/api/account/events')).status).toBe(200);
  const t2 = thief.cookies.get(REMEMBER)!;
  const thief2 = thief.only(REMEMBER);
  expect((await thief2.get('/api/account/events')).status).toBe(200);
  const t3 = thief2.cookies.get(REMEMBER)!;
  expect(new Set([t1, t2, t3]).size).toBe(3);
  return { thieves: [thief, thief2], t2, t3 };
}

/** Replay notifications queued for the account (the outbox row is written with the event). */
async function replayMailsQueued(userId: string): Promise<number> {
  const rows = await db().selectFrom('mail_outbox').select('id').where('user_id', '=', userId).where('event_type', '=', REPLAYED).execute();
  return rows.length;
}

async function replayEvents(userId: string): Promise<number> {
  const rows = await db().selectFrom('events').select('id').where('user_id', '=', userId).where('type', '=', REPLAYED).execute();
  return rows.length;
}

/** The thief's sessions are dead, no token of the chain restores, the owner is told once. */
async function expectCaught(victim: { email: string; userId: string }, thieves: Client[], tokens: string[]) {
  for (const t of thieves) expect((await t.get('/api/account/events')).status).toBe(401);
  for (const token of tokens) {
    const r = await holding(token).get('/api/account/events');
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthenticated');
  }
  // The presentations just above are replays too: still one event and one mail.
  expect(await replayEvents(victim.userId)).toBe(1);
  expect(await replayMailsQueued(victim.userId)).toBe(1);
  const mail = await mailOf(server.dataDir, { to: victim.email, event: REPLAYED });
  expect(mail).toMatch(/Change your password/);
  expect(mail).toMatch(/check your sessions/);
  expect(mail).toMatch(/second factors/);
  expect(mail).toContain(`${server.url}/forgot-password`);
}

describe('red team: a stolen remember-me cookie is caught whatever the owner does next', () => {
  it('the issue: the owner logs in again with "remember me", presenting the stale T1', async () => {
    const victim = await owner('rm-theft-relogin');
    const t1 = victim.browser.cookies.get(REMEMBER)!;
    const { thieves, t2, t3 } = await steal(t1);

    const again = await victim.browser.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true });
    expect(again.status).toBe(200);
    const fresh = victim.browser.cookies.get(REMEMBER)!;
    expect([t1, t2, t3]).not.toContain(fresh);

    await expectCaught(victim, thieves, [t2, t3, t1]);
    // The owner's new login and new chain are untouched, and they see what happened.
    const events = await victim.browser.get('/api/account/events');
    expect(events.status).toBe(200);
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain(REPLAYED);
    const restored = await holding(fresh).get('/api/session');
    expect(restored.status).toBe(200);
    expect(restored.body.amr).toEqual(['remember_me']);
  });

  it('the owner logs in again without "remember me": the stale cookie is evidence and is cleared', async () => {
    const victim = await owner('rm-theft-plain');
    const t1 = victim.browser.cookies.get(REMEMBER)!;
    const { thieves, t2, t3 } = await steal(t1);

    const again = await victim.browser.post('/api/auth/login', { email: victim.email, password: PASSWORD });
    expect(again.status).toBe(200);
    expect(victim.browser.cookies.has(REMEMBER)).toBe(false);
    await expectCaught(victim, thieves, [t2, t3]);
    expect((await victim.browser.get('/api/account/events')).status).toBe(200);
  });

  it('even a failed login (wrong password) presenting the stale cookie raises the alarm', async () => {
    const victim = await owner('rm-theft-wrongpw');
    const { thieves, t2, t3 } = await steal(victim.browser.cookies.get(REMEMBER)!);
    const wrong = await victim.browser.post('/api/auth/login', { email: victim.email, password: 'not the password at all 1' });
    expect(wrong.status).toBe(401);
    await expectCaught(victim, thieves, [t2, t3]);
  });

  it('the owner logs out first: logout with the stale cookie is evidence too', async () => {
    const victim = await owner('rm-theft-logout');
    const { thieves, t2, t3 } = await steal(victim.browser.cookies.get(REMEMBER)!);
    expect((await victim.browser.post('/api/auth/logout')).status).toBe(204);
    expect(victim.browser.cookies.has(REMEMBER)).toBe(false);
    await expectCaught(victim, thieves, [t2, t3]);
    // And the owner can sign in (and be remembered) again.
    const back = await victim.browser.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true });
    expect(back.status).toBe(200);
    expect((await victim.browser.only(REMEMBER).get('/api/session')).status).toBe(200);
  });

  it('a thief who logs out does not erase the evidence: the owner’s stale T1 still trips it later', async () => {
    const victim = await owner('rm-theft-thief-out');
    const t1 = victim.browser.cookies.get(REMEMBER)!;
    const { thieves, t2, t3 } = await steal(t1);
    // The second thief signs out (its chain is ended with a tombstone); the first keeps its session.
    expect((await thieves[1]!.post('/api/auth/logout')).status).toBe(204);
    expect((await thieves[0]!.get('/api/account/events')).status).toBe(200);
    expect(await replayEvents(victim.userId)).toBe(0);
    // The owner's browser idles out and shows T1 to restore: caught.
    const idle = victim.browser.only(REMEMBER);
    expect((await idle.get('/api/session')).status).toBe(401);
    await expectCaught(victim, [thieves[0]!], [t2, t3]);
  });

  it('a replay from a third client kills every session of the chain (the owner’s too) and the owner can sign in again', async () => {
    const victim = await owner('rm-theft-third');
    const { thieves, t2, t3 } = await steal(victim.browser.cookies.get(REMEMBER)!);
    const third = holding(t2);
    expect((await third.get('/api/account/events')).status).toBe(401);
    expect(third.cookies.has(REMEMBER)).toBe(false);
    await expectCaught(victim, thieves, [t3]);
    // Fail closed: the owner's session is one the chain was issued to; it ends too.
    expect((await victim.browser.get('/api/account/events')).status).toBe(401);
    expect((await victim.browser.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true })).status).toBe(200);
    expect((await victim.browser.get('/api/account/events')).status).toBe(200);
  });

  it('parallel replays of stale tokens on every route mail the owner once', async () => {
    const victim = await owner('rm-theft-burst');
    const t1 = victim.browser.cookies.get(REMEMBER)!;
    const { thieves, t2, t3 } = await steal(t1);
    const replies = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => holding(i % 2 ? t1 : t2).get('/api/session')),
      holding(t1).post('/api/auth/logout'),
      holding(t2).post('/api/auth/login', { email: victim.email, password: 'wrong password, not this 2' }),
    ]);
    expect(replies.slice(0, 6).every((r) => r.status === 401)).toBe(true);
    await expectCaught(victim, thieves, [t3]);
  });

  it('the page sign-in (and sign-out) with a stale cookie raises the alarm', async () => {
    const victim = await owner('rm-theft-pages');
    const t1 = victim.browser.cookies.get(REMEMBER)!;
    const { thieves, t2, t3 } = await steal(t1);
    const page = new FormBrowser(server.url);
    page.cookies.set(REMEMBER, t1);
    const signIn = await page.go('POST', '/sign-in', { email: victim.email, password: PASSWORD });
    expect(signIn.location).toBe('/settings');
    expect(page.cookies.has(REMEMBER)).toBe(false);
    await expectCaught(victim, thieves, [t2, t3]);
    expect((await page.go('GET', '/settings')).status).toBe(200);

    // Sign-out on a page, from a browser whose session idled out, holding a stale token.
    const other = await owner('rm-theft-signout');
    const stolen = await steal(other.browser.cookies.get(REMEMBER)!);
    const b = new FormBrowser(server.url);
    const form = await b.go('POST', '/sign-in', { email: other.email, password: PASSWORD });
    expect(form.location).toBe('/settings');
    const csrf = csrfIn((await b.go('GET', '/settings')).text);
    b.cookies.delete(SESSION);
    b.cookies.set(REMEMBER, other.browser.cookies.get(REMEMBER)!);
    expect((await b.go('POST', '/sign-out', { _csrf: csrf })).location).toBe('/sign-in?notice=signed_out');
    await expectCaught(other, stolen.thieves, [stolen.t2, stolen.t3]);
  });
});

/** What a minute without requests does: the sessions are due for their next touch (and screen). */
async function idleAMinute(userId: string) {
  await db()
    .updateTable('sessions')
    .set({ last_seen_at: Date.now() - 61_000 })
    .where('user_id', '=', userId)
    .execute();
}

describe('red team: caught while the owner keeps using a live session', () => {
  it('the owner’s browser keeps its session and shows the stale T1 with every request: caught at the next touch', async () => {
    const victim = await owner('rm-theft-inuse');
    const { thieves, t2, t3 } = await steal(victim.browser.cookies.get(REMEMBER)!);
    // Within the touch interval the request is served from the session alone (no extra read).
    expect((await victim.browser.get('/api/account/events')).status).toBe(200);
    await idleAMinute(victim.userId);
    // The owner's session was issued the stolen chain's first token: it ends with the chain.
    const r = await victim.browser.get('/api/account/events');
    expect(r.status).toBe(401);
    expect(victim.browser.cookies.has(REMEMBER)).toBe(false);
    await expectCaught(victim, thieves, [t2, t3]);
    expect((await victim.browser.post('/api/auth/login', { email: victim.email, password: PASSWORD })).status).toBe(200);
    expect((await victim.browser.get('/api/account/events')).status).toBe(200);
  });

  it('legitimate: a live cookie next to a live session, and a cookie ended by this browser’s own password change, raise nothing', async () => {
    const me = await owner('rm-inuse-legit');
    await idleAMinute(me.userId);
    expect((await me.browser.get('/api/account/events')).status).toBe(200);
    expect(me.browser.cookies.has(REMEMBER)).toBe(true);

    // A session restored from the chain changes the password (after reauth): the chain is
    // revoked ('account'), the session stays, the browser still carries the old cookie.
    const restored = me.browser.only(REMEMBER);
    expect((await restored.get('/api/session')).status).toBe(200);
    expect((await restored.post('/api/auth/reauth', { password: PASSWORD })).status).toBe(200);
    const change = await restored.post('/api/account/password', { currentPassword: PASSWORD, newPassword: 'yet another passphrase 77' });
    expect(change.status).toBe(200);
    await idleAMinute(me.userId);
    expect((await restored.get('/api/account/events')).status).toBe(200);
    expect(await replayEvents(me.userId)).toBe(0);
    expect(await replayMailsQueued(me.userId)).toBe(0);
  });
});

describe('red team: remember-me tokens of another account presented at login', () => {
  it('a stale token of account B at A’s login is evidence against B’s chain: B’s thief is out, B is mailed, A is unaffected', async () => {
    const b = await owner('rm-other-stale-b');
    const { thieves, t2, t3 } = await steal(b.browser.cookies.get(REMEMBER)!);
    const a = await signup(server.url, { email: uniqueEmail('rm-other-stale-a') });
    const shared = b.browser.only(REMEMBER); // B's stale T1 in a browser A now signs into
    const login = await shared.post('/api/auth/login', { email: a.email, password: PASSWORD, remember: true });
    expect(login.status).toBe(200);
    expect((await shared.get('/api/session')).body.user.email).toBe(a.email);
    await expectCaught(b, thieves, [t2, t3]);
    expect(mailsOf(server.dataDir, { to: a.email, event: REPLAYED })).toHaveLength(0);
    expect((await holding(shared.cookies.get(REMEMBER)!).get('/api/session')).body.user.email).toBe(a.email);
  });

  it('a live token of account B at A’s login is no evidence: B keeps its sessions, nobody is mailed; a copy shown later is caught', async () => {
    const b = await owner('rm-other-live-b');
    const live = b.browser.cookies.get(REMEMBER)!;
    const copy = live; // what a thief may have copied before
    const a = await signup(server.url, { email: uniqueEmail('rm-other-live-a') });

    // Without "remember me", B's cookie stays in the browser and B's chain stays live.
    const shared = b.browser.only(REMEMBER);
    expect((await shared.post('/api/auth/login', { email: a.email, password: PASSWORD })).status).toBe(200);
    expect(shared.cookies.get(REMEMBER)).toBe(live);

    // With "remember me", A's cookie replaces B's: B's chain ends explicitly, nothing else.
    expect((await shared.post('/api/auth/login', { email: a.email, password: PASSWORD, remember: true })).status).toBe(200);
    expect(shared.cookies.get(REMEMBER)).not.toBe(live);
    expect((await b.browser.get('/api/account/events')).status).toBe(200);
    expect(await replayEvents(b.userId)).toBe(0);
    expect(await replayMailsQueued(b.userId)).toBe(0);
    const row = await db()
      .selectFrom('remember_tokens')
      .select(['revoked_at', 'revoked_reason'])
      .where('user_id', '=', b.userId)
      .executeTakeFirstOrThrow();
    expect(row.revoked_reason).toBe('superseded');

    // Nobody legitimate holds B's old token any more: a copy presented later is caught.
    const thief = holding(copy);
    expect((await thief.get('/api/account/events')).status).toBe(401);
    expect((await b.browser.get('/api/account/events')).status).toBe(401); // the chain's own session goes
    expect(await replayEvents(b.userId)).toBe(1);
    await mailOf(server.dataDir, { to: b.email, event: REPLAYED });
  });
});

describe('legitimate: one browser never signs its owner out by surprise', () => {
  it('restore, rotate, re-login with and without "remember me", restore again, logout: no alarm, no mail', async () => {
    const me = await owner('rm-legit');
    const t1 = me.browser.cookies.get(REMEMBER)!;
    // The session idles out; the cookie restores (T1 → T2), several requests follow.
    me.browser.cookies.delete(SESSION);
    expect((await me.browser.get('/api/session')).status).toBe(200);
    const t2 = me.browser.cookies.get(REMEMBER)!;
    expect(t2).not.toBe(t1);
    for (let i = 0; i < 3; i++) expect((await me.browser.get('/api/account/events')).status).toBe(200);
    // Re-login without "remember me": the live cookie stays and still restores later.
    expect((await me.browser.post('/api/auth/login', { email: me.email, password: PASSWORD })).status).toBe(200);
    expect(me.browser.cookies.get(REMEMBER)).toBe(t2);
    // Re-login with "remember me": the old chain ends explicitly, a new one starts.
    expect((await me.browser.post('/api/auth/login', { email: me.email, password: PASSWORD, remember: true })).status).toBe(200);
    const t3 = me.browser.cookies.get(REMEMBER)!;
    expect(t3).not.toBe(t2);
    me.browser.cookies.delete(SESSION);
    expect((await me.browser.get('/api/session')).status).toBe(200);
    expect((await me.browser.get('/api/account/events')).status).toBe(200);
    expect((await me.browser.post('/api/auth/logout')).status).toBe(204);
    expect(me.browser.cookies.has(REMEMBER)).toBe(false);
    expect(await replayEvents(me.userId)).toBe(0);
    expect(await replayMailsQueued(me.userId)).toBe(0);
    // The tombstones are kept, with why each chain ended.
    const reasons = await db().selectFrom('remember_tokens').select('revoked_reason').where('user_id', '=', me.userId).execute();
    expect(new Set(reasons.map((r) => r.revoked_reason))).toEqual(new Set(['superseded', 'logout']));
  });

  it('a chain ended from elsewhere (password change, sessions list) is no evidence: its browser is signed out quietly', async () => {
    const me = await owner('rm-legit-remote');
    const phone = new Client(server.url);
    expect((await phone.post('/api/auth/login', { email: me.email, password: PASSWORD, remember: true })).status).toBe(200);
    // The owner changes the password on the first browser: the phone's chain is revoked.
    const change = await me.browser.post('/api/account/password', { currentPassword: PASSWORD, newPassword: 'a brand new passphrase 42' });
    expect(change.status).toBe(200);
    // The phone comes back with its (revoked, never rotated) token: 401, cookie cleared, no alarm.
    const back = phone.only(REMEMBER);
    const r = await back.get('/api/session');
    expect(r.status).toBe(401);
    expect(back.cookies.has(REMEMBER)).toBe(false);
    expect((await me.browser.get('/api/account/events')).status).toBe(200);
    expect(await replayEvents(me.userId)).toBe(0);
    expect(await replayMailsQueued(me.userId)).toBe(0);
    expect((await phone.post('/api/auth/login', { email: me.email, password: 'a brand new passphrase 42', remember: true })).status).toBe(
      200,
    );
  });
});
