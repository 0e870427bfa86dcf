/**
 * One scenario under load against a Gatehouse server started with `--cpu-prof`, so the
 * profile holds that scenario and little else (`npx tsx bench/profile.ts SCENARIO DIR`):
 *   account     GET /api/account, 100 connections, for --duration seconds (default 8)
 *   mfa-login   password + TOTP logins, 4 at once, --logins accounts (default 120)
 * The server is pinned to CPU 0 as in `npm run bench`. Prints the summary of
 * bench/profile-summary.ts for the load window only (set-up and start-up left out).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARGON2, canPin, createAccounts, LOAD_CPUS, load, mfaLogins, progress, ROOT, startTarget } from './lib.js';

const [scenario, dir] = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
if ((scenario !== 'account' && scenario !== 'mfa-login') || !dir) throw new Error('usage: profile.ts account|mfa-login DIR');
const DURATION = option('duration', 8);
const LOGINS = option('logins', 120);

if (canPin) spawnSync('taskset', ['-cp', LOAD_CPUS, String(process.pid)]);
const out = path.resolve(dir);
fs.mkdirSync(out, { recursive: true });
const before = new Set(fs.readdirSync(out));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-profile-'));
const server = await startTarget(
  'bench/targets/gatehouse.ts',
  {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_SECRET_KEY: 'bench-key-000000000000000000000000000000000',
    GATEHOUSE_ARGON2_MEMORY_KIB: String(ARGON2.memoryKiB),
    GATEHOUSE_ARGON2_ITERATIONS: String(ARGON2.iterations),
    GATEHOUSE_WORKERS: '1',
  },
  { pinned: true, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${out}`] },
);
const accounts = await createAccounts(server.url, 'profile', scenario === 'mfa-login' ? LOGINS : 0);
const url = `${server.url}/api/account`;
// Warm-up (JIT) before the measured window.
await load(url, { connections: 100, duration: 2, headers: { cookie: accounts.cookie } });
const t0 = performance.now();
const result =
  scenario === 'account'
    ? await load(url, { connections: 100, duration: DURATION, headers: { cookie: accounts.cookie } }, server)
    : await mfaLogins(server.url, accounts.mfa, 4, server);
const windowMs = performance.now() - t0;
progress(`${scenario}: ${result.rps.toFixed(1)}/s, ${result.cpuMs} CPU ms each`);
await server.stop();
fs.rmSync(dataDir, { recursive: true, force: true });
const written = fs.readdirSync(out).filter((f) => !before.has(f) && f.endsWith('.cpuprofile'));
// The main thread's profile is the largest (others: worker threads).
const main = written.map((f) => path.join(out, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
const summary = spawnSync(process.execPath, ['--import', 'tsx', 'bench/profile-summary.ts', main, '25', String(Math.round(windowMs))], {
  cwd: ROOT,
  encoding: 'utf8',
});
process.stdout.write(
  JSON.stringify({ scenario, perSecond: result.rps, cpuMs: result.cpuMs, profile: main, ...JSON.parse(summary.stdout) }, null, 2) + '\n',
);
