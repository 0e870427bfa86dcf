/**
 * `gatehouse serve` as an operator runs it: SIGTERM with requests in flight (each one is
 * answered, readiness goes 503, one log line per phase, exit 0), `npm start` stopped by a
 * SIGTERM to npm's own pid, and start-up failures as one line naming what to fix.
 */
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PASSWORD, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { logLines, runCli } from './cli-process.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-serve-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const key = () => crypto.randomBytes(32).toString('base64url');

describe('gatehouse serve: SIGTERM', () => {
  it('answers every in-flight request, is not ready while draining, logs each phase and exits 0', async () => {
    // Expensive hashing, so a burst of signups is still in flight when the signal arrives.
    const cli = runCli(['serve'], {
      GATEHOUSE_DATA_DIR: tempDir(),
      GATEHOUSE_SECRET_KEY: key(),
      GATEHOUSE_ARGON2_MEMORY_KIB: '32768',
      GATEHOUSE_ARGON2_ITERATIONS: '3',
      GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '60',
    });
    const url = await cli.listening();
    const keepAlive = new Client(url);
    expect((await keepAlive.get('/readyz')).status).toBe(200);
    const burst = Array.from({ length: 12 }, () =>
      new Client(url).post('/api/auth/signup', { email: uniqueEmail('drain'), password: PASSWORD }),
    );
    // Wait until the server has them (at least one hash is running), then signal.
    await new Promise((r) => setTimeout(r, 300));
    cli.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    // While draining: a request on an open connection gets 503 (or the connection is closed), never ready.
    const during = await keepAlive.get('/readyz').catch(() => null);
    if (during) expect(during.status).toBe(503);
    const answers = await Promise.all(burst);
    expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
    expect(await cli.exited).toBe(0);
    const phases = logLines(cli.stdout(), /^shutdown \d\/3/).map((l) => String(l.msg).slice(0, 12));
    expect(phases).toEqual(['shutdown 1/3', 'shutdown 2/3', 'shutdown 3/3']);
    // The count the drain started from. On a loaded machine the burst may still be in the
    // accepted connections rather than past onRequest when the signal lands (count 0); either
    // way every one of the 12 was answered 201 above, which is what the drain promises.
    expect(logLines(cli.stdout(), /^shutdown 1\/3/)[0]!.inFlight).toBeGreaterThanOrEqual(0);
    // The listener is gone.
    const port = Number(new URL(url).port);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  }, 120_000);

  it('the grace period bounds the drain: connections still open after it are cut, and the exit is still 0', async () => {
    const cli = runCli(['serve'], {
      GATEHOUSE_DATA_DIR: tempDir(),
      GATEHOUSE_SECRET_KEY: key(),
      GATEHOUSE_ARGON2_MEMORY_KIB: '65536',
      GATEHOUSE_ARGON2_ITERATIONS: '4',
      GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '0',
    });
    const url = await cli.listening();
    const burst = Array.from({ length: 12 }, () =>
      new Client(url).post('/api/auth/signup', { email: uniqueEmail('cut'), password: PASSWORD }).catch(() => null),
    );
    await new Promise((r) => setTimeout(r, 300));
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    await Promise.all(burst);
    expect(logLines(cli.stdout(), /^shutdown 2\/3: grace period over/)).toHaveLength(1);
  }, 120_000);
});

describe('npm start', () => {
  it('runs the server in the foreground: SIGTERM to the npm process stops the server (exit 0), nothing left behind', async () => {
    execFileSync('npm', ['run', '-s', 'build'], { stdio: 'ignore' });
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEHOUSE_') && !k.startsWith('npm_')));
    const npm = spawn('npm', ['start', '--ignore-scripts'], {
      env: { ...clean, HOST: '127.0.0.1', PORT: '0', GATEHOUSE_DATA_DIR: tempDir(), GATEHOUSE_SECRET_KEY: key() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    const t0 = Date.now();
    while (!/gatehouse listening/.test(out)) {
      if (Date.now() - t0 > 60_000) throw new Error(`npm start did not listen: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const serverPid = Number(/"pid":(\d+)[^\n]*gatehouse listening/.exec(out)![1]);
    npm.kill('SIGTERM');
    await exited;
    // The server process itself is gone (not orphaned behind a shell).
    const t1 = Date.now();
    let alive = true;
    while (alive && Date.now() - t1 < 20_000) {
      try {
        process.kill(serverPid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        alive = false;
      }
    }
    if (alive) process.kill(serverPid, 'SIGKILL');
    expect(alive).toBe(false);
    expect(out).toMatch(/shutdown 3\/3/);
  }, 180_000);
});

describe('start-up failures: one line naming what to fix, no stack, exit code 2', () => {
  it('refuses bad settings, a busy port, an unusable data dir and an unreachable database', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const busyPort = String((busy.address() as net.AddressInfo).port);
    const fileAsDir = path.join(tempDir(), 'a-file');
    fs.writeFileSync(fileAsDir, '');
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ GATEHOUSE_SECERT_KEY: key() }, /unknown variable GATEHOUSE_SECERT_KEY \(did you mean GATEHOUSE_SECRET_KEY\?\)/],
      [{ GATEHOUSE_DATABASE_URL: 'mysql://u@db.example/gatehouse' }, /GATEHOUSE_DATABASE_URL: must be sqlite:PATH or postgres/],
      [{ PORT: '99999' }, /^gatehouse: configuration error: PORT: /],
      [
        { PORT: busyPort, GATEHOUSE_DATA_DIR: tempDir(), GATEHOUSE_SECRET_KEY: key() },
        new RegExp(`cannot listen on 127.0.0.1:${busyPort}: the address is already in use`),
      ],
      [
        { GATEHOUSE_DATA_DIR: path.join(fileAsDir, 'data') },
        /cannot use the data directory .* \(GATEHOUSE_DATA_DIR\): a part of the path is not a directory/,
      ],
      [
        { GATEHOUSE_DATABASE_URL: 'postgres://postgres:hunter2@127.0.0.1:1/gatehouse', GATEHOUSE_SECRET_KEY: key() },
        /cannot reach the database postgres:\/\/postgres:\*\*\*@127.0.0.1:1\/gatehouse \(GATEHOUSE_DATABASE_URL\): connection refused/,
      ],
    ];
    try {
      const results = await Promise.all(
        cases.map(async ([env]) => {
          const cli = runCli(['serve'], env);
          return { code: await cli.exited, stderr: cli.stderr() };
        }),
      );
      results.forEach(({ code, stderr }, i) => {
        const lines = stderr.split('\n').filter((l) => l.startsWith('gatehouse'));
        expect(lines, stderr).toHaveLength(1);
        expect(lines[0]).toMatch(cases[i]![1]);
        expect(stderr).not.toMatch(/\n\s+at /);
        expect(stderr).not.toContain('hunter2');
        expect(code).toBe(2);
      });
    } finally {
      busy.close();
    }
  }, 120_000);
});
