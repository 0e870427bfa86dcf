/**
 * Migrations as a step of their own: `gatehouse migrate` applies them once; with
 * GATEHOUSE_MIGRATE=off an instance on a schema that is behind refuses to start with one
 * line; on PostgreSQL the migrator waits for the advisory lock another migrator holds.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase, SchemaBehindError } from '../../src/store/database.js';
import { migrations } from '../../src/store/migrations/index.js';
import { login, signup } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { pgSchema } from '../helpers/postgres.js';
import { FAST_ENV, startTestServer } from '../helpers/server.js';
import { throwawayPostgres } from '../helpers/throwaway.js';
import { runCli } from '../server/cli-process.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const KEY = 'migrate-test-key-0123456789abcdefghijklmnopqrstuv';

describe('gatehouse migrate and GATEHOUSE_MIGRATE=off', () => {
  it('an instance told not to migrate refuses a schema that is behind; after `gatehouse migrate` it starts and serves', async () => {
    const schema = await pgSchema('migrate');
    cleanups.push(() => schema.drop());
    const env = { ...FAST_ENV, GATEHOUSE_DATABASE_URL: schema.url, GATEHOUSE_SECRET_KEY: KEY, GATEHOUSE_MIGRATE: 'off' };
    await expect(startTestServer(env)).rejects.toThrow(SchemaBehindError);
    await expect(startTestServer(env)).rejects.toThrow(
      /schema is behind \(\d+ migration\(s\) pending, from 0001_initial\): run `gatehouse migrate`/,
    );

    // The command, as an operator runs it.
    const cli = runCli(['migrate'], { GATEHOUSE_DATABASE_URL: schema.url });
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toContain(`applied ${Object.keys(migrations).length} migration(s): 0001_initial,`);
    // Again: nothing to do.
    expect(await migrateDatabase(schema.url)).toEqual([]);

    const a = await startTestServer(env);
    const b = await startTestServer(env);
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    expect((await new Client(a.url).get('/readyz')).status).toBe(200);
    const account = await signup(a.url);
    expect((await login(b.url, account)).res.status).toBe(200);
  }, 120_000);

  it('on PostgreSQL, migrating waits while another migrator holds the advisory lock, then completes', async () => {
    const server = await throwawayPostgres();
    cleanups.push(() => server.stop());
    // Whatever lock id the migrator uses, it is an advisory lock: hold every one it asks for by
    // watching pg_locks while a migrator runs against the empty database.
    const first = migrateDatabase(server.url);
    const watcher = new pg.Client({ connectionString: server.url });
    await watcher.connect();
    cleanups.push(() => watcher.end());
    let lockSeen: { objid: string; classid: string } | undefined;
    const t0 = Date.now();
    let done = false;
    void first.finally(() => (done = true));
    while (!lockSeen && !done && Date.now() - t0 < 20_000) {
      const { rows } = await watcher.query<{ objid: string; classid: string }>(
        "SELECT classid::text, objid::text FROM pg_locks WHERE locktype = 'advisory' AND granted",
      );
      lockSeen = rows[0];
    }
    expect((await first).length).toBe(Object.keys(migrations).length);
    expect(lockSeen, 'the migrator held an advisory lock while it ran').toBeDefined();

    // Hold that lock ourselves: a second migrator (on a fresh database) waits for it.
    await watcher.query('CREATE DATABASE second');
    const secondUrl = server.url.replace(/\/postgres$/, '/second');
    const holder = new pg.Client({ connectionString: secondUrl });
    await holder.connect();
    cleanups.push(() => holder.end());
    const key = (BigInt(lockSeen!.classid) << 32n) | BigInt(lockSeen!.objid);
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [key.toString()]);
    let finished = false;
    const second = migrateDatabase(secondUrl).then((applied) => ((finished = true), applied));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(finished).toBe(false);
    await holder.query('SELECT pg_advisory_unlock($1::bigint)', [key.toString()]);
    expect((await second).length).toBe(Object.keys(migrations).length);
  }, 120_000);
});
