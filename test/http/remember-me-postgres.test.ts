/**
 * Remember-me single use across two server instances sharing one PostgreSQL database:
 * 20 parallel uses of one token, spread over both instances, restore at most one session;
 * a chain replay seen by one instance kills the session restored on the other; a stale
 * token shown at login on one instance ends the thief's sessions on both, with one mail
 * however the replays are spread (issue 18).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_ENV, startPostgresPair, type TestServer } from '../helpers/server.js';
import { PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';

const REMEMBER = 'gatehouse_remember';

let pair: Awaited<ReturnType<typeof startPostgresPair>>;
let a: TestServer;
let b: TestServer;
beforeAll(async () => {
  pair = await startPostgresPair('remember', { ...FAST_ENV, GATEHOUSE_SECRET_KEY: 'remember-me-postgres-test-key-0000000000000' });
  [a, b] = pair.servers;
});
afterAll(() => pair?.cleanup());

describe('remember-me on PostgreSQL, two instances', () => {
  it('20 parallel uses of one token across both instances restore at most one session', async () => {
    const { email } = await signup(a.url, { email: uniqueEmail('rm-pg') });
    const login = new Client(a.url);
    expect((await login.post('/api/auth/login', { email, password: PASSWORD, remember: true })).status).toBe(200);
    const token = login.cookies.get(REMEMBER)!;
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const c = new Client(i % 2 === 0 ? a.url : b.url);
        c.cookies.set(REMEMBER, token);
        return c.get('/api/session');
      }),
    );
    expect(replies.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
    expect(replies.every((r) => r.status === 200 || r.status === 401)).toBe(true);
    const db = a.server.gatehouse.database.db;
    const user = await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const sessions = await db.selectFrom('sessions').select('amr').where('user_id', '=', user.id).execute();
    expect(sessions.filter((s) => s.amr.includes('remember_me')).length).toBeLessThanOrEqual(1);
  });

  it('a replay on one instance ends the session restored on the other', async () => {
    const { email } = await signup(a.url, { email: uniqueEmail('rm-pg-replay') });
    const login = new Client(a.url);
    expect((await login.post('/api/auth/login', { email, password: PASSWORD, remember: true })).status).toBe(200);
    const token = login.cookies.get(REMEMBER)!;
    const thief = new Client(a.url);
    thief.cookies.set(REMEMBER, token);
    expect((await thief.get('/api/session')).status).toBe(200);
    const owner = new Client(b.url);
    owner.cookies.set(REMEMBER, token);
    expect((await owner.get('/api/session')).status).toBe(401);
    thief.cookies.delete(REMEMBER);
    expect((await thief.get('/api/session')).status).toBe(401);
  });
});

describe('remember-me theft on PostgreSQL, two instances (issue 18)', () => {
  it('a stale token shown at login on one instance kills the thief’s sessions on both; one mail', async () => {
    const { email } = await signup(a.url, { email: uniqueEmail('rm-pg-theft') });
    const victim = new Client(a.url);
    expect((await victim.post('/api/auth/login', { email, password: PASSWORD, remember: true })).status).toBe(200);
    const t1 = victim.cookies.get(REMEMBER)!;
    // The thief restores on instance a (T1 → T2) and from a second client on b (T2 → T3).
    const thiefA = new Client(a.url);
    thiefA.cookies.set(REMEMBER, t1);
    expect((await thiefA.get('/api/account/events')).status).toBe(200);
    const thiefB = new Client(b.url);
    thiefB.cookies.set(REMEMBER, thiefA.cookies.get(REMEMBER)!);
    expect((await thiefB.get('/api/account/events')).status).toBe(200);
    const t3 = thiefB.cookies.get(REMEMBER)!;

    // The victim logs in again with "remember me" on instance b, its browser still holding T1.
    const again = victim.withBase(b.url);
    expect((await again.post('/api/auth/login', { email, password: PASSWORD, remember: true })).status).toBe(200);

    // Both thieves are out, on either instance; T3 restores nothing anywhere.
    for (const thief of [thiefA, thiefB]) {
      expect((await thief.get('/api/account/events')).status).toBe(401);
      expect((await thief.withBase(thief.base === a.url ? b.url : a.url).get('/api/account/events')).status).toBe(401);
    }
    for (const base of [a.url, b.url]) {
      const c = new Client(base);
      c.cookies.set(REMEMBER, t3);
      expect((await c.get('/api/session')).status).toBe(401);
    }
    // The victim's new session and chain work on both instances; the owner is mailed once.
    expect((await again.get('/api/account/events')).status).toBe(200);
    expect((await again.withBase(a.url).only(REMEMBER).get('/api/session')).status).toBe(200);
    const db = a.server.gatehouse.database.db;
    const user = await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const events = await db
      .selectFrom('events')
      .select('id')
      .where('user_id', '=', user.id)
      .where('type', '=', 'remember_me.replayed')
      .execute();
    expect(events).toHaveLength(1);
    const mails = await db
      .selectFrom('mail_outbox')
      .select('id')
      .where('user_id', '=', user.id)
      .where('event_type', '=', 'remember_me.replayed')
      .execute();
    expect(mails).toHaveLength(1);
  });

  it('parallel replays of a stale token spread over both instances notify once', async () => {
    const { email } = await signup(a.url, { email: uniqueEmail('rm-pg-burst') });
    const login = new Client(a.url);
    expect((await login.post('/api/auth/login', { email, password: PASSWORD, remember: true })).status).toBe(200);
    const t1 = login.cookies.get(REMEMBER)!;
    const thief = new Client(b.url);
    thief.cookies.set(REMEMBER, t1);
    expect((await thief.get('/api/account/events')).status).toBe(200);
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const c = new Client(i % 2 === 0 ? a.url : b.url);
        c.cookies.set(REMEMBER, t1);
        return c.get('/api/session');
      }),
    );
    expect(replies.every((r) => r.status === 401)).toBe(true);
    expect((await thief.get('/api/account/events')).status).toBe(401);
    const db = b.server.gatehouse.database.db;
    const user = await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const mails = await db
      .selectFrom('mail_outbox')
      .select('id')
      .where('user_id', '=', user.id)
      .where('event_type', '=', 'remember_me.replayed')
      .execute();
    expect(mails).toHaveLength(1);
  });
});
