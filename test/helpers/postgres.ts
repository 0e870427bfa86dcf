/** The shared PostgreSQL (and Redis) at 127.0.0.1 for tests, and throw-away schemas in it. */
import crypto from 'node:crypto';
import pg from 'pg';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = 'redis://127.0.0.1:6379';

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A schema of its own in the shared test database (`url` selects it), dropped by `drop()`. */
export async function pgSchema(label = 'test') {
  const schema = `gh_${label}_${crypto.randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE SCHEMA ${schema}`);
  const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    schema,
    url,
    drop: () => adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`),
  };
}
