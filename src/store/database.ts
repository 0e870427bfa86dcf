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

/** The schema is older than this version and the instance was told not to migrate it (GATEHOUSE_MIGRATE=off). */
export class SchemaBehindError extends Error {}

export interface DatabaseOptions {
  /** PostgreSQL pool: most connections, connection timeout, statement_timeout (0: none). */
  pool?: { max?: number; connectTimeoutMs?: number; statementTimeoutMs?: number };
  /** 'off': pending migrations are not applied but refused (SchemaBehindError). Default 'on'. */
  migrate?: 'on' | 'off';
  /**
   * Errors of idle pooled connections (the server restarted, the network dropped). Without
   * a listener they would crash the process; the pool replaces the connection by itself.
   */
  onConnectionError?: (err: Error) => void;
}

export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<DatabaseHandle> {
  const handle = connect(url, options);
  // Kysely looks for its migration tables in every schema unless told which one: with
  // PostgreSQL, pin them to the connection's schema (search_path), so several deployments
  // (or test runs) in one database, each in its own schema, never see each other's.
  try {
    const schema = await schemaOf(handle);
    if (options.migrate === 'off') {
      const pending = await pendingMigrations(handle.db, schema);
      if (pending.length > 0) {
        throw new SchemaBehindError(
          `the database schema is behind (${pending.length} migration(s) pending, from ${pending[0]}): run \`gatehouse migrate\`, or unset GATEHOUSE_MIGRATE=off`,
        );
      }
    } else {
      await migrate(handle.db, schema);
    }
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/**
 * Applies pending migrations (`gatehouse migrate`); returns the names applied. On
 * PostgreSQL, Kysely's migrator holds a session-level advisory lock while it runs, so
 * instances and this command starting at once apply each migration exactly once.
 */
export async function migrateDatabase(url: string, options: DatabaseOptions = {}): Promise<string[]> {
  const handle = connect(url, options);
  try {
    return await migrate(handle.db, await schemaOf(handle));
  } finally {
    await handle.close();
  }
}

function connect(url: string, options: DatabaseOptions): DatabaseHandle {
  return url.startsWith('postgres://') || url.startsWith('postgresql://') ? openPostgres(url, options) : openSqlite(url);
}

async function schemaOf(handle: DatabaseHandle): Promise<string | undefined> {
  return handle.kind === 'postgres'
    ? ((await handle.pool.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? undefined)
    : undefined;
}

async function pendingMigrations(db: Kysely<Database>, migrationTableSchema?: string): Promise<string[]> {
  const migrator = new Migrator({ db, provider, ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
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
  const { max = 10, connectTimeoutMs = 5_000, statementTimeoutMs = 30_000 } = options.pool ?? {};
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: connectTimeoutMs,
    // A statement stuck behind a lock or a sick server fails instead of holding the request.
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
  });
  pool.on('error', (err) => options.onConnectionError?.(err));
  // The pool listens only to idle connections: one checked out (a transaction between two
  // statements) that loses its server would emit an unhandled 'error' and end the process.
  // Its statements fail (503) and the pool drops it on release.
  pool.on('connect', (client) => client.on('error', (err) => options.onConnectionError?.(err)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { kind: 'postgres', db, pool, close: () => db.destroy() };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

async function migrate(db: Kysely<Database>, migrationTableSchema?: string): Promise<string[]> {
  const migrator = new Migrator({ db, provider, ...(migrationTableSchema ? { migrationTableSchema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
