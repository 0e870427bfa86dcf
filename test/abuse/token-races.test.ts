/**
 * Single use of mailed and long-lived tokens under ≥20 concurrent requests: a password
 * reset token, an e-mail confirmation token, and a remember-me token each succeed at most once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { mailedToken } from '../helpers/mail-files.js';
import { pgSchema } from '../helpers/postgres.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';

const PARALLEL = 24;
let server: TestServer;

/** The token in the newest mail to `to` (file transport: GATEHOUSE_SMTP_URL unset). */
async function mailedTokenTo(to: string): Promise<string> {
  const token = await mailedToken(server.dataDir, { to });
  if (token === null) throw new Error(`no mail with a token to ${to}`);
  return token;
}

const setups = [
  { name: 'SQLite', pg: false },
  { name: 'PostgreSQL', pg: true },
];

describe.each(setups)('token races ($name)', ({ pg }) => {
  let dropSchema = async () => {};
  beforeAll(async () => {
    if (pg) {
      const schema = await pgSchema('tokens');
      dropSchema = schema.drop;
      server = await startTestServer({ ...FAST_ENV, GATEHOUSE_DATABASE_URL: schema.url });
    } else {
      server = await startTestServer({ ...FAST_ENV });
    }
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await dropSchema();
  });

  it(`a password reset token raced by ${PARALLEL} requests resets the password once`, async () => {
    const acct = await signup(server.url);
    expect((await new Client(server.url).post('/api/auth/password/forgot', { email: acct.email })).status).toBe(202);
    const token = await mailedTokenTo(acct.email);
    const replies = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        new Client(server.url).post('/api/auth/password/reset', { token, password: `brand new password ${i} xyz` }),
      ),
    );
    const ok = replies.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 200);
    expect(ok.length).toBe(1);
    for (const r of replies) expect([200, 400, 429], r.text).toContain(r.status);
    for (const r of replies.filter((r) => r.status === 400)) expect(r.body.error).toBe('invalid_token');
    // Exactly the winner's password is in force.
    const winner = `brand new password ${ok[0]!.i} xyz`;
    expect((await new Client(server.url).post('/api/auth/login', { email: acct.email, password: winner })).status).toBe(200);
  });

  it(`an e-mail confirmation token raced by ${PARALLEL} requests confirms once`, async () => {
    const acct = await signup(server.url);
    const next = uniqueEmail('moved');
    const ask = await acct.client.post('/api/account/email', { email: next });
    expect(ask.status, ask.text).toBe(202);
    const token = await mailedTokenTo(next);
    const replies = await Promise.all(
      Array.from({ length: PARALLEL }, () => new Client(server.url).post('/api/account/email/confirm', { token })),
    );
    expect(replies.filter((r) => r.status === 200).length).toBe(1);
    for (const r of replies.filter((r) => r.status !== 200)) expect(r.body.error, r.text).toBe('invalid_token');
    expect((await new Client(server.url).post('/api/auth/login', { email: next, password: PASSWORD })).status).toBe(200);
  });

  it(`a remember-me token raced by ${PARALLEL} requests yields at most one session`, async () => {
    const acct = await signup(server.url);
    const browser = new Client(server.url);
    const login = await browser.post('/api/auth/login', { email: acct.email, password: PASSWORD, remember: true });
    expect(login.status).toBe(200);
    const rememberName = [...browser.cookies.keys()].find((k) => k.includes('remember'));
    expect(rememberName, 'remember-me cookie issued').toBeTruthy();
    const rememberCookie = `${rememberName}=${browser.cookies.get(rememberName!)}`;
    // Only the remember-me cookie, from 24 tabs at once.
    const replies = await Promise.all(
      Array.from({ length: PARALLEL }, () => new Client(server.url).get('/api/session', { headers: { cookie: rememberCookie } })),
    );
    const restored = replies.filter((r) => r.status === 200);
    expect(restored.length).toBeLessThanOrEqual(1);
    for (const r of replies) expect([200, 401], r.text).toContain(r.status);
    // The raced token itself is spent.
    const replay = await new Client(server.url).get('/api/session', { headers: { cookie: rememberCookie } });
    expect(replay.status).toBe(401);
  });
});
