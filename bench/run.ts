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
 *   single core   bare node:http, bare Fastify (also sending the headers of a Gatehouse
 *                 response: the ceiling of a route that sends them), GET /api/account and the demo bank's
 *                 GET /api/account/transactions (SQLite), autocannon at 100 connections,
 *                 and p50/p99 of bare Fastify and GET /api/account paced at half the
 *                 route's throughput (100 connections, fixed overall rate, `pacedLoad`);
 *                 the raw argon2id rate (sequential verifications, one core, same cost,
 *                 measured before and after the logins), password logins/s, full MFA
 *                 logins/s (password + TOTP, one fresh account per login)
 *   postgres      the same routes and logins on PostgreSQL (127.0.0.1:5432, db `test`, a
 *                 throw-away schema) against bare Fastify and argon2 measured in the same
 *                 phase; skipped when PostgreSQL does not answer
 *   workers       one worker vs N (`--workers`, default: the core count): GET /api/account
 *                 and password logins, SQLite and PostgreSQL, the servers free to use every
 *                 core (the load generator runs on the cores but one, so it competes with them)
 *
 * Options: --quick, --duration S (per measurement), --rounds R, --workers N,
 * --profile DIR (writes the single-core Gatehouse server's CPU profile to DIR).
 * Closed-loop latency percentiles come from autocannon, at 1 ms resolution; paced ones are
 * measured per request.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ARGON2,
  argon2Rate,
  canPin,
  CORES,
  createAccounts,
  LOAD_CPUS,
  load,
  median,
  mfaLogins,
  pacedLoad,
  responseHeaders,
  passwordLogins,
  postgresSchema,
  progress,
  round,
  startTarget,
  summary,
  type Accounts,
  type Load,
  type Target,
} from './lib.js';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};

const QUICK = flag('quick') || process.env.BENCH_QUICK === '1';
const DURATION = Number(option('duration') ?? (QUICK ? 2 : 4));
const ROUNDS = Number(option('rounds') ?? (QUICK ? 1 : 3));
const WORKERS = Number(option('workers') ?? Math.max(2, CORES));
const PROFILE_DIR = option('profile');
const MFA_LOGINS = QUICK ? 24 : 80;
const CONNECTIONS = 100;

/**
 * Password logins and full MFA logins against `server`, with the raw argon2 rate measured
 * before, between and after them on the same core; each login figure is compared with the
 * mean of the two measurements around it, costs with the median CPU per verification.
 */
async function loginsAgainstArgon2(server: Target, accounts: Accounts) {
  const before = argon2Rate(DURATION);
  const loginLoad = await passwordLogins(server.url, accounts.plainEmail, 4, DURATION, server);
  const between = argon2Rate(DURATION);
  const mfaLoad = await mfaLogins(server.url, accounts.mfa, 4, server);
  const after = argon2Rate(DURATION);
  const cpuMs = median([before.cpuMs, between.cpuMs, after.cpuMs]);
  const versus = (load: Load, around: number) => ({ throughput: round(load.rps / around, 3), cost: round(cpuMs / load.cpuMs!, 3) });
  return {
    loginLoad,
    mfaLoad,
    argon: {
      perSecond: (before.perSecond + 2 * between.perSecond + after.perSecond) / 4,
      before: before.perSecond,
      between: between.perSecond,
      after: after.perSecond,
      cpuMs,
    },
    ratios: {
      passwordLogin: versus(loginLoad, (before.perSecond + between.perSecond) / 2),
      mfaLogin: versus(mfaLoad, (between.perSecond + after.perSecond) / 2),
    },
  };
}

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
  const get = (url: string, cookie?: string, server?: Target) =>
    load(url, { connections: CONNECTIONS, duration: DURATION, headers: cookie ? { cookie } : {} }, server);
  // Long enough for the JIT to settle on a CPU shared with others.
  const warm = (url: string, cookie?: string) =>
    load(url, { connections: CONNECTIONS, duration: QUICK ? 2 : 3, headers: cookie ? { cookie } : {} });

  // --- single core -----------------------------------------------------------------------
  progress(`single core (server pinned: ${canPin}), ${ROUNDS} round(s) of ${DURATION} s`);
  const bareNode = await startTarget('bench/targets/bare-node.ts', {}, { pinned: true });
  const bareFastify = await startTarget('bench/targets/bare-fastify.ts', {}, { pinned: true });
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`] : [];
  const sqlite = await startTarget('bench/targets/gatehouse.ts', { ...gatehouseEnv, GATEHOUSE_WORKERS: '1' }, { pinned: true, nodeArgs });
  progress('creating accounts');
  const accounts = await createAccounts(sqlite.url, 'one', MFA_LOGINS);
  const withHeaders = await startTarget(
    'bench/targets/bare-fastify.ts',
    { BENCH_RESPONSE_HEADERS: JSON.stringify(await responseHeaders(`${sqlite.url}/api/account`, accounts.cookie)) },
    { pinned: true },
  );
  const targets: Record<
    'bareNode' | 'bareFastify' | 'bareFastifyWithHeaders' | 'account' | 'transactions',
    { url: string; cookie?: string; server: Target }
  > = {
    bareNode: { url: `${bareNode.url}/api/account`, server: bareNode },
    bareFastify: { url: `${bareFastify.url}/api/account`, server: bareFastify },
    bareFastifyWithHeaders: { url: `${withHeaders.url}/api/account`, server: withHeaders },
    account: { url: `${sqlite.url}/api/account`, cookie: accounts.cookie, server: sqlite },
    transactions: { url: `${sqlite.url}/api/account/transactions`, cookie: accounts.cookie, server: sqlite },
  };
  for (const t of Object.values(targets)) await warm(t.url, t.cookie);
  const loads: Record<keyof typeof targets, Load[]> = {
    bareNode: [],
    bareFastify: [],
    bareFastifyWithHeaders: [],
    account: [],
    transactions: [],
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, t] of Object.entries(targets) as Array<[keyof typeof targets, (typeof targets)['account']]>) {
      loads[name].push(await get(t.url, t.cookie, t.server));
      progress(`round ${r + 1} ${name}: ${Math.round(loads[name].at(-1)!.rps)} req/s`);
    }
  }
  // Latency under load the server keeps up with: 100 connections at a fixed overall rate
  // (open loop, `pacedLoad`) of half the route's measured throughput. Closed-loop at 100
  // connections (above) measures queueing: there even bare Fastify's p99 is several ms.
  const paced = Math.max(100, Math.round(median(loads.account.map((l) => l.rps)) / 2));
  const pacedLoads: Record<'bareFastify' | 'account', Load[]> = { bareFastify: [], account: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of ['bareFastify', 'account'] as const) {
      const t = targets[name];
      pacedLoads[name].push(
        await pacedLoad(t.url, {
          connections: CONNECTIONS,
          duration: DURATION,
          rate: paced,
          headers: t.cookie ? { cookie: t.cookie } : {},
        }),
      );
      progress(`round ${r + 1} ${name} at ${paced} req/s: p99 ${pacedLoads[name].at(-1)!.p99} ms`);
    }
  }
  const perRound = (name: keyof typeof targets) => median(loads[name].map((l, i) => l.rps / loads.bareFastify[i]!.rps));
  // The same ratio from CPU time per request (bare Fastify's over the route's): what req/s would show on an idle core.
  const costPerRound = (name: keyof typeof targets) => median(loads[name].map((l, i) => loads.bareFastify[i]!.cpuMs! / l.cpuMs!));

  progress('argon2 rate, password logins, MFA logins');
  const logins = await loginsAgainstArgon2(sqlite, accounts);
  const { loginLoad, mfaLoad, argon: argonRates } = logins;
  await sqlite.stop();

  // One worker vs N, each server free to use every core (measured after the one-core phases).
  type WorkersResult = { account: Load; passwordLogins: Load };
  const workersOn = async (env: Record<string, string>, plainEmail: string, cookie: string) => {
    const byCount: Record<number, WorkersResult> = {};
    for (const n of [1, WORKERS]) {
      const server = await startTarget('bench/targets/gatehouse.ts', { ...env, GATEHOUSE_WORKERS: String(n) }, { pinned: false });
      await warm(`${server.url}/api/account`, cookie);
      byCount[n] = {
        account: await get(`${server.url}/api/account`, cookie),
        passwordLogins: await passwordLogins(server.url, plainEmail, 4 * n, DURATION),
      };
      progress(`${n} worker(s): ${Math.round(byCount[n]!.account.rps)} req/s, ${byCount[n]!.passwordLogins.rps.toFixed(1)} logins/s`);
      await server.stop();
    }
    return { one: byCount[1]!, many: byCount[WORKERS]! };
  };

  // --- postgres --------------------------------------------------------------------------
  // The same measures on PostgreSQL. Its server processes are not pinned: they take their
  // share of both cores, so this server's core is not its own (the cost ratios count
  // Gatehouse's process only).
  let postgres: Record<string, unknown>;
  let pgWorkers: Awaited<ReturnType<typeof workersOn>> | undefined;
  const schema = await postgresSchema();
  if ('skipped' in schema) {
    postgres = { skipped: schema.skipped };
  } else {
    progress('postgres');
    const pgEnv = { ...gatehouseEnv, GATEHOUSE_DATABASE_URL: schema.url };
    const pgServer = await startTarget('bench/targets/gatehouse.ts', { ...pgEnv, GATEHOUSE_WORKERS: '1' }, { pinned: true });
    try {
      const pgAccounts = await createAccounts(pgServer.url, 'pg', MFA_LOGINS);
      const pgRoutes = { account: `${pgServer.url}/api/account`, transactions: `${pgServer.url}/api/account/transactions` };
      for (const url of Object.values(pgRoutes)) await warm(url, pgAccounts.cookie);
      const pgLoads: Record<'bareFastify' | 'account' | 'transactions', Load[]> = { bareFastify: [], account: [], transactions: [] };
      for (let r = 0; r < ROUNDS; r++) {
        pgLoads.bareFastify.push(await get(targets.bareFastify.url, undefined, bareFastify));
        pgLoads.account.push(await get(pgRoutes.account, pgAccounts.cookie, pgServer));
        pgLoads.transactions.push(await get(pgRoutes.transactions, pgAccounts.cookie, pgServer));
        progress(`postgres round ${r + 1}: ${Math.round(pgLoads.account.at(-1)!.rps)} req/s account`);
      }
      const vsFastify = (name: 'account' | 'transactions') => ({
        throughput: round(median(pgLoads[name].map((l, i) => l.rps / pgLoads.bareFastify[i]!.rps)), 3),
        // Gatehouse's own CPU only: PostgreSQL's work runs in its own processes.
        cost: round(median(pgLoads[name].map((l, i) => pgLoads.bareFastify[i]!.cpuMs! / l.cpuMs!)), 3),
      });
      const pgLogins = await loginsAgainstArgon2(pgServer, pgAccounts);
      postgres = {
        bareFastify: summary(pgLoads.bareFastify),
        account: summary(pgLoads.account),
        transactions: summary(pgLoads.transactions),
        passwordLogin: {
          loginsPerSecond: round(pgLogins.loginLoad.rps, 1),
          p50: pgLogins.loginLoad.p50,
          p99: pgLogins.loginLoad.p99,
          cpuMsPerLogin: pgLogins.loginLoad.cpuMs,
        },
        mfaLogin: {
          loginsPerSecond: round(pgLogins.mfaLoad.rps, 1),
          p50: pgLogins.mfaLoad.p50,
          p99: pgLogins.mfaLoad.p99,
          cpuMsPerLogin: pgLogins.mfaLoad.cpuMs,
        },
        ratios: {
          accountVsBareFastify: vsFastify('account'),
          transactionsVsBareFastify: vsFastify('transactions'),
          passwordLoginVsArgon2: pgLogins.ratios.passwordLogin,
          mfaLoginVsArgon2: pgLogins.ratios.mfaLogin,
        },
      };
      await pgServer.stop();
      progress(`workers: 1 vs ${WORKERS} (servers not pinned), PostgreSQL`);
      pgWorkers = await workersOn(pgEnv, pgAccounts.plainEmail, pgAccounts.cookie);
    } finally {
      await pgServer.stop(); // again when the phase failed half-way: stopping twice is harmless
      await schema.drop();
    }
  }
  await bareNode.stop();
  await bareFastify.stop();
  await withHeaders.stop();

  // --- workers ---------------------------------------------------------------------------
  progress(`workers: 1 vs ${WORKERS} (servers not pinned), SQLite`);
  const workers = await workersOn(gatehouseEnv, accounts.plainEmail, accounts.cookie);
  fs.rmSync(dataDir, { recursive: true, force: true });

  const account = summary(loads.account);
  const scaling = (w: { one: WorkersResult; many: WorkersResult }, oneCore?: Load) => ({
    one: w.one,
    many: w.many,
    accountScaling: round(w.many.account.rps / w.one.account.rps, 3),
    loginScaling: round(w.many.passwordLogins.rps / w.one.passwordLogins.rps, 3),
    // One worker already hashes on every core (argon2 runs off the event loop, one hash per
    // core at once), so the workers' gain for logins shows against the one-core server.
    ...(oneCore ? { loginScalingVsOneCore: round(w.many.passwordLogins.rps / oneCore.rps, 3) } : {}),
  });
  const latencies = (l: Load[]) => ({ p50: median(l.map((x) => x.p50)), p99: median(l.map((x) => x.p99)) });
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
      // Bare Fastify sending the headers a Gatehouse response carries: what any route that sends them can reach.
      bareFastifyWithHeaders: summary(loads.bareFastifyWithHeaders),
      account: { route: 'GET /api/account', database: 'sqlite', ...account },
      transactions: { route: 'GET /api/account/transactions', database: 'sqlite', ...summary(loads.transactions) },
      // p50/p99 at half the route's throughput (same rate for both), 100 connections.
      atHalfLoad: {
        requestsPerSecond: paced,
        bareFastify: latencies(pacedLoads.bareFastify),
        account: latencies(pacedLoads.account),
      },
      argon2: {
        verificationsPerSecond: round(argonRates.perSecond, 1),
        before: round(argonRates.before, 1),
        between: round(argonRates.between, 1),
        after: round(argonRates.after, 1),
        cpuMsPerVerification: round(argonRates.cpuMs, 3),
      },
      passwordLogin: {
        loginsPerSecond: round(loginLoad.rps, 1),
        p50: loginLoad.p50,
        p99: loginLoad.p99,
        cpuMsPerLogin: loginLoad.cpuMs,
        connections: 4,
      },
      mfaLogin: {
        loginsPerSecond: round(mfaLoad.rps, 1),
        p50: mfaLoad.p50,
        p99: mfaLoad.p99,
        cpuMsPerLogin: mfaLoad.cpuMs,
        logins: accounts.mfa.length,
        connections: 4,
      },
    },
    postgres,
    ratios: {
      bareNodeVsBareFastify: round(perRound('bareNode'), 3),
      bareFastifyWithHeadersVsBareFastify: round(perRound('bareFastifyWithHeaders'), 3),
      accountVsBareFastify: round(perRound('account'), 3),
      transactionsVsBareFastify: round(perRound('transactions'), 3),
      passwordLoginVsArgon2: logins.ratios.passwordLogin.throughput,
      mfaLoginVsArgon2: logins.ratios.mfaLogin.throughput,
      // From CPU time per operation (robust on a shared machine): argon2's per verification over the route's per request or login.
      cost: {
        bareNodeVsBareFastify: round(costPerRound('bareNode'), 3),
        bareFastifyWithHeadersVsBareFastify: round(costPerRound('bareFastifyWithHeaders'), 3),
        accountVsBareFastify: round(costPerRound('account'), 3),
        transactionsVsBareFastify: round(costPerRound('transactions'), 3),
        passwordLoginVsArgon2: logins.ratios.passwordLogin.cost,
        mfaLoginVsArgon2: logins.ratios.mfaLogin.cost,
      },
    },
    workers: {
      n: WORKERS,
      ...scaling(workers, loginLoad),
      ...(pgWorkers ? { postgres: scaling(pgWorkers) } : {}),
    },
    // Each goal by throughput in this run and, where it applies, by CPU cost (what an idle core would show).
    goals: {
      accountAtLeast075xFastify: { throughput: perRound('account') >= 0.75, cost: costPerRound('account') >= 0.75 },
      mfaLoginAtLeast090xArgon2: { throughput: logins.ratios.mfaLogin.throughput >= 0.9, cost: logins.ratios.mfaLogin.cost >= 0.9 },
      accountP99AtMost2ms: { saturated: account.p99 <= 2, atHalfLoad: latencies(pacedLoads.account).p99 <= 2 },
      loginsScaleAtLeast18x: {
        vsOneWorker: workers.many.passwordLogins.rps / workers.one.passwordLogins.rps >= 1.8,
        vsOneCore: workers.many.passwordLogins.rps / loginLoad.rps >= 1.8,
      },
    },

    seconds: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
