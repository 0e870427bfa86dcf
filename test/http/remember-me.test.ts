/**
 * Remember-me over real HTTP and SQLite: issuance when the session becomes full, restore
 * through the state machine (pending with a second factor, aal 1 otherwise, never
 * fresh), rotation, chain replay, single use under 20 parallel requests, logout.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client, cookieNamed } from '../helpers/http-client.js';

const REMEMBER = 'gatehouse_remember';
const SESSION = 'gatehouse_session';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ...FAST_ENV, GATEHOUSE_REMEMBER_DAYS: '7' });
});
afterAll(async () => server?.close());

const db = () => server.server.gatehouse.database.db;

async function rememberedLogin(address: string): Promise<Client> {
  const b = new Client(server.url);
  const r = await b.post('/api/auth/login', { email: address, password: PASSWORD, remember: true });
  expect(r.status).toBe(200);
  expect(b.cookies.get(REMEMBER)).toBeTruthy();
  return b;
}

describe('remember-me', () => {
  it('is issued at login for an account without a factor: own cookie, hashed at rest, Lax/HttpOnly/Path=/', async () => {
    const { email } = await signup(server.url, { email: uniqueEmail('rm-issue') });
    const b = new Client(server.url);
    const r = await b.post('/api/auth/login', { email, password: PASSWORD, remember: true });
    expect(r.status).toBe(200);
    const cookie = cookieNamed(r.setCookies, REMEMBER)!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/Max-Age=604800/); // GATEHOUSE_REMEMBER_DAYS=7
    const token = b.cookies.get(REMEMBER)!;
    const rows = await db().selectFrom('remember_tokens').select(['token_hash']).execute();
    const hash = crypto.createHash('sha256').update(token).digest('base64url');
    expect(rows.some((row) => row.token_hash === hash)).toBe(true);
    expect(rows.some((row) => row.token_hash === token)).toBe(false);

    // Without remember:true, or over token transport, there is no remember-me cookie.
    const plain = await new Client(server.url).post('/api/auth/login', { email, password: PASSWORD });
    expect(cookieNamed(plain.setCookies, REMEMBER)).toBeUndefined();
    const native = await new Client(server.url).post('/api/auth/login', { email, password: PASSWORD, remember: true, transport: 'token' });
    expect(native.status).toBe(200);
    expect(cookieNamed(native.setCookies, REMEMBER)).toBeUndefined();
  });

  it('alone restores a full aal-1 session for an account without a factor, rotated, never fresh', async () => {
    const { email } = await signup(server.url, { email: uniqueEmail('rm-nofactor') });
    const b = await rememberedLogin(email);
    const t1 = b.cookies.get(REMEMBER)!;
    const later = b.only(REMEMBER);
    const s = await later.get('/api/session');
    expect(s.status).toBe(200);
    expect(s.body.aal).toBe(1);
    expect(s.body.amr).toEqual(['remember_me']);
    expect(s.body.mfaAt).toBeNull();
    expect(later.cookies.get(SESSION)).toBeTruthy();
    const t2 = later.cookies.get(REMEMBER)!;
    expect(t2).toBeTruthy();
    expect(t2).not.toBe(t1);
    // The restored session works on its own cookie, without touching the chain again.
    expect((await later.get('/api/account')).status).toBe(200);
    expect(later.cookies.get(REMEMBER)).toBe(t2);
    // Never fresh: a ★ action asks for the password.
    const star = await later.post('/api/account/password', { currentPassword: PASSWORD, newPassword: 'another long passphrase 7' });
    expect(star.status).toBe(403);
    expect(star.body.error).toBe('step_up_required');
    expect(star.body.methods).toEqual(['password']);
  });

  it('restores only a pending session for an account with a second factor; the request answers 401 mfa_required', async () => {
    const account = await signupWithTotp(server.url, { email: uniqueEmail('rm-mfa') });
    const b = new Client(server.url);
    const login = await b.post('/api/auth/login', { email: account.email, password: PASSWORD, remember: true });
    expect(login.status).toBe(202);
    // Not full yet: no remember-me cookie.
    expect(cookieNamed(login.setCookies, REMEMBER)).toBeUndefined();
    const verify = await b.post('/api/auth/mfa/verify', { method: 'totp', code: account.totp.next() });
    expect(verify.status).toBe(200);
    expect(b.cookies.get(REMEMBER)).toBeTruthy();

    const later = b.only(REMEMBER);
    const r = await later.get('/api/session');
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('mfa_required');
    expect(later.cookies.get(SESSION)).toBeTruthy();
    // Every session-requiring endpoint says the same; nothing of the account leaks.
    for (const path of ['/api/account', '/api/account/transactions', '/api/devices']) {
      const denied = await later.get(path);
      expect(denied.status).toBe(401);
      expect(denied.body.error).toBe('mfa_required');
    }
    // The second factor completes it.
    const done = await later.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0] });
    expect(done.status).toBe(200);
    expect(done.body.aal).toBe(2);
    const full = await later.get('/api/session');
    expect(full.status).toBe(200);
    expect(full.body.amr).toEqual(expect.arrayContaining(['remember_me', 'otp', 'mfa']));
  });

  it('a replayed old token revokes the whole chain and its sessions and records remember_me.replayed', async () => {
    const { email, client: owner } = await signup(server.url, { email: uniqueEmail('rm-replay') });
    const b = await rememberedLogin(email);
    const stolen = b.only(REMEMBER); // a copy of T1
    const victim = b.only(REMEMBER);
    expect((await victim.get('/api/session')).status).toBe(200); // T1 → T2, session S2
    const t2 = victim.cookies.get(REMEMBER)!;

    const replay = await stolen.get('/api/session');
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('unauthenticated');
    expect(stolen.cookies.has(REMEMBER)).toBe(false); // the dead cookie is cleared
    // The chain is gone: T2 no longer restores anything, and S2 was revoked with it.
    expect((await victim.get('/api/session')).status).toBe(401);
    const t2Alone = new Client(server.url);
    t2Alone.cookies.set(REMEMBER, t2);
    expect((await t2Alone.get('/api/session')).status).toBe(401);

    const events = await owner.get('/api/account/events');
    expect(events.status).toBe(200);
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('remember_me.replayed');
  });

  it('20 parallel uses of one token restore at most one session', async () => {
    const { email } = await signup(server.url, { email: uniqueEmail('rm-race') });
    const b = await rememberedLogin(email);
    const token = b.cookies.get(REMEMBER)!;
    const user = await db().selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const before = await db().selectFrom('sessions').select('id').where('user_id', '=', user.id).execute();

    const replies = await Promise.all(
      Array.from({ length: 20 }, () => {
        const c = new Client(server.url);
        c.cookies.set(REMEMBER, token);
        return c.get('/api/session');
      }),
    );
    const restored = replies.filter((r) => r.status === 200);
    expect(restored.length).toBeLessThanOrEqual(1);
    const after = await db().selectFrom('sessions').select(['id', 'amr']).where('user_id', '=', user.id).execute();
    const fromRemember = after.filter((s) => s.amr.includes('remember_me'));
    expect(fromRemember.length).toBeLessThanOrEqual(1);
    expect(after.length - before.length).toBeLessThanOrEqual(1);
    // The token was used exactly once.
    const hash = crypto.createHash('sha256').update(token).digest('base64url');
    const row = await db().selectFrom('remember_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirstOrThrow();
    expect(row.used_at).not.toBeNull();
    const family = await db().selectFrom('remember_tokens').select('id').where('family_id', '=', row.family_id).execute();
    expect(family.length).toBe(2); // the token and exactly one successor
  });

  it('logout revokes the session and this device’s remember-me token', async () => {
    const { email } = await signup(server.url, { email: uniqueEmail('rm-logout') });
    const b = await rememberedLogin(email);
    const copy = b.only(SESSION, REMEMBER);
    const out = await b.post('/api/auth/logout');
    expect(out.status).toBe(204);
    expect(b.cookies.has(REMEMBER)).toBe(false);
    expect((await copy.get('/api/session')).status).toBe(401);
    expect((await copy.only(REMEMBER).get('/api/session')).status).toBe(401);

    // Logout from a browser holding only the remember-me cookie ends that chain too,
    // without first restoring a session from it.
    const c = await rememberedLogin(email);
    const keep = c.cookies.get(REMEMBER)!;
    const onlyRemember = c.only(REMEMBER);
    expect((await onlyRemember.post('/api/auth/logout')).status).toBe(204);
    const again = new Client(server.url);
    again.cookies.set(REMEMBER, keep);
    expect((await again.get('/api/session')).status).toBe(401);
  });

  it('revoking a session in the session list ends the remember-me chain it belongs to', async () => {
    const { email, client: manager } = await signup(server.url, { email: uniqueEmail('rm-revoke') });
    const b = await rememberedLogin(email);
    const laptop = b.only(REMEMBER);
    expect((await laptop.get('/api/session')).status).toBe(200); // restored session S
    const list = await manager.get('/api/sessions');
    const rows = await db().selectFrom('sessions').select(['id', 'amr']).execute();
    const fromRemember = rows.find((r) => r.amr.includes('remember_me') && list.body.sessions.some((s: { id: string }) => s.id === r.id))!;
    expect(fromRemember).toBeTruthy();
    expect((await manager.delete(`/api/sessions/${fromRemember.id}`)).status).toBe(204);
    const again = laptop.only(REMEMBER);
    expect((await again.get('/api/session')).status).toBe(401);
  });

  it('uses a __Host-, Secure cookie when the public URL is https, and it alone restores a session', async () => {
    const https = await startTestServer({ ...FAST_ENV, GATEHOUSE_PUBLIC_URL: 'https://bank.example' });
    try {
      const { email } = await signup(https.url, { email: uniqueEmail('rm-https') });
      const b = new Client(https.url);
      const r = await b.post('/api/auth/login', { email, password: PASSWORD, remember: true });
      expect(r.status).toBe(200);
      const cookie = cookieNamed(r.setCookies, '__Host-gatehouse_remember')!;
      expect(cookie).toMatch(/; Secure/i);
      expect(cookie).toMatch(/Path=\//);
      expect(cookie).not.toMatch(/Domain=/i);
      const later = b.only('__Host-gatehouse_remember');
      expect((await later.get('/api/session')).status).toBe(200);
      expect(later.cookies.has('__Host-gatehouse_session')).toBe(true);
    } finally {
      await https.close();
    }
  });

  it('a garbage or unknown remember-me cookie is simply unauthenticated', async () => {
    for (const value of ['x', 'A'.repeat(43), 'A'.repeat(5000), '%00%ff']) {
      const b = new Client(server.url);
      b.cookies.set(REMEMBER, value);
      const r = await b.get('/api/session');
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('unauthenticated');
    }
  });
});
