/**
 * The contract's Limits, under attack spread over parallel requests, sessions, letter case
 * of the e-mail, X-Forwarded-For values and (for PostgreSQL and Redis) two server instances
 * sharing the database / the limiter store. Each configuration runs the same attacks.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginPending, PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { REDIS_URL } from '../helpers/postgres.js';
import { FAST_ENV, startPostgresPair, startTestServer, type TestServer } from '../helpers/server.js';
import { wrongTotp } from '../helpers/totp.js';
import { expect429 } from './helpers.js';

const LOCKOUT = 4;

interface Setup {
  name: string;
  start(env?: Record<string, string>): Promise<{ servers: TestServer[]; cleanup(): Promise<void> }>;
}

const common = { ...FAST_ENV, GATEHOUSE_LOCKOUT_SECONDS: String(LOCKOUT), GATEHOUSE_TRUST_PROXY: '127.0.0.1' };
/** The default password-hashing cost: parallel logins overlap in flight as they do in production. */
const realCost = { ...common, GATEHOUSE_ARGON2_MEMORY_KIB: '19456', GATEHOUSE_ARGON2_ITERATIONS: '2' };

const setups: Setup[] = [
  {
    name: 'SQLite, limits in the database',
    async start(env = common) {
      const s = await startTestServer(env);
      return { servers: [s], cleanup: () => s.close() };
    },
  },
  {
    name: 'two instances sharing PostgreSQL, limits in PostgreSQL',
    async start(env = common) {
      return startPostgresPair('limits', { ...env, GATEHOUSE_SECRET_KEY: 'limits-test-key-pg-000000000000000000000000' });
    },
  },
  {
    name: 'two instances sharing PostgreSQL, limits in Redis',
    async start(env = common) {
      const pair = await startPostgresPair('limitsr', {
        ...env,
        GATEHOUSE_REDIS_URL: REDIS_URL,
        GATEHOUSE_SECRET_KEY: 'limits-test-key-redis-000000000000000000000',
      });
      const [a] = pair.servers;
      return {
        servers: pair.servers,
        async cleanup() {
          // Only the keys this run created (unique user ids, e-mails and addresses).
          const users = await a.server.gatehouse.database.db.selectFrom('users').select(['id', 'email_normalized']).execute();
          const redis = new Redis(REDIS_URL);
          const keys = [
            ...users.flatMap((u) => [
              `gatehouse:failures:mfa_account:${u.id}`,
              `gatehouse:failures:password_account:${u.email_normalized}`,
            ]),
            ...usedAddresses.map((ip) => `password_address:${ip}`),
          ];
          if (keys.length) await redis.del(...keys);
          redis.disconnect();
          await pair.cleanup();
        },
      };
    },
  },
];

const usedAddresses: string[] = [];
let addressCounter = Math.floor(Math.random() * 200);
/** A fresh documentation-range client address, as a trusted proxy would report it. */
function address(): string {
  const ip = `198.51.${100 + Math.floor(addressCounter / 250)}.${(addressCounter++ % 250) + 1}`;
  usedAddresses.push(ip);
  return ip;
}
function viaProxy(): Record<string, string> {
  return { 'x-forwarded-for': address() };
}
/** The e-mail in a random mix of letter case. */
function scramble(email: string): string {
  return [...email].map((ch) => (Math.random() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('');
}

async function events(server: TestServer, userId: string, type: string): Promise<number> {
  const rows = await server.server.gatehouse.database.db
    .selectFrom('events')
    .select('id')
    .where('user_id', '=', userId)
    .where('type', '=', type)
    .execute();
  return rows.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(setups)('limits: $name', (setup) => {
  let servers: TestServer[] = [];
  let cleanup = async () => {};
  const url = (i: number) => servers[i % servers.length]!.url;

  beforeAll(async () => {
    ({ servers, cleanup } = await setup.start());
  }, 60_000);
  afterAll(async () => cleanup());

  it('the fifth wrong code in one pending session answers 429 and revokes that session', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    const c = await loginPending(url(0), acct.email, viaProxy());
    for (let i = 1; i <= 4; i++) {
      const r = await c.withBase(url(i)).post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(acct.secret) });
      expect(r.status, r.text).toBe(401);
      expect(r.body.error).toBe('invalid_code');
    }
    const fifth = await c.post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(acct.secret) });
    expect(fifth.body.error).toBe('too_many_attempts');
    expect429(fifth);
    // The session is gone: even the right code cannot complete it.
    const after = await c.withBase(url(1)).post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[0] });
    expect(after.status).toBe(401);
    expect(['no_pending_authentication', 'unauthenticated']).toContain(after.body.error);
    // The legitimate user, in a new session, still gets in (5 < 10 account-wide).
    const fresh = await loginPending(url(1), acct.email, viaProxy());
    expect((await fresh.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[0] })).status).toBe(200);
  });

  it('parallel wrong codes over many sessions, addresses, letter cases and instances: exactly 10 are checked, then even a correct code is locked out', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    // 8 pending sessions, each from its own address, with its own letter case, on alternating instances.
    const sessions = await Promise.all(Array.from({ length: 8 }, (_, i) => loginPending(url(i), scramble(acct.email), viaProxy())));
    // 32 wrong guesses at once: 4 per session (below the per-session limit).
    const guesses = sessions.flatMap((s, i) =>
      Array.from({ length: 4 }, (_, j) =>
        s.withBase(url(i + j)).post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(acct.secret) }),
      ),
    );
    const replies = await Promise.all(guesses);
    const checked = replies.filter((r) => r.status === 401).length;
    const refused = replies.filter((r) => r.status === 429);
    for (const r of replies) expect([401, 429], r.text).toContain(r.status);
    for (const r of refused) expect(expect429(r)).toBeLessThanOrEqual(LOCKOUT);
    // Every checked guess is a counted failure; no more than the contract's 10 got checked.
    expect(await events(servers[0]!, acct.userId, 'mfa.failed')).toBe(10);
    expect(checked).toBe(10);
    expect(refused.length).toBe(22);
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(1);

    // Locked: the correct recovery code, in a brand-new session on the other instance, is refused.
    const owner = await loginPending(url(1), acct.email, viaProxy());
    const locked = await owner.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[1] });
    expect(locked.body.error).toBe('too_many_attempts');
    const retryAfter = expect429(locked);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(LOCKOUT);
    // The refused code was not consumed, and more refusals do not record account.locked again.
    await owner.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[1] });
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(1);
    // The lockout of second factors does not lock the password check.
    const pw = await new Client(url(0), viaProxy()).post('/api/auth/login', { email: acct.email, password: PASSWORD });
    expect(pw.status).toBe(202);

    // retryAfter is honest: after that many seconds the correct code works.
    await sleep(retryAfter * 1000 + 300);
    const late = await loginPending(url(0), acct.email, viaProxy());
    const ok = await late.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[1] });
    expect(ok.status, ok.text).toBe(200);
  });

  it('a correct code resets the run of failures', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    const wrong = async (n: number) => {
      for (let done = 0; done < n;) {
        const s = await loginPending(url(done), acct.email, viaProxy());
        const batch = Math.min(4, n - done);
        const rs = await Promise.all(
          Array.from({ length: batch }, () => s.post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(acct.secret) })),
        );
        for (const r of rs) expect(r.status).toBe(401);
        done += batch;
      }
    };
    await wrong(9);
    const s1 = await loginPending(url(1), acct.email, viaProxy());
    expect((await s1.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[2] })).status).toBe(200);
    await wrong(9);
    const s2 = await loginPending(url(0), acct.email, viaProxy());
    expect((await s2.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[3] })).status).toBe(200);
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(0);
  });

  it('parallel wrong passwords across letter case, addresses and instances: 10 checked, then the correct password is locked; a pending session keeps its second-factor check', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    const before = await loginPending(url(1), acct.email, viaProxy());
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        new Client(url(i), viaProxy()).post('/api/auth/login', { email: scramble(acct.email), password: `wrong password ${i}` }),
      ),
    );
    for (const r of replies) expect([401, 429], r.text).toContain(r.status);
    expect(replies.filter((r) => r.status === 401).length).toBe(10);
    for (const r of replies.filter((r) => r.status === 429)) expect(expect429(r)).toBeLessThanOrEqual(LOCKOUT);
    expect(await events(servers[0]!, acct.userId, 'login.failed')).toBe(10);
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(1);

    const correct = await new Client(url(1), viaProxy()).post('/api/auth/login', { email: acct.email, password: PASSWORD });
    expect(correct.body.error).toBe('too_many_attempts');
    const retryAfter = expect429(correct);
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(1);
    // Separate counters: the password lockout does not block the second factor.
    expect((await before.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[4] })).status).toBe(200);

    await sleep(retryAfter * 1000 + 300);
    const later = await new Client(url(0), viaProxy()).post('/api/auth/login', { email: acct.email.toUpperCase(), password: PASSWORD });
    expect(later.status, later.text).toBe(202);
  });

  // Issue 9, defect 4 (contract v1.1): attempts in flight are not failures.
  it('20 correct and 9 wrong passwords at once: every correct one succeeds and every wrong one is checked', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    const attempts = Array.from({ length: 29 }, (_, i) => (i % 3 === 2 && i < 27 ? `wrong password ${i}` : PASSWORD));
    const replies = await Promise.all(
      attempts.map((password, i) => new Client(url(i), viaProxy()).post('/api/auth/login', { email: scramble(acct.email), password })),
    );
    const correct = replies.filter((_, i) => attempts[i] === PASSWORD);
    const wrong = replies.filter((_, i) => attempts[i] !== PASSWORD);
    expect(correct.map((r) => r.status)).toEqual(Array(20).fill(202));
    expect(wrong.map((r) => r.status)).toEqual(Array(9).fill(401));
    expect(await events(servers[0]!, acct.userId, 'login.failed')).toBe(9);
  });

  it('20 correct and 24 wrong passwords at once: no correct one is refused unless ten wrong ones settled first and locked, and the cap holds afterwards', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    // Correct and wrong on both instances, interleaved.
    const attempts = Array.from({ length: 44 }, (_, i) => (i % 4 < 2 && i < 40 ? PASSWORD : `wrong password ${i}`));
    const replies = await Promise.all(
      attempts.map((password, i) => new Client(url(i), viaProxy()).post('/api/auth/login', { email: scramble(acct.email), password })),
    );
    const correct = replies.filter((_, i) => attempts[i] === PASSWORD);
    const wrong = replies.filter((_, i) => attempts[i] !== PASSWORD);
    for (const r of wrong) expect([401, 429], r.text).toContain(r.status);
    for (const r of correct) expect([202, 429], r.text).toContain(r.status);
    // Which attempts get checked first is up to the network and the scheduler: with more
    // than ten wrong ones, ten may settle before a correct one is checked; only that lock
    // (settled failures, never attempts in flight) may refuse a correct password.
    const locked = await events(servers[0]!, acct.userId, 'account.locked');
    if (locked === 0) expect(correct.map((r) => r.status)).toEqual(Array(20).fill(202));
    else for (const r of correct.filter((r) => r.status === 429)) expect(expect429(r)).toBeGreaterThan(1);
    expect(await events(servers[0]!, acct.userId, 'login.failed')).toBe(wrong.filter((r) => r.status === 401).length);

    // Whatever the burst left over, no more than 10 wrong passwords get checked now, and then the account is locked.
    const after = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        new Client(url(i), viaProxy()).post('/api/auth/login', { email: acct.email, password: `more wrong ${i}` }),
      ),
    );
    const checkedAfter = after.filter((r) => r.status === 401).length;
    expect(checkedAfter).toBeLessThanOrEqual(10);
    expect(after.filter((r) => r.status === 429).length).toBe(24 - checkedAfter);
    // One lock, or two if the burst's own lock ran out before these arrived.
    expect([1, 2]).toContain(await events(servers[0]!, acct.userId, 'account.locked'));
    expect((await new Client(url(1), viaProxy()).post('/api/auth/login', { email: acct.email, password: PASSWORD })).status).toBe(429);
  });

  it('unknown e-mails are limited exactly like known ones (no account enumeration through the lockout)', async () => {
    const email = uniqueEmail('nobody');
    const replies = await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        new Client(url(i), viaProxy()).post('/api/auth/login', { email: scramble(email), password: `guess ${i}` }),
      ),
    );
    expect(replies.filter((r) => r.status === 401).length).toBe(10);
    for (const r of replies.filter((r) => r.status === 429)) expect429(r);
  });
});

describe.each(setups)('parallel correct logins at the default hashing cost: $name', (setup) => {
  let servers: TestServer[] = [];
  let cleanup = async () => {};
  const url = (i: number) => servers[i % servers.length]!.url;
  beforeAll(async () => {
    ({ servers, cleanup } = await setup.start(realCost));
  }, 60_000);
  afterAll(async () => cleanup());

  it('20 simultaneous correct logins to one account all succeed, spread over addresses, letter cases and instances', async () => {
    const acct = await signupWithTotp(url(0), { email: uniqueEmail(), headers: viaProxy(), confirmStep: 0 });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        new Client(url(i), viaProxy()).post('/api/auth/login', { email: scramble(acct.email), password: PASSWORD }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(202));
    expect(replies.every((r) => r.body.status === 'mfa_required')).toBe(true);
    expect(await events(servers[0]!, acct.userId, 'account.locked')).toBe(0);
  });
});

describe('per-address password limit and X-Forwarded-For', () => {
  it('without GATEHOUSE_TRUST_PROXY, X-Forwarded-For changes nothing: one address is limited however the header varies', async () => {
    const s = await startTestServer({ ...FAST_ENV });
    try {
      const statuses: number[] = [];
      // 100 attempts per address per 15 minutes, each with a different (ignored) XFF and e-mail.
      for (let batch = 0; batch < 11; batch++) {
        const rs = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            new Client(s.url, { 'x-forwarded-for': `203.0.113.${batch * 10 + i + 1}` }).post('/api/auth/login', {
              email: uniqueEmail('spray'),
              password: 'not the password',
            }),
          ),
        );
        statuses.push(...rs.map((r) => r.status));
        for (const r of rs) if (r.status === 429) expect429(r);
      }
      expect(statuses.filter((x) => x === 401).length).toBe(100);
      expect(statuses.filter((x) => x === 429).length).toBe(10);
      // A legitimate login from that address is limited too, but keeps the honest retryAfter.
      const acct = await new Client(s.url).post('/api/auth/login', { email: uniqueEmail(), password: PASSWORD });
      expect(expect429(acct)).toBeGreaterThan(800);
    } finally {
      await s.close();
    }
  });

  it('with GATEHOUSE_TRUST_PROXY naming the proxy, each forwarded client address has its own budget', async () => {
    const s = await startTestServer({ ...FAST_ENV, GATEHOUSE_TRUST_PROXY: '127.0.0.1' });
    try {
      const spray = (ip: string, n: number) =>
        Promise.all(
          Array.from({ length: n }, () =>
            new Client(s.url, { 'x-forwarded-for': ip }).post('/api/auth/login', {
              email: uniqueEmail('spray'),
              password: 'not the password',
            }),
          ),
        );
      const first = [...(await spray('192.0.2.10', 50)), ...(await spray('192.0.2.10', 55))];
      expect(first.filter((r) => r.status === 429).length).toBe(5);
      const other = await spray('192.0.2.11', 5);
      expect(other.every((r) => r.status === 401)).toBe(true);
    } finally {
      await s.close();
    }
  });
});
