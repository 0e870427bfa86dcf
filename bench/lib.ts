/** Shared pieces of the benchmarks (`bench/run.ts`, `bench/compare.ts`): child-process servers, autocannon loads, accounts, logins, the argon2 rate. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { Pool, request } from 'undici';
import { totpCodeAt } from '../src/services/totp.js';

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const CORES = os.availableParallelism();
export const ARGON2 = { memoryKiB: 19456, iterations: 2 };
export const PASSWORD = 'bench-mark-ferret-5150';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const canPin = CORES >= 2 && spawnSync('taskset', ['-V']).status === 0;
export const SERVER_CPU = '0';
export const LOAD_CPUS = `1-${CORES - 1}`;
const ALL_CPUS = `0-${CORES - 1}`;

export const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`);
export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
export const round = (value: number, digits = 2) => Number(value.toFixed(digits));

export interface Target {
  url: string;
  /** CPU seconds (user + system) the server process has used so far; NaN where /proc is missing. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const TICKS_PER_SECOND = 100;

/** utime + stime of a process from /proc (Linux), in seconds; NaN elsewhere. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** Servers still running: stopped when this process exits, also after an error mid-run. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/** A server script in a child process; resolves once it prints "READY <url>". */
export async function startTarget(
  script: string,
  env: Record<string, string> = {},
  /** `root`: the checkout whose script runs (another one: `bench/compare.ts`). */
  options: { pinned: boolean; nodeArgs?: string[]; root?: string },
): Promise<Target> {
  const root = options.root ?? ROOT;
  const node = [...(options.nodeArgs ?? []), '--import', 'tsx', path.join(root, script)];
  // Unpinned servers get every core back: a child inherits this process's CPU mask, and
  // the benchmark pins itself to the load CPUs (so "unpinned" workers shared one core).
  const cpus = options.pinned ? SERVER_CPU : ALL_CPUS;
  const [command, argv] = canPin ? ['taskset', ['-c', cpus, process.execPath, ...node]] : [process.execPath, node];
  const child: ChildProcess = spawn(command as string, argv as string[], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
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
    // taskset execs node: the pid is the server's.
    cpuSeconds: () => processCpuSeconds(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  /**
   * Server CPU milliseconds per request (or login), when the server's process was given.
   * Unlike req/s, it hardly moves when other work shares the core, so cost ratios hold
   * on a busy machine: on an otherwise idle core, throughput ratios equal them.
   */
  cpuMs?: number;
}

/** Measures `run` (which reports how many operations it completed) with the server's CPU time around it. */
async function withCpu<T extends { count: number }>(server: Target | undefined, run: () => Promise<T>): Promise<T & { cpuMs?: number }> {
  const before = server?.cpuSeconds() ?? Number.NaN;
  const result = await run();
  const used = (server?.cpuSeconds() ?? Number.NaN) - before;
  return Number.isFinite(used) && result.count > 0 ? { ...result, cpuMs: (used * 1000) / result.count } : result;
}

export async function load(
  url: string,
  options: Partial<autocannon.Options> & { connections: number; duration: number },
  server?: Target,
): Promise<Load> {
  const measured = await withCpu(server, async () => {
    const result = await autocannon({ url, ...options });
    return { result, count: result.requests.total };
  });
  const { result } = measured;
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0)
    throw new Error(`${options.method ?? 'GET'} ${url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  const out: Load = { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
  if (measured.cpuMs !== undefined) out.cpuMs = round(measured.cpuMs, 4);
  return out;
}

/** A small HTTP client for set-up and the MFA logins (undici pool, JSON, the session cookie). */
export function client(base: string, connections: number) {
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

export function expectStatus(res: { status: number; body: unknown }, status: number, what: string) {
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

export interface Accounts {
  plainEmail: string;
  /** A full session cookie of the plain account. */
  cookie: string;
  mfa: Array<{ email: string; secret: string }>;
}

export async function createAccounts(base: string, label: string, mfaCount: number): Promise<Accounts> {
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
      // Confirmed with the previous step's code, so the login's current code is unused. On
      // a loaded machine the request may reach the server two steps later (too old): again.
      let confirm = { status: 0, body: null as unknown };
      for (let attempt = 0; attempt < 3 && confirm.status !== 200; attempt++) {
        confirm = await http.call('POST', '/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now() - 30_000) }, s.cookie);
      }
      expectStatus(confirm, 200, 'totp confirm');
      mfa.push({ email, secret: setup.body.secret });
    },
  );
  await http.close();
  return { plainEmail, cookie: signup.cookie!, mfa };
}

/** Password logins/s: autocannon posting the plain account's credentials. */
export function passwordLogins(base: string, email: string, connections: number, duration: number, server?: Target): Promise<Load> {
  return load(
    `${base}/api/auth/login`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
      connections,
      duration,
    },
    server,
  );
}

/**
 * Latency at a fixed request rate (open loop): request i is due at start + i / rate, spread
 * over `connections` kept-alive connections, and its latency counts from when it was due,
 * so a server that falls behind is charged for the wait (no coordinated omission).
 * autocannon's own pacing sends each connection's share in a burst at the start of every
 * second, which measures the burst, not the rate.
 */
export async function pacedLoad(
  url: string,
  options: { connections: number; duration: number; rate: number; headers?: Record<string, string> },
): Promise<Load> {
  const { origin, pathname, search } = new URL(url);
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1 });
  // The first second opens the connections and warms up; it is not recorded.
  const warmup = Math.round(options.rate);
  const total = warmup + Math.round(options.rate * options.duration);
  const latencies: number[] = [];
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  const send = async (i: number, due: number) => {
    try {
      const res = await pool.request({ method: 'GET', path: pathname + search, headers: options.headers ?? {} });
      await res.body.dump();
      if (res.statusCode !== 200) failed++;
    } catch {
      failed++;
    }
    if (i >= warmup) latencies.push(performance.now() - due);
  };
  for (let sent = 0; sent < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * options.rate) + 1);
    for (; sent < due; sent++) inFlight.push(send(sent, start + (sent * 1000) / options.rate));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - start) / 1000 - 1;
  await pool.close();
  if (failed > 0) throw new Error(`GET ${url}: ${failed} of ${total} paced requests failed`);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { rps: latencies.length / seconds, p50: round(at(0.5), 2), p99: round(at(0.99), 2) };
}

/** The headers of one response that a server chooses (not the transport's: date, length, connection). */
export async function responseHeaders(url: string, cookie: string): Promise<Record<string, string>> {
  const res = await request(url, { headers: { cookie } });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
  const transport = new Set(['date', 'connection', 'keep-alive', 'content-length', 'content-type', 'transfer-encoding', 'set-cookie']);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers))
    if (!transport.has(name) && value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/** Full MFA logins/s: password (202) then TOTP (200), each account once. */
export async function mfaLogins(base: string, accounts: Accounts['mfa'], connections: number, server?: Target): Promise<Load> {
  const http = client(base, connections);
  const latencies: number[] = [];
  const start = performance.now();
  const cpu = await withCpu(server, async () => ({
    count: accounts.length,
    done: await inParallel(accounts, connections, async (account) => {
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
    }),
  }));
  const seconds = (performance.now() - start) / 1000;
  await http.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  const out: Load = { rps: accounts.length / seconds, p50: round(at(0.5)), p99: round(at(0.99)) };
  if (cpu.cpuMs !== undefined) out.cpuMs = round(cpu.cpuMs, 3);
  return out;
}

/** Sequential argon2id verifications on the server's core: per second, and CPU milliseconds each. */
export function argon2Rate(seconds: number): { perSecond: number; cpuMs: number } {
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
  return JSON.parse(run.stdout) as { perSecond: number; cpuMs: number };
}

export async function postgresSchema(): Promise<{ url: string; drop(): Promise<void> } | { skipped: string }> {
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

export const summary = (loads: Load[]) => {
  const cpu = loads.map((l) => l.cpuMs).filter((c): c is number => c !== undefined);
  return {
    rps: round(median(loads.map((l) => l.rps)), 1),
    p50: median(loads.map((l) => l.p50)),
    p99: median(loads.map((l) => l.p99)),
    ...(cpu.length ? { cpuMsPerRequest: round(median(cpu), 4) } : {}),
    runs: loads.length,
  };
};
