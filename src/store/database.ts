/**
 * Opens the database named by GATEHOUSE_DATABASE_URL (`sqlite:PATH` or `postgres://…`)
 * and runs pending migrations. Services only see the Kysely instance, so the dialect is
 * a configuration choice.
 */
import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type DatabaseHandle =
  | { kind: 'sqlite'; db: Kysely<Database>; sqlite: SqliteDatabase.Database; close(): Promise<void> }
  | { kind: 'postgres'; db: Kysely<Database>; pool: pg.Pool; close(): Promise<void> };

/** True when the database answers a trivial query within `timeoutMs`. */
export async function databaseAnswers(handle: DatabaseHandle, timeoutMs = 2_000): Promise<boolean> {
  if (handle.kind === 'sqlite') {
    try {
      handle.sqlite.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const query = handle.pool.query('SELECT 1').then(
    () => true as const,
    () => false as const,
  );
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// PostgreSQL returns bigint (int8) as strings; our bigints are epoch milliseconds and counters.
pg.types.setTypeParser(20, (value) => Number(value));

export interface DatabaseOptions {
  /**
   * Errors of idle pooled connections (the server restarted, the network dropped). Without
   * a listener they would crash the process; the pool replaces the connection by itself.
   */
  onConnectionError?: (err: Error) => void;
}

export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<DatabaseHandle> {
  const handle = url.startsWith('postgres://') || url.startsWith('postgresql://') ? openPostgres(url, options) : openSqlite(url);
  // Kysely looks for its migration tables in every schema unless told which one: with
  // PostgreSQL, pin them to the connection's schema (search_path), so several deployments
  // (or test runs) in one database, each in its own schema, never see each other's.
  const schema =
    handle.kind === 'postgres'
      ? ((await handle.pool.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? undefined)
      : undefined;
  await migrate(handle.db, schema);
  return handle;
}

function openSqlite(url: string): DatabaseHandle {
  const file = url.replace(/^sqlite:/, '');
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  // Several server processes may share one file: wait for the write lock instead of failing.
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { kind: 'sqlite', db, sqlite, close: () => db.destroy() };
}

function openPostgres(url: string, options: DatabaseOptions): DatabaseHandle {
  // A connection attempt that hangs (server gone, network partitioned) fails after 5 s, so
  // the request answers 503 instead of waiting forever.
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 });
  pool.on('error', (err) => options.onConnectionError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { kind: 'postgres', db, pool, close: () => db.destroy() };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

async function migrate(db: Kysely<Database>, migrationTableSchema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider, ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${String(error)}`);
  }
}
