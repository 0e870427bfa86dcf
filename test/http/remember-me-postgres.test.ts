/**
 * Remember-me single use across two server instances sharing one PostgreSQL database:
 * 20 parallel uses of one token, spread over both instances, restore at most one session;
 * a chain replay seen by one instance kills the session restored on the other.
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
  pair = await startPostgresPair('remember', { ...FAST_ENV, GATEHOUSE_SECRET_KEY: 'remember-me-postgres-test-key' });
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
