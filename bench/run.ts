/**
 * Gatehouse benchmarks (`npm run bench`). Starts a real server on a temporary SQLite data
 * dir with the default argon2 cost and measures, in one run:
 *
 *   - argon2id hash time at the configured cost (default m=19456 KiB, t=2, p=1)
 *   - GET /healthz (the baseline: no session lookup)
 *   - GET /api/session with a full session (the gate's per-request work)
 *   - POST /api/auth/login for an account without a second factor
 *   - login + POST /api/auth/mfa/verify (TOTP) for an account with one
 *
 * Each figure is shown next to its ratio against the baseline measured in the same run, so
 * numbers from different machines compare. Client and server share one process, so
 * latencies include the client's own work (it is the same for every row).
 *
 * BENCH_QUICK=1 uses fewer iterations.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server/server.js';
import { PasswordHasher } from '../src/services/passwords.js';
import { totpCodeAt } from '../src/services/totp.js';

const QUICK = process.env.BENCH_QUICK === '1';
const N_GATE = QUICK ? 300 : 2000;
const N_HASH = QUICK ? 5 : 20;
const N_LOGIN = QUICK ? 5 : 20;

interface Stats {
  n: number;
  mean: number;
  p50: number;
  p95: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: samples.length, mean: samples.reduce((a, b) => a + b, 0) / samples.length, p50: at(0.5), p95: at(0.95) };
}

async function time(n: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  const config = loadConfig({ ...process.env, HOST: '127.0.0.1', PORT: '0', GATEHOUSE_LOG_LEVEL: 'silent', GATEHOUSE_DATA_DIR: dataDir });
  const server = await startServer(config);
  const pool = new Pool(server.url, { connections: 1, pipelining: 1 });

  async function call(method: string, p: string, opts: { json?: unknown; cookie?: string } = {}) {
    const headers: Record<string, string> = {};
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.json !== undefined) headers['content-type'] = 'application/json';
    const res = await pool.request({
      method: method as 'GET',
      path: p,
      headers,
      body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
    });
    const text = await res.body.text();
    const setCookie = res.headers['set-cookie'];
    const cookies = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
      .map((c) => c.split(';')[0]!)
      .filter((c) => c.startsWith('gatehouse_session='));
    return { status: res.statusCode, body: text ? JSON.parse(text) : null, cookie: cookies[0] };
  }
  function expectStatus(res: { status: number; body: unknown }, status: number, what: string) {
    if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }

  const password = 'bench-mark-ferret-5150';
  const rows: Array<{ name: string; s: Stats }> = [];

  // argon2id at the configured cost, through Gatehouse's own hasher.
  const hasher = new PasswordHasher(config.argon2);
  await hasher.hash(password); // warm-up
  rows.push({
    name: `argon2id hash (m=${config.argon2.memoryKiB} KiB, t=${config.argon2.iterations}, p=${config.argon2.parallelism})`,
    s: stats(await time(N_HASH, () => hasher.hash(password).then(() => undefined))),
  });

  // Accounts.
  const plainEmail = `bench-plain@example.com`;
  const signup = await call('POST', '/api/auth/signup', { json: { email: plainEmail, password } });
  expectStatus(signup, 201, 'signup');
  const fullCookie = signup.cookie!;
  const mfaAccounts: Array<{ email: string; secret: string }> = [];
  for (let i = 0; i < N_LOGIN; i++) {
    const email = `bench-mfa-${i}@example.com`;
    const s = await call('POST', '/api/auth/signup', { json: { email, password } });
    expectStatus(s, 201, 'signup');
    const setup = await call('POST', '/api/mfa/totp/setup', { cookie: s.cookie });
    expectStatus(setup, 200, 'setup');
    const confirm = await call('POST', '/api/mfa/totp/confirm', {
      cookie: s.cookie,
      json: { code: totpCodeAt(setup.body.secret, Date.now() - 30_000) },
    });
    expectStatus(confirm, 200, 'confirm');
    mfaAccounts.push({ email, secret: setup.body.secret });
  }

  // Baseline and gate: warm up, then interleave in blocks so drift affects both alike.
  for (let i = 0; i < 200; i++) {
    await call('GET', '/healthz');
    await call('GET', '/api/session', { cookie: fullCookie });
  }
  const health: number[] = [];
  const session: number[] = [];
  for (let block = 0; block < 10; block++) {
    health.push(...(await time(N_GATE / 10, async () => expectStatus(await call('GET', '/healthz'), 200, 'healthz'))));
    session.push(
      ...(await time(N_GATE / 10, async () => expectStatus(await call('GET', '/api/session', { cookie: fullCookie }), 200, 'session'))),
    );
  }
  const baseline = stats(health);
  rows.push({ name: 'GET /healthz (baseline)', s: baseline });
  const sessionStats = stats(session);
  rows.push({ name: 'GET /api/session (gate: session lookup)', s: sessionStats });

  // Login without a second factor.
  rows.push({
    name: 'POST /api/auth/login (no MFA) → 200',
    s: stats(
      await time(N_LOGIN, async () =>
        expectStatus(await call('POST', '/api/auth/login', { json: { email: plainEmail, password } }), 200, 'login'),
      ),
    ),
  });

  // Login + verify with TOTP (one account per iteration: each code is single-use).
  const loginPart: number[] = [];
  const verifyPart: number[] = [];
  const both = await time(N_LOGIN, async (i) => {
    const account = mfaAccounts[i]!;
    const t0 = performance.now();
    const l = await call('POST', '/api/auth/login', { json: { email: account.email, password } });
    expectStatus(l, 202, 'login (mfa)');
    const t1 = performance.now();
    const v = await call('POST', '/api/auth/mfa/verify', {
      cookie: l.cookie,
      json: { method: 'totp', code: totpCodeAt(account.secret, Date.now()) },
    });
    expectStatus(v, 200, 'verify');
    const t2 = performance.now();
    loginPart.push(t1 - t0);
    verifyPart.push(t2 - t1);
  });
  rows.push({ name: '  login (MFA account) → 202', s: stats(loginPart) });
  rows.push({ name: '  mfa/verify (TOTP) → 200', s: stats(verifyPart) });
  rows.push({ name: 'login + verify (MFA), total', s: stats(both) });

  await pool.close();
  await server.close();
  fs.rmSync(dataDir, { recursive: true, force: true });

  const fmt = (ms: number) => (ms < 10 ? ms.toFixed(3) : ms.toFixed(1)).padStart(9);
  const ratio = (ms: number) => `${(ms / baseline.p50).toFixed(1)}×`.padStart(9);
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(
    `\nGatehouse benchmark — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${config.databaseUrl.split(':')[0]}`,
  );
  console.log(
    `${'measure'.padEnd(width)}  ${'n'.padStart(5)} ${'p50 ms'.padStart(9)} ${'mean ms'.padStart(9)} ${'p95 ms'.padStart(9)} ${'p50/base'.padStart(9)}`,
  );
  console.log('-'.repeat(width + 46));
  for (const { name, s } of rows)
    console.log(`${name.padEnd(width)}  ${String(s.n).padStart(5)} ${fmt(s.p50)} ${fmt(s.mean)} ${fmt(s.p95)} ${ratio(s.p50)}`);
  const overhead = sessionStats.p50 - baseline.p50;
  console.log(
    `\ngate overhead per request (GET /api/session − GET /healthz, p50): ${overhead.toFixed(3)} ms (${(sessionStats.p50 / baseline.p50).toFixed(2)}× the baseline)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
