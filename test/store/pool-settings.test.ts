/** The PostgreSQL pool follows GATEHOUSE_DATABASE_POOL_MAX / _CONNECT_TIMEOUT / _STATEMENT_TIMEOUT. */
import { afterAll, describe, expect, it } from 'vitest';
import { pgSchema } from '../helpers/postgres.js';
import { FAST_ENV, startTestServer } from '../helpers/server.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('database pool settings', () => {
  it('sizes the pool, bounds connection attempts and ends statements that run too long', async () => {
    const schema = await pgSchema('pool');
    cleanups.push(() => schema.drop());
    const server = await startTestServer({
      ...FAST_ENV,
      GATEHOUSE_DATABASE_URL: schema.url,
      GATEHOUSE_SECRET_KEY: 'pool-settings-test-key-0123456789abcdefghijk',
      GATEHOUSE_DATABASE_POOL_MAX: '3',
      GATEHOUSE_DATABASE_CONNECT_TIMEOUT: '2',
      GATEHOUSE_DATABASE_STATEMENT_TIMEOUT: '1',
    });
    cleanups.push(() => server.close());
    const database = server.server.gatehouse.database;
    if (database.kind !== 'postgres') throw new Error('expected PostgreSQL');
    expect(database.pool.options.max).toBe(3);
    expect(database.pool.options.connectionTimeoutMillis).toBe(2000);
    expect((await database.pool.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('1s');
    await expect(database.pool.query('SELECT pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
  });
});
