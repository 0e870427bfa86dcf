/**
 * Starts a real Gatehouse server on 127.0.0.1 with a fresh temporary data dir (SQLite),
 * for HTTP tests. Settings are the contract's environment variables. Also: a server in a
 * child process (for crash and log tests), and two servers sharing one database.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { pgSchema } from './postgres.js';

export interface TestServer {
  url: string;
  dataDir: string;
  server: RunningServer;
  close(): Promise<void>;
}

/** Settings that are not environment variables (the model-based search injects a clock). */
export interface TestServerOptions {
  now?: () => number;
}

export async function startTestServer(env: Record<string, string> = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = env.GATEHOUSE_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-'));
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    ...env,
    GATEHOUSE_DATA_DIR: dataDir,
  });
  if (options.now) config.now = options.now;
  const server = await startServer(config);
  const url = server.url;
  return {
    url,
    dataDir,
    server,
    async close() {
      await server.close();
      if (!env.GATEHOUSE_DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Settings that keep HTTP tests fast: cheap argon2. */
export const FAST_ENV = { GATEHOUSE_ARGON2_MEMORY_KIB: '64', GATEHOUSE_ARGON2_ITERATIONS: '1' };

/** `startTestServer` with cheap argon2 (`FAST_ENV`) under `env`. */
export function startFastServer(env: Record<string, string> = {}, options: TestServerOptions = {}): Promise<TestServer> {
  return startTestServer({ ...FAST_ENV, ...env }, options);
}

/**
 * Two servers sharing a throw-away PostgreSQL schema, started one after the other (the
 * first migrates). `cleanup` closes both and drops the schema (so does a failed start).
 */
export async function startPostgresPair(label: string, env: Record<string, string>, options: TestServerOptions = {}) {
  const schema = await pgSchema(label);
  // Instances of one deployment share its key (a second key would be refused at start).
  const full = { GATEHOUSE_SECRET_KEY: crypto.randomBytes(32).toString('base64url'), ...env, GATEHOUSE_DATABASE_URL: schema.url };
  const started: TestServer[] = [];
  try {
    started.push(await startTestServer(full, options));
    started.push(await startTestServer(full, options));
  } catch (err) {
    for (const s of started) await s.close();
    await schema.drop();
    throw err;
  }
  const servers = started as [TestServer, TestServer];
  return {
    servers,
    schema,
    async cleanup() {
      for (const s of servers) await s.close();
      await schema.drop();
    },
  };
}

/**
 * A server in a child process (`npx tsx`), in its own process group so SIGKILL takes it all.
 * `script` prints "READY <url>" on stderr once listening.
 */
export async function spawnServer(env: Record<string, string>, script = 'test/abuse/fixtures/child-server.ts') {
  const { spawn } = await import('node:child_process');
  const child = spawn('npx', ['tsx', script], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', GATEHOUSE_LOG_LEVEL: 'info', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child server did not start: ${stderr}`)), 45_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /READY (\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`child server exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    url,
    pid: child.pid!,
    logs: () => stdout,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
      await exited;
    },
  };
}

/**
 * A server with per-role MFA policy (GATEHOUSE_ROLES), a 7-day enrolment grace and sessions
 * that outlive it, on a clock the test moves (`clock.offsetMs`); started before the suite's
 * tests, closed after them.
 */
export function serverWithRoles(
  roles: Record<string, unknown>,
  env: Record<string, string> = {},
): { readonly server: TestServer; readonly clock: { offsetMs: number } } {
  const clock = { offsetMs: 0 };
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(
      {
        ...FAST_ENV,
        GATEHOUSE_ROLES: JSON.stringify(roles),
        GATEHOUSE_ENROLMENT_GRACE_DAYS: '7',
        GATEHOUSE_SESSION_TTL: String(30 * 86_400),
        GATEHOUSE_SESSION_IDLE_TTL: String(30 * 86_400),
        ...env,
      },
      { now: () => Date.now() + clock.offsetMs },
    );
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    clock,
    get server() {
      if (!server) throw new Error('the server starts in beforeAll');
      return server;
    },
  };
}
