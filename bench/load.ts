/**
 * A bounded mixed load on two instances over PostgreSQL + Redis (`npm run bench:load`; not
 * part of `npm test`). It starts a throw-away PostgreSQL cluster and redis-server of its own
 * (test/helpers/throwaway.ts, loopback only), runs `gatehouse migrate` once, then two
 * `gatehouse serve` processes with GATEHOUSE_MIGRATE=off — the commands of docs/deploy.md.
 *
 * Virtual users, spread over both instances, loop for LOAD_SECONDS (default 120):
 *   - a login with password + TOTP when one of their accounts may log in again (a TOTP step
 *     is single-use, so each account logs in at most once per 30 s step);
 *   - otherwise, with a session they hold: protected reads (GET /api/account, GET
 *     /api/account/transactions) and now and then a transfer (POST /api/transfers).
 * Printed: throughput, p50/p99 latency (all and per kind), error rate (5xx, network errors,
 * unexpected statuses), and acknowledged transfers found afterwards (writes lost must be 0).
 *
 * LOAD_SECONDS, LOAD_USERS (virtual users, default 16), LOAD_ACCOUNTS (default 160).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { totpCodeAt } from '../src/services/totp.js';
import { Client } from '../test/helpers/http-client.js';
import { freePort, throwawayPostgres, throwawayRedis } from '../test/helpers/throwaway.js';

const SECONDS = Number(process.env.LOAD_SECONDS ?? 120);
const USERS = Number(process.env.LOAD_USERS ?? 16);
const ACCOUNTS = Number(process.env.LOAD_ACCOUNTS ?? 160);
const PASSWORD = 'violet-kettle-29-harbour';

type Kind = 'login' | 'mfa_verify' | 'read' | 'transfer';
interface Sample {
  kind: Kind;
  ms: number;
  status: number;
}

let addressCounter = 0;
/** A fresh documentation-range address per login, reported by the trusted proxy (us). */
const address = () => `198.18.${Math.floor(addressCounter / 250) % 250}.${(addressCounter++ % 250) + 1}`;

/** `gatehouse serve` on a free port; resolves once /healthz answers (logs are at warn: no start line). */
async function startInstance(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_'))), ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`instance exited ${child.exitCode}`);
    if (Date.now() - t0 > 60_000) throw new Error('instance did not start');
    const up = await new Client(url).get('/healthz').then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) return { url, child };
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Account {
  email: string;
  secret: string;
  /** Epoch ms from which its next TOTP step is open. */
  nextLoginAt: number;
}

async function createAccount(base: string): Promise<Account> {
  const email = `load-${crypto.randomBytes(6).toString('hex')}@example.test`;
  const client = new Client(base, { 'x-forwarded-for': address() });
  const signup = await client.post('/api/auth/signup', { email, password: PASSWORD });
  if (signup.status !== 201) throw new Error(`signup ${signup.status} ${signup.text}`);
  const setup = await client.post('/api/mfa/totp/setup');
  const secret = setup.body.secret as string;
  const confirm = await client.post('/api/mfa/totp/confirm', { code: totpCodeAt(secret, Date.now()) });
  if (confirm.status !== 200) throw new Error(`confirm ${confirm.status} ${confirm.text}`);
  // The confirming step is used: the next login needs the next one.
  return { email, secret, nextLoginAt: (Math.floor(Date.now() / 30_000) + 1) * 30_000 };
}

const pct = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

async function main(): Promise<void> {
  console.log(`load: ${SECONDS} s, ${USERS} virtual users, ${ACCOUNTS} accounts, two instances on PostgreSQL + Redis`);
  const pg = await throwawayPostgres();
  const redis = await throwawayRedis();
  const env = {
    HOST: '127.0.0.1',
    PORT: '0',
    GATEHOUSE_DATABASE_URL: pg.url,
    GATEHOUSE_REDIS_URL: redis.url,
    GATEHOUSE_SECRET_KEY: crypto.randomBytes(32).toString('base64url'),
    GATEHOUSE_TRUST_PROXY: '127.0.0.1',
    GATEHOUSE_LOG_LEVEL: 'warn',
    GATEHOUSE_MIGRATE: 'off',
    GATEHOUSE_DATA_DIR: `/tmp/gatehouse-load-${process.pid}`,
  };
  const instances: ChildProcess[] = [];
  try {
    execFileSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const started = await Promise.all([startInstance(env), startInstance(env)]);
    instances.push(...started.map((s) => s.child));
    const bases = started.map((s) => s.url);

    const t0 = Date.now();
    const accounts: Account[] = [];
    for (let i = 0; i < ACCOUNTS; i += 8) {
      accounts.push(
        ...(await Promise.all(Array.from({ length: Math.min(8, ACCOUNTS - i) }, (_, j) => createAccount(bases[(i + j) % 2]!)))),
      );
    }
    console.log(`setup: ${accounts.length} accounts with TOTP in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const samples: Sample[] = [];
    let networkErrors = 0;
    const acknowledged: Array<{ id: string; email: string }> = [];
    const timed = async (kind: Kind, run: () => Promise<{ status: number }>) => {
      const t = performance.now();
      try {
        const r = await run();
        samples.push({ kind, ms: performance.now() - t, status: r.status });
        return r;
      } catch {
        networkErrors++;
        return null;
      }
    };

    const end = Date.now() + SECONDS * 1000;
    const runUser = async (u: number) => {
      const base = bases[u % 2]!;
      const mine = accounts.filter((_, i) => i % USERS === u);
      let session: { client: Client; email: string } | null = null;
      while (Date.now() < end) {
        const due = mine.find((a) => a.nextLoginAt <= Date.now());
        if (due || !session) {
          const account = due ?? mine.reduce((a, b) => (a.nextLoginAt < b.nextLoginAt ? a : b));
          if (!due) {
            await new Promise((r) => setTimeout(r, Math.min(account.nextLoginAt - Date.now(), end - Date.now())));
            continue;
          }
          const client = new Client(base, { 'x-forwarded-for': address() });
          const login = await timed('login', () => client.post('/api/auth/login', { email: account.email, password: PASSWORD }));
          account.nextLoginAt = (Math.floor(Date.now() / 30_000) + 1) * 30_000;
          if (login?.status !== 202) continue;
          const verify = await timed('mfa_verify', () =>
            client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) }),
          );
          if (verify?.status === 200) session = { client, email: account.email };
          if (!session) continue;
        }
        for (let i = 0; i < 4; i++) {
          await timed('read', () => session!.client.get(i % 2 ? '/api/account' : '/api/account/transactions'));
        }
        const transfer = await timed('transfer', () =>
          session!.client.post('/api/transfers', { to: 'load-counterparty', amountCents: 1 + Math.floor(Math.random() * 5000) }),
        );
        if (transfer?.status === 201)
          acknowledged.push({ id: (transfer as unknown as { body: { id: string } }).body.id, email: session.email });
      }
    };
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: USERS }, (_, u) => runUser(u)));
    const elapsed = (performance.now() - startedAt) / 1000;

    // Writes lost: every acknowledged transfer must be in the database.
    const check = new (await import('pg')).default.Client({ connectionString: pg.url });
    await check.connect();
    const { rows } = await check.query<{ id: string }>('SELECT id FROM demo_transactions');
    await check.end();
    const stored = new Set(rows.map((r) => r.id));
    const lost = acknowledged.filter((a) => !stored.has(a.id)).length;

    const expected: Record<Kind, number[]> = { login: [202], mfa_verify: [200], read: [200], transfer: [201] };
    const errors = samples.filter((s) => !expected[s.kind].includes(s.status)).length + networkErrors;
    const all = samples.map((s) => s.ms).sort((a, b) => a - b);
    console.log(
      `requests: ${samples.length + networkErrors} in ${elapsed.toFixed(1)} s = ${(samples.length / elapsed).toFixed(1)} requests/s`,
    );
    console.log(`latency all: p50 ${pct(all, 0.5).toFixed(1)} ms, p99 ${pct(all, 0.99).toFixed(1)} ms`);
    for (const kind of ['login', 'mfa_verify', 'read', 'transfer'] as Kind[]) {
      const mine = samples.filter((s) => s.kind === kind);
      const ms = mine.map((s) => s.ms).sort((a, b) => a - b);
      const statuses = Object.entries(
        mine.reduce<Record<number, number>>((acc, s) => ((acc[s.status] = (acc[s.status] ?? 0) + 1), acc), {}),
      )
        .map(([s, n]) => `${s}×${n}`)
        .join(' ');
      console.log(
        `  ${kind.padEnd(10)} n=${String(mine.length).padStart(6)}  p50 ${pct(ms, 0.5).toFixed(1)} ms  p99 ${pct(ms, 0.99).toFixed(1)} ms  [${statuses}]`,
      );
    }
    console.log(
      `errors: ${errors} (${((100 * errors) / Math.max(1, samples.length + networkErrors)).toFixed(3)} %), network errors ${networkErrors}`,
    );
    console.log(`transfers acknowledged: ${acknowledged.length}, found afterwards: ${acknowledged.length - lost}, lost: ${lost}`);
  } finally {
    for (const child of instances) child.kill('SIGTERM');
    await Promise.all(instances.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    await redis.stop();
    await pg.stop();
  }
}

await main();
