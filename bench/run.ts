/**
 * Gatehouse benchmarks (`npm run bench`, `npm run bench -- --quick`). Prints one JSON
 * document on stdout (progress on stderr). Every figure that is compared is measured in
 * the same run, interleaved round by round, and the ratios are medians of per-round
 * ratios, so numbers from a busy or a different machine still compare.
 *
 * Servers run in child processes. With two or more cores, the one-core phases pin the
 * server to CPU 0 and this process (the load, autocannon) to the others; the workers phase
 * leaves the servers free to use every core (the load still takes its share).
 *
 *   single core   bare node:http, bare Fastify, GET /api/account and the demo bank's
 *                 GET /api/account/transactions (SQLite), autocannon at 100 connections;
 *                 the raw argon2id rate (sequential verifications, one core, same cost,
 *                 measured before and after the logins), password logins/s, full MFA
 *                 logins/s (password + TOTP, one fresh account per login)
 *   postgres      GET /api/account on PostgreSQL (127.0.0.1:5432, db `test`, a throw-away
 *                 schema) against bare Fastify; skipped when PostgreSQL does not answer
 *   workers       one worker vs N (`--workers`, default: the core count): GET /api/account
 *                 and password logins on SQLite
 *
 * Options: --quick, --duration S (per measurement), --rounds R, --workers N,
 * --profile DIR (writes the single-core Gatehouse server's CPU profile to DIR).
 * Latency percentiles come from autocannon, at 1 ms resolution.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { Pool } from 'undici';
import { totpCodeAt } from '../src/services/totp.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};

const QUICK = flag('quick') || process.env.BENCH_QUICK === '1';
const DURATION = Number(option('duration') ?? (QUICK ? 2 : 4));
const ROUNDS = Number(option('rounds') ?? (QUICK ? 1 : 3));
const CORES = os.availableParallelism();
const WORKERS = Number(option('workers') ?? Math.max(2, CORES));
const PROFILE_DIR = option('profile');
const MFA_LOGINS = QUICK ? 24 : 80;
const CONNECTIONS = 100;
const ARGON2 = { memoryKiB: 19456, iterations: 2 };
const PASSWORD = 'bench-mark-ferret-5150';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const canPin = CORES >= 2 && spawnSync('taskset', ['-V']).status === 0;
const SERVER_CPU = '0';
const LOAD_CPUS = `1-${CORES - 1}`;

const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

interface Target {
  url: string;
  stop(): Promise<void>;
}

/** A server script in a child process; resolves once it prints "READY <url>". */
async function startTarget(
  script: string,
  env: Record<string, string> = {},
  options: { pinned: boolean; nodeArgs?: string[] },
): Promise<Target> {
  const node = [...(options.nodeArgs ?? []), '--import', 'tsx', path.join(ROOT, script)];
  const [command, argv] = options.pinned && canPin ? ['taskset', ['-c', SERVER_CPU, process.execPath, ...node]] : [process.execPath, node];
  const child: ChildProcess = spawn(command as string, argv as string[], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${stderr}`)), 60_000);
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const match = /READY (\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
}

async function load(url: string, options: Partial<autocannon.Options> & { connections: number; duration: number }): Promise<Load> {
  const result = await autocannon({ url, ...options });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0)
    throw new Error(`${options.method ?? 'GET'} ${url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

/** A small HTTP client for set-up and the MFA logins (undici pool, JSON, the session cookie). */
function client(base: string, connections: number) {
  const pool = new Pool(base, { connections });
  async function call(method: string, p: string, body?: unknown, cookie?: string) {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await pool.request({
      method: method as 'POST',
      path: p,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    const setCookie = res.headers['set-cookie'];
    const session = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
      .map((c) => c.split(';')[0]!)
      .find((c) => c.startsWith('gatehouse_session='));
    return { status: res.statusCode, body: text ? JSON.parse(text) : null, cookie: session };
  }
  return { call, close: () => pool.close() };
}

function expectStatus(res: { status: number; body: unknown }, status: number, what: string) {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

interface Accounts {
  plainEmail: string;
  /** A full session cookie of the plain account. */
  cookie: string;
  mfa: Array<{ email: string; secret: string }>;
}

async function createAccounts(base: string, label: string, mfaCount: number): Promise<Accounts> {
  const http = client(base, 4);
  const plainEmail = `bench-${label}-plain@example.com`;
  const signup = await http.call('POST', '/api/auth/signup', { email: plainEmail, password: PASSWORD });
  expectStatus(signup, 201, 'signup');
  const mfa: Accounts['mfa'] = [];
  await inParallel(
    Array.from({ length: mfaCount }, (_, i) => i),
    4,
    async (i) => {
      const email = `bench-${label}-mfa-${i}@example.com`;
      const s = await http.call('POST', '/api/auth/signup', { email, password: PASSWORD });
      expectStatus(s, 201, 'signup');
      const setup = await http.call('POST', '/api/mfa/totp/setup', undefined, s.cookie);
      expectStatus(setup, 200, 'totp setup');
      // Confirmed with the previous step's code, so the login's current code is unused.
      const confirm = await http.call(
        'POST',
        '/api/mfa/totp/confirm',
        { code: totpCodeAt(setup.body.secret, Date.now() - 30_000) },
        s.cookie,
      );
      expectStatus(confirm, 200, 'totp confirm');
      mfa.push({ email, secret: setup.body.secret });
    },
  );
  await http.close();
  return { plainEmail, cookie: signup.cookie!, mfa };
}

/** Password logins/s: autocannon posting the plain account's credentials. */
function passwordLogins(base: string, email: string, connections: number): Promise<Load> {
  return load(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
    connections,
    duration: DURATION,
  });
}

/** Full MFA logins/s: password (202) then TOTP (200), each account once. */
async function mfaLogins(base: string, accounts: Accounts['mfa'], connections: number): Promise<Load> {
  const http = client(base, connections);
  const latencies: number[] = [];
  const start = performance.now();
  await inParallel(accounts, connections, async (account) => {
    const t0 = performance.now();
    const login = await http.call('POST', '/api/auth/login', { email: account.email, password: PASSWORD });
    expectStatus(login, 202, 'login (mfa)');
    const verify = await http.call(
      'POST',
      '/api/auth/mfa/verify',
      { method: 'totp', code: totpCodeAt(account.secret, Date.now()) },
      login.cookie,
    );
    expectStatus(verify, 200, 'mfa verify');
    latencies.push(performance.now() - t0);
  });
  const seconds = (performance.now() - start) / 1000;
  await http.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { rps: accounts.length / seconds, p50: round(at(0.5)), p99: round(at(0.99)) };
}

function argon2Rate(seconds: number): number {
  const script = [
    '--import',
    'tsx',
    path.join(ROOT, 'bench/targets/argon2-rate.ts'),
    String(ARGON2.memoryKiB),
    String(ARGON2.iterations),
    String(seconds),
  ];
  const [command, argv] = canPin ? ['taskset', ['-c', SERVER_CPU, process.execPath, ...script]] : [process.execPath, script];
  const run = spawnSync(command as string, argv as string[], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`argon2 rate: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { perSecond: number }).perSecond;
}

async function postgresSchema(): Promise<{ url: string; drop(): Promise<void> } | { skipped: string }> {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (err) {
    return { skipped: `PostgreSQL at ${PG_URL} does not answer: ${(err as Error).message}` };
  }
  const schema = `gh_bench_${Date.now().toString(36)}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return {
    url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

const summary = (loads: Load[]) => ({
  rps: round(median(loads.map((l) => l.rps)), 1),
  p50: median(loads.map((l) => l.p50)),
  p99: median(loads.map((l) => l.p99)),
  runs: loads.length,
});

async function main(): Promise<void> {
  const started = performance.now();
  if (canPin) spawnSync('taskset', ['-cp', LOAD_CPUS, String(process.pid)]);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  const gatehouseEnv = {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_SECRET_KEY: 'bench-key-000000000000000000000000000000000',
    GATEHOUSE_ARGON2_MEMORY_KIB: String(ARGON2.memoryKiB),
    GATEHOUSE_ARGON2_ITERATIONS: String(ARGON2.iterations),
  };
  const get = (url: string, cookie?: string) =>
    load(url, { connections: CONNECTIONS, duration: DURATION, headers: cookie ? { cookie } : {} });
  const warm = (url: string, cookie?: string) => load(url, { connections: CONNECTIONS, duration: 1, headers: cookie ? { cookie } : {} });

  // --- single core -----------------------------------------------------------------------
  progress(`single core (server pinned: ${canPin}), ${ROUNDS} round(s) of ${DURATION} s`);
  const bareNode = await startTarget('bench/targets/bare-node.ts', {}, { pinned: true });
  const bareFastify = await startTarget('bench/targets/bare-fastify.ts', {}, { pinned: true });
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`] : [];
  const sqlite = await startTarget('bench/targets/gatehouse.ts', { ...gatehouseEnv, GATEHOUSE_WORKERS: '1' }, { pinned: true, nodeArgs });
  progress('creating accounts');
  const accounts = await createAccounts(sqlite.url, 'one', MFA_LOGINS);
  const targets = {
    bareNode: { url: `${bareNode.url}/api/account` },
    bareFastify: { url: `${bareFastify.url}/api/account` },
    account: { url: `${sqlite.url}/api/account`, cookie: accounts.cookie },
    transactions: { url: `${sqlite.url}/api/account/transactions`, cookie: accounts.cookie },
  };
  for (const t of Object.values(targets)) await warm(t.url, 'cookie' in t ? t.cookie : undefined);
  const loads: Record<keyof typeof targets, Load[]> = { bareNode: [], bareFastify: [], account: [], transactions: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, t] of Object.entries(targets) as Array<[keyof typeof targets, { url: string; cookie?: string }]>) {
      loads[name].push(await get(t.url, t.cookie));
      progress(`round ${r + 1} ${name}: ${Math.round(loads[name].at(-1)!.rps)} req/s`);
    }
  }
  const perRound = (name: keyof typeof targets) => median(loads[name].map((l, i) => l.rps / loads.bareFastify[i]!.rps));

  progress('argon2 rate, password logins, MFA logins');
  const argonBefore = argon2Rate(DURATION);
  const loginLoad = await passwordLogins(sqlite.url, accounts.plainEmail, 4);
  const mfaLoad = await mfaLogins(sqlite.url, accounts.mfa, 4);
  const argonAfter = argon2Rate(DURATION);
  const argon = (argonBefore + argonAfter) / 2;
  await sqlite.stop();

  // --- postgres --------------------------------------------------------------------------
  let postgres: Record<string, unknown>;
  const schema = await postgresSchema();
  if ('skipped' in schema) {
    postgres = { skipped: schema.skipped };
  } else {
    progress('postgres');
    const pgServer = await startTarget(
      'bench/targets/gatehouse.ts',
      { ...gatehouseEnv, GATEHOUSE_DATABASE_URL: schema.url, GATEHOUSE_WORKERS: '1' },
      { pinned: true },
    );
    try {
      const pgAccounts = await createAccounts(pgServer.url, 'pg', 0);
      await warm(`${pgServer.url}/api/account`, pgAccounts.cookie);
      const fastifyLoads: Load[] = [];
      const pgLoads: Load[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        fastifyLoads.push(await get(targets.bareFastify.url));
        pgLoads.push(await get(`${pgServer.url}/api/account`, pgAccounts.cookie));
      }
      postgres = {
        bareFastify: summary(fastifyLoads),
        account: summary(pgLoads),
        accountVsBareFastify: round(median(pgLoads.map((l, i) => l.rps / fastifyLoads[i]!.rps)), 3),
      };
    } finally {
      await pgServer.stop();
      await schema.drop();
    }
  }
  await bareNode.stop();
  await bareFastify.stop();

  // --- workers ---------------------------------------------------------------------------
  progress(`workers: 1 vs ${WORKERS} (servers not pinned)`);
  const workers: Record<string, { account: Load; passwordLogins: Load }> = {};
  for (const n of [1, WORKERS]) {
    const server = await startTarget('bench/targets/gatehouse.ts', { ...gatehouseEnv, GATEHOUSE_WORKERS: String(n) }, { pinned: false });
    await warm(`${server.url}/api/account`, accounts.cookie);
    workers[n] = {
      account: await get(`${server.url}/api/account`, accounts.cookie),
      passwordLogins: await passwordLogins(server.url, accounts.plainEmail, 4 * n),
    };
    progress(`${n} worker(s): ${Math.round(workers[n]!.account.rps)} req/s, ${workers[n]!.passwordLogins.rps.toFixed(1)} logins/s`);
    await server.stop();
  }
  fs.rmSync(dataDir, { recursive: true, force: true });

  const account = summary(loads.account);
  const result = {
    machine: {
      cores: CORES,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      pinned: canPin,
      loadAverage: os.loadavg().map((l) => round(l)),
    },
    settings: {
      quick: QUICK,
      durationSeconds: DURATION,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      argon2: { ...ARGON2, parallelism: 1 },
      logLevel: 'info (default)',
    },
    singleCore: {
      bareNode: summary(loads.bareNode),
      bareFastify: summary(loads.bareFastify),
      account: { route: 'GET /api/account', database: 'sqlite', ...account },
      transactions: { route: 'GET /api/account/transactions', database: 'sqlite', ...summary(loads.transactions) },
      argon2: { verificationsPerSecond: round(argon, 1), before: round(argonBefore, 1), after: round(argonAfter, 1) },
      passwordLogin: { loginsPerSecond: round(loginLoad.rps, 1), p50: loginLoad.p50, p99: loginLoad.p99, connections: 4 },
      mfaLogin: { loginsPerSecond: round(mfaLoad.rps, 1), p50: mfaLoad.p50, p99: mfaLoad.p99, logins: accounts.mfa.length, connections: 4 },
    },
    postgres,
    ratios: {
      bareNodeVsBareFastify: round(perRound('bareNode'), 3),
      accountVsBareFastify: round(perRound('account'), 3),
      transactionsVsBareFastify: round(perRound('transactions'), 3),
      passwordLoginVsArgon2: round(loginLoad.rps / argon, 3),
      mfaLoginVsArgon2: round(mfaLoad.rps / argon, 3),
    },
    workers: {
      n: WORKERS,
      one: { account: workers[1]!.account, passwordLogins: workers[1]!.passwordLogins },
      many: { account: workers[WORKERS]!.account, passwordLogins: workers[WORKERS]!.passwordLogins },
      accountScaling: round(workers[WORKERS]!.account.rps / workers[1]!.account.rps, 3),
      loginScaling: round(workers[WORKERS]!.passwordLogins.rps / workers[1]!.passwordLogins.rps, 3),
    },
    goals: {
      accountAtLeast075xFastify: perRound('account') >= 0.75,
      mfaLoginAtLeast090xArgon2: mfaLoad.rps / argon >= 0.9,
      accountP99AtMost2ms: account.p99 <= 2,
      loginsScaleAtLeast18x: workers[WORKERS]!.passwordLogins.rps / workers[1]!.passwordLogins.rps >= 1.8,
    },
    seconds: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
