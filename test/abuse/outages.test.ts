/**
 * Dependency outages (contract v1.1): while PostgreSQL or Redis is down, requests that need
 * them answer 503 service_unavailable with Retry-After (never another 5xx), the process
 * stays up, /healthz stays ok and /readyz says not_ready; after the dependency returns,
 * the same instance serves again by itself, and no acknowledged write is lost. Throw-away
 * servers of our own (test/helpers/throwaway.ts), loopback only, bounded loops.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/http-client.js';
import { login, PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { FAST_ENV, startFastServer, startTestServer, type TestServer } from '../helpers/server.js';
import { pgSchema } from '../helpers/postgres.js';
import { throwawayPostgres, throwawayRedis } from '../helpers/throwaway.js';

interface Tally {
  total: number;
  unavailable: number;
  otherServerErrors: number;
}

/** Sends `rounds` mixed requests; every answer must be a success, a 4xx or a proper 503. */
async function during(base: string, full: Client, rounds: number): Promise<Tally> {
  const tally: Tally = { total: 0, unavailable: 0, otherServerErrors: 0 };
  for (let i = 0; i < rounds; i++) {
    const answers = await Promise.all([
      new Client(base).post('/api/auth/login', { email: uniqueEmail('down'), password: PASSWORD }),
      full.get('/api/account'),
      new Client(base).post('/api/auth/signup', { email: uniqueEmail('down'), password: PASSWORD }),
    ]);
    for (const r of answers) {
      tally.total++;
      if (r.status === 503) {
        tally.unavailable++;
        expect(r.body).toMatchObject({ error: 'service_unavailable', retryAfter: expect.any(Number) });
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      } else if (r.status >= 500) tally.otherServerErrors++;
    }
  }
  return tally;
}

async function until(check: () => Promise<boolean>, ms = 30_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('did not recover in time');
}

describe('dependency outages', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('Redis killed and restarted: logins answer 503 with Retry-After meanwhile, the instance recovers by itself', async () => {
    const redis = await throwawayRedis();
    cleanups.push(() => redis.stop());
    const server: TestServer = await startFastServer({ GATEHOUSE_REDIS_URL: redis.url });
    cleanups.push(() => server.close());
    const owner = await signupWithTotp(server.url);
    expect((await new Client(server.url).get('/readyz')).body).toEqual({ status: 'ready' });

    await redis.kill();
    const tally = await during(server.url, owner.client, 5);
    // Logins need the attempt counters in Redis: refused with 503, never checked unlimited.
    expect(tally.unavailable).toBeGreaterThan(0);
    expect(tally.otherServerErrors).toBe(0);
    const ready = await new Client(server.url).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not_ready' });
    expect((await new Client(server.url).get('/healthz')).status).toBe(200);

    await redis.start();
    const recoveredIn = await until(async () => (await login(server.url, owner)).res.status === 202);
    console.log(`redis outage: ${tally.total} requests, ${tally.unavailable} answered 503, recovered ${recoveredIn} ms after restart`);
    expect((await new Client(server.url).get('/readyz')).status).toBe(200);
  }, 120_000);

  it('PostgreSQL killed and restarted: 503 meanwhile, recovery by itself, every acknowledged signup survives', async () => {
    const pg = await throwawayPostgres();
    cleanups.push(() => pg.stop());
    const server: TestServer = await startFastServer({ GATEHOUSE_DATABASE_URL: pg.url });
    cleanups.push(() => server.close());
    const owner = await signup(server.url);
    const acknowledged = [owner];
    for (let i = 0; i < 5; i++) acknowledged.push(await signup(server.url));

    await pg.kill();
    const tally = await during(server.url, owner.client, 5);
    expect(tally.unavailable).toBeGreaterThan(0);
    expect(tally.otherServerErrors).toBe(0);
    expect((await new Client(server.url).get('/readyz')).status).toBe(503);
    expect((await new Client(server.url).get('/healthz')).status).toBe(200);

    await pg.start();
    const recoveredIn = await until(async () => (await new Client(server.url).get('/readyz')).status === 200);
    console.log(`postgres outage: ${tally.total} requests, ${tally.unavailable} answered 503, recovered ${recoveredIn} ms after restart`);
    // Every signup acknowledged before the crash is still there.
    for (const a of acknowledged) expect((await login(server.url, a)).res.status).toBe(200);
  }, 120_000);
});

describe('start-up', () => {
  it('three instances started at once on an empty PostgreSQL database all come up (five rounds)', async () => {
    for (let round = 0; round < Number(process.env.STARTUP_ROUNDS ?? 5); round++) {
      const schema = await pgSchema('startup');
      const env = { ...FAST_ENV, GATEHOUSE_DATABASE_URL: schema.url, GATEHOUSE_SECRET_KEY: 'three-instances-start-together-0123456789-0' };
      const started = await Promise.allSettled([startTestServer(env), startTestServer(env), startTestServer(env)]);
      try {
        const reasons = started.map((s) => (s.status === 'rejected' ? String((s.reason as Error)?.stack ?? s.reason) : 'ok'));
        expect(
          started.map((s) => s.status),
          reasons.join('\n'),
        ).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
        for (const s of started) {
          if (s.status !== 'fulfilled') continue;
          expect((await new Client(s.value.url).get('/readyz')).status).toBe(200);
        }
        // Every table exists: a signup on one and a login on another work.
        const [a, b] = started.map((s) => (s.status === 'fulfilled' ? s.value.url : ''));
        const account = await signup(a!);
        expect((await login(b!, account)).res.status).toBe(200);
      } finally {
        for (const s of started) if (s.status === 'fulfilled') await s.value.close();
        await schema.drop();
      }
    }
  }, 180_000);
});
