/**
 * Opens the database named by GATEHOUSE_DATABASE_URL (`sqlite:PATH` or `postgres://…`)
 * and runs pending migrations. Services only see the Kysely instance, so the dialect is
 * a configuration choice.
 */
import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  type MigrationProvider,
  type SqliteDatabase as KyselySqlite,
} from 'kysely';
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
  // In WAL mode, NORMAL loses nothing when the process dies (SIGKILL, a crash: the WAL is
  // in the OS's hands at each commit); only a power cut or kernel crash can undo the last
  // commits before a checkpoint. test/abuse/crash.test.ts holds it to the first promise.
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
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

/** Prepared statements kept per SQL text (at most this many). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * The connection as Kysely sees it, with its prepared statements kept: better-sqlite3
 * prepares anew on every `prepare`, which cost more than running the query. Safe because
 * Kysely runs a statement to completion (`all`/`run`) before the next one; a statement
 * prepared before a schema change is re-prepared by SQLite itself.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): KyselySqlite {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (!statement) {
        statement = sqlite.prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

/**
 * One hot, fixed read (the gate's session lookup), run without Kysely's per-call query
 * building: `query` is compiled once by Kysely (its parameters are placeholders), and
 * each call binds new ones. SQLite: a kept statement, run directly when no transaction
 * is open on the connection, otherwise through Kysely, which waits for the transaction
 * to end (a direct read would see its uncommitted writes). PostgreSQL: a named
 * statement, prepared once per pooled connection.
 */
export function hotRead<Row>(
  handle: DatabaseHandle,
  name: string,
  query: { compile(): CompiledQuery },
): (...parameters: unknown[]) => Promise<Row[]> {
  const { sql } = query.compile();
  // Named functions, so CPU profiles show the read by name (V8 otherwise guesses one).
  if (handle.kind === 'sqlite') {
    let statement: SqliteDatabase.Statement | undefined;
    return async function hotReadSqlite(...parameters) {
      if (handle.sqlite.inTransaction) return (await handle.db.executeQuery<Row>(CompiledQuery.raw(sql, parameters))).rows;
      statement ??= handle.sqlite.prepare(sql);
      return statement.all(...parameters) as Row[];
    };
  }
  const { pool } = handle;
  return async function hotReadPostgres(...parameters) {
    try {
      return (await pool.query({ name: `gatehouse_${name}`, text: sql, values: parameters })).rows as Row[];
    } catch (err) {
      // "cached plan must not change result type": another instance migrated the table
      // under this connection's prepared statement. Unnamed, the query is planned anew.
      if ((err as { code?: string }).code !== '0A000') throw err;
      return (await pool.query(sql, parameters)).rows as Row[];
    }
  };
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
