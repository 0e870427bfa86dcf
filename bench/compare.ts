/**
 * Before/after in one run: `npx tsx bench/compare.ts --before DIR [--rounds R] [--duration S]`.
 * DIR is another checkout (with its own node_modules and `bench/targets/gatehouse.ts`).
 * Both servers run side by side, pinned to the same core, and every measurement
 * alternates between them round by round (the order flips each round), so drift on a
 * shared machine hits both alike. Prints JSON: medians per side and after/before ratios.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  argon2Rate,
  canPin,
  CORES,
  createAccounts,
  LOAD_CPUS,
  load,
  median,
  mfaLogins,
  passwordLogins,
  progress,
  round,
  ROOT,
  startTarget,
  type Load,
  type Target,
} from './lib.js';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const BEFORE = option('before');
if (!BEFORE) throw new Error('usage: compare.ts --before DIR [--rounds R] [--duration S]');
const ROUNDS = Number(option('rounds') ?? 3);
const DURATION = Number(option('duration') ?? 4);
const MFA_PER_ROUND = Number(option('mfa') ?? 30);

async function main(): Promise<void> {
  if (canPin) spawnSync('taskset', ['-cp', LOAD_CPUS, String(process.pid)]);
  const sides = { before: path.resolve(BEFORE!), after: ROOT };
  const dirs: string[] = [];
  const env = (label: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-compare-${label}-`));
    dirs.push(dir);
    return { GATEHOUSE_DATA_DIR: dir, GATEHOUSE_SECRET_KEY: 'bench-key-000000000000000000000000000000000', GATEHOUSE_WORKERS: '1' };
  };
  const fastify = await startTarget('bench/targets/bare-fastify.ts', {}, { pinned: true });
  const servers = {
    before: await startTarget('bench/targets/gatehouse.ts', env('before'), { pinned: true, root: sides.before }),
    after: await startTarget('bench/targets/gatehouse.ts', env('after'), { pinned: true, root: sides.after }),
  };
  progress('creating accounts');
  const accounts = {
    before: await createAccounts(servers.before.url, 'before', MFA_PER_ROUND * ROUNDS),
    after: await createAccounts(servers.after.url, 'after', MFA_PER_ROUND * ROUNDS),
  };
  const get = (url: string, cookie?: string, duration = DURATION, server?: Target) =>
    load(url, { connections: 100, duration, headers: cookie ? { cookie } : {} }, server);
  for (const side of ['before', 'after'] as const)
    for (const route of ['/api/account', '/api/account/transactions']) await get(servers[side].url + route, accounts[side].cookie, 3);
  await get(`${fastify.url}/api/account`, undefined, 2);

  type Side = 'before' | 'after';
  const results: Record<string, Record<Side, Load[]>> = {};
  const argon: Array<{ perSecond: number; cpuMs: number }> = [];
  const record = (name: string, side: Side, value: Load) => {
    results[name] ??= { before: [], after: [] };
    results[name][side].push(value);
  };
  const fastifyLoads: Load[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order: Side[] = r % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    fastifyLoads.push(await get(`${fastify.url}/api/account`, undefined, DURATION, fastify));
    for (const side of order)
      record('GET /api/account', side, await get(`${servers[side].url}/api/account`, accounts[side].cookie, DURATION, servers[side]));
    for (const side of order)
      record(
        'GET /api/account/transactions',
        side,
        await get(`${servers[side].url}/api/account/transactions`, accounts[side].cookie, DURATION, servers[side]),
      );
    argon.push(argon2Rate(DURATION));
    for (const side of order)
      record('password login', side, await passwordLogins(servers[side].url, accounts[side].plainEmail, 4, DURATION, servers[side]));
    for (const side of order)
      record(
        'full MFA login',
        side,
        await mfaLogins(servers[side].url, accounts[side].mfa.slice(r * MFA_PER_ROUND, (r + 1) * MFA_PER_ROUND), 4, servers[side]),
      );
    argon.push(argon2Rate(DURATION));
    progress(`round ${r + 1}/${ROUNDS} done`);
  }
  await fastify.stop();
  await servers.before.stop();
  await servers.after.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });

  const argonRate = median(argon.map((a) => a.perSecond));
  const argonCpuMs = median(argon.map((a) => a.cpuMs));
  const fastifyRps = median(fastifyLoads.map((l) => l.rps));
  const fastifyCpuMs = median(fastifyLoads.map((l) => l.cpuMs!));
  const rows = Object.entries(results).map(([measure, { before, after }]) => {
    const login = measure.includes('login');
    const side = (loads: Load[]) => {
      const rps = median(loads.map((l) => l.rps));
      const cpuMs = median(loads.map((l) => l.cpuMs!));
      return {
        perSecond: round(rps, 1),
        p50: median(loads.map((l) => l.p50)),
        p99: median(loads.map((l) => l.p99)),
        cpuMs: round(cpuMs, 4),
        vsBaseline: round(rps / (login ? argonRate : fastifyRps), 3),
        costVsBaseline: round((login ? argonCpuMs : fastifyCpuMs) / cpuMs, 3),
        rounds: loads,
      };
    };
    return {
      measure,
      baseline: login ? 'raw argon2id verification, one core' : 'bare Fastify route',
      before: side(before),
      after: side(after),
      afterOverBefore: round(median(after.map((l, i) => l.rps / before[i]!.rps)), 2),
      cpuBeforeOverAfter: round(median(after.map((l, i) => before[i]!.cpuMs! / l.cpuMs!)), 2),
    };
  });
  const result = {
    machine: {
      cores: CORES, // counted before this process pinned itself to the load CPUs
      cpu: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      pinned: canPin,
      loadAverage: os.loadavg().map((l) => round(l)),
    },
    settings: {
      rounds: ROUNDS,
      durationSeconds: DURATION,
      connections: 100,
      loginConnections: 4,
      before: sides.before,
      after: sides.after,
    },
    baselines: {
      bareFastifyRps: round(fastifyRps, 1),
      bareFastifyCpuMs: round(fastifyCpuMs, 4),
      argon2PerSecond: round(argonRate, 1),
      argon2CpuMs: round(argonCpuMs, 3),
    },
    rows,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
