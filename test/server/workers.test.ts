/**
 * `--workers 2` (node:cluster, src/server/cluster.ts) on one SQLite file: nothing that
 * decides security may live in one worker's memory. Every request here goes over a new
 * connection, which the primary hands to the workers in turn; the debug request lines
 * (with each worker's pid) show both workers took part.
 *
 * - The consecutive-failure cap is one counter for the account, not one per worker:
 *   30 wrong passwords at once check exactly 10, and the account is locked everywhere.
 * - A revocation is effective on every worker at once: requests with the revoked session
 *   that start after the DELETE was answered are all refused, whichever worker serves them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSECUTIVE_FAILURES_BEFORE_LOCKOUT } from '../../src/services/limits.js';
import { login, PASSWORD, signup } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV, spawnServer } from '../helpers/server.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-workers-'));
let server: Awaited<ReturnType<typeof spawnServer>>;

beforeAll(async () => {
  server = await spawnServer(
    {
      ...FAST_ENV,
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_SECRET_KEY: 'workers-test-key-00000000000000000000000000',
      GATEHOUSE_WORKERS: '2',
      GATEHOUSE_LOG_LEVEL: 'debug',
    },
    'test/server/fixtures/workers-server.ts',
  );
}, 90_000);
afterAll(async () => {
  await server?.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** A client whose every request opens a new connection (so the workers take turns). */
const rotating = (from?: Client) => {
  const client = new Client(server.url, { connection: 'close' });
  if (from) client.cookies = new Map(from.cookies);
  return client;
};

/**
 * Whether the server's logs come to satisfy `check`: request lines are written after the
 * response and reach us through a pipe, so they may trail the responses a little.
 */
async function logsShow(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  return check();
}

/** The pids of the workers that answered `url` (with `status`, if given), from the debug request lines. */
function servedBy(url: string, status?: number): Set<number> {
  const pids = new Set<number>();
  for (const line of server.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; url?: string; status?: number; pid?: number };
    if (entry.msg === 'request' && entry.url === url && (status === undefined || entry.status === status)) pids.add(entry.pid!);
  }
  return pids;
}

describe('two workers on one SQLite file', () => {
  it('start after the primary prepared the data dir, and both serve', async () => {
    expect(await logsShow(() => /"workers":2,"msg":"gatehouse workers listening"/.test(server.logs()))).toBe(true);
    for (let i = 0; i < 6; i++) expect((await rotating().get('/healthz')).status).toBe(200);
    expect(await logsShow(() => servedBy('/healthz').size === 2)).toBe(true);
  });

  it('hash passwords on their share of the cores only (not every core each)', () => {
    const listening = server
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"msg":"gatehouse listening"'))
      .map((line) => JSON.parse(line) as { pid: number; passwordHashSlots: number });
    expect(new Set(listening.map((l) => l.pid)).size).toBe(2);
    for (const worker of listening) expect(worker.passwordHashSlots).toBe(Math.max(1, Math.floor(os.availableParallelism() / 2)));
  });

  it('hold the consecutive-failure cap exactly: 30 simultaneous wrong passwords, 10 checked, then locked on both', async () => {
    const victim = await signup(server.url);
    const bystander = await signup(server.url);
    const guesses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => rotating().post('/api/auth/login', { email: victim.email, password: `wrong-guess-${i}-Qx7` })),
    );
    const statuses = guesses.map((g) => g.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(CONSECUTIVE_FAILURES_BEFORE_LOCKOUT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30 - CONSECUTIVE_FAILURES_BEFORE_LOCKOUT);
    expect(await logsShow(() => servedBy('/api/auth/login', 401).size === 2), 'both workers checked guesses').toBe(true);

    // Locked on every worker, even for the right password.
    for (let i = 0; i < 4; i++)
      expect((await rotating().post('/api/auth/login', { email: victim.email, password: PASSWORD })).status).toBe(429);
    expect(await logsShow(() => servedBy('/api/auth/login', 429).size === 2)).toBe(true);

    // Another account is untouched, on either worker.
    for (let i = 0; i < 4; i++)
      expect((await rotating().post('/api/auth/login', { email: bystander.email, password: PASSWORD })).status).toBe(200);
  });

  it('make a revocation effective on every worker at once, under load', async () => {
    const account = await signup(server.url);
    const victim = (await login(server.url, account)).client;
    const victimId = ((await victim.get('/api/sessions')).body.sessions as Array<{ id: string; current: boolean }>).find(
      (s) => s.current,
    )!.id;

    let revoked = false;
    let servedBefore = 0;
    const refusedAfter: number[] = [];
    const servedAfter: number[] = [];
    const load = async () => {
      while (refusedAfter.length + servedAfter.length < 60) {
        const startedAfterRevocation = revoked;
        const res = await rotating(victim).get('/api/account');
        if (!startedAfterRevocation) {
          if (res.status === 200) servedBefore++;
          continue;
        }
        (res.status === 401 ? refusedAfter : servedAfter).push(res.status);
      }
    };
    const revoke = async () => {
      // Once the victim's session is being served by both workers, its owner revokes it.
      while (servedBefore < 20 || servedBy('/api/account', 200).size < 2) await new Promise((r) => setTimeout(r, 20));
      const res = await account.client.delete(`/api/sessions/${victimId}`);
      expect(res.status).toBe(204);
      revoked = true;
    };
    await Promise.all([load(), load(), load(), load(), revoke()]);

    expect(servedAfter, 'requests with the revoked session answered after the revocation').toEqual([]);
    expect(refusedAfter.length).toBeGreaterThanOrEqual(60);
    expect(await logsShow(() => servedBy('/api/account', 401).size === 2), 'both workers refused the revoked session').toBe(true);
    // The revoking session still works everywhere.
    for (let i = 0; i < 4; i++) expect((await rotating(account.client).get('/api/account')).status).toBe(200);
  });
});
