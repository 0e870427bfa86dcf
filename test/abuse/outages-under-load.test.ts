/**
 * Faults under continuous load, on two instances sharing a throw-away PostgreSQL and a
 * throw-away redis-server (test/helpers/throwaway.ts; loopback, bounded): each dependency
 * is SIGKILLed while both instances serve logins, protected reads and transfers, then
 * started again. Asserted: during the fault only 503 with Retry-After (no other 5xx), both
 * instances recover by themselves, and every acknowledged transfer is in the database
 * afterwards (writes lost: 0). The printed line per fault is the closing note's table row.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signup } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { throwawayPostgres, throwawayRedis, type ThrowawayPostgres, type ThrowawayRedis } from '../helpers/throwaway.js';

let db: ThrowawayPostgres;
let redis: ThrowawayRedis;
let servers: TestServer[] = [];
beforeAll(async () => {
  [db, redis] = await Promise.all([throwawayPostgres(), throwawayRedis()]);
  const env = {
    GATEHOUSE_DATABASE_URL: db.url,
    GATEHOUSE_REDIS_URL: redis.url,
    GATEHOUSE_SECRET_KEY: crypto.randomBytes(32).toString('base64url'),
    GATEHOUSE_DATABASE_CONNECT_TIMEOUT: '2',
    GATEHOUSE_REDIS_CONNECT_TIMEOUT: '2',
  };
  servers.push(await startFastServer(env));
  servers.push(await startFastServer(env));
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  await redis?.stop();
  await db?.stop();
});

interface Phase {
  total: number;
  unavailable: number;
  otherServerErrors: number;
  ok: number;
}
const phase = (): Phase => ({ total: 0, unavailable: 0, otherServerErrors: 0, ok: 0 });

/** Runs `workers` loops of login / read / transfer over both instances until `stop()`. */
function load(account: { email: string; client: Client }, workers: number) {
  let current = phase();
  const acknowledged: string[] = [];
  let running = true;
  let lastOkAt = 0;
  const badRetryAfter: string[] = [];
  const tally = (status: number, retryAfter: string | undefined) => {
    current.total++;
    if (status === 503) {
      current.unavailable++;
      if (!(Number(retryAfter) >= 1)) badRetryAfter.push(String(retryAfter));
    } else if (status >= 500) current.otherServerErrors++;
    else if (status < 400) {
      current.ok++;
      lastOkAt = Date.now();
    }
  };
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const base = servers[(w + i) % servers.length]!.url;
      const client = account.client.withBase(base);
      const kind = i % 3;
      const r =
        kind === 0
          ? await new Client(base).post('/api/auth/login', { email: account.email, password: PASSWORD })
          : kind === 1
            ? await client.get('/api/account')
            : await client.post('/api/transfers', { to: `fault-${w}-${i}`, amountCents: 100 });
      tally(r.status, r.headers['retry-after'] as string | undefined);
      if (kind === 2 && r.status === 201) acknowledged.push(r.body.id);
      if (r.status >= 500) await new Promise((res) => setTimeout(res, 50));
    }
  });
  return {
    /** Starts counting a new phase; returns the previous one. */
    next(): Phase {
      const done = current;
      current = phase();
      return done;
    },
    lastOkAt: () => lastOkAt,
    badRetryAfter,
    acknowledged,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function storedTransfers(): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return new Set((await client.query<{ id: string }>('SELECT id FROM demo_transactions')).rows.map((r) => r.id));
  } finally {
    await client.end();
  }
}

/** Milliseconds from `since` until every instance is ready again. */
async function recovery(since: number): Promise<number> {
  for (;;) {
    const ready = await Promise.all(servers.map((s) => new Client(s.url).get('/readyz').then((r) => r.status === 200)));
    if (ready.every(Boolean)) return Date.now() - since;
    if (Date.now() - since > 60_000) throw new Error('no recovery within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each([
  { fault: 'PostgreSQL SIGKILL + restart', kill: () => db.kill(), start: () => db.start() },
  { fault: 'Redis SIGKILL + restart', kill: () => redis.kill(), start: () => redis.start() },
])('under load: $fault', ({ fault, kill, start }) => {
  it('answers only 503 + Retry-After during the fault, recovers by itself, loses no acknowledged write', async () => {
    const account = await signup(servers[0]!.url);
    const run = load(account, 6);
    await sleep(1_500);
    const before = run.next();
    await kill();
    await sleep(3_000);
    await start();
    const restartedAt = Date.now();
    const recoveredIn = await recovery(restartedAt);
    const during = run.next();
    await sleep(1_500);
    const after = run.next();
    await run.stop();

    const stored = await storedTransfers();
    const lost = run.acknowledged.filter((id) => !stored.has(id)).length;
    console.log(
      `| ${fault} | ${during.total} | ${during.unavailable} | ${during.otherServerErrors} | ${recoveredIn} ms after restart | ${lost} of ${run.acknowledged.length} acknowledged transfers |`,
    );
    expect(before.otherServerErrors + before.unavailable).toBe(0);
    expect(during.unavailable).toBeGreaterThan(0);
    expect(during.otherServerErrors).toBe(0);
    expect(run.badRetryAfter).toEqual([]);
    expect(after.otherServerErrors + after.unavailable).toBe(0);
    expect(after.ok).toBeGreaterThan(0);
    expect(lost).toBe(0);
  }, 120_000);
});
