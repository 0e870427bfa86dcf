/**
 * Throw-away dependency servers for fault tests: a PostgreSQL cluster of the installed
 * server (initdb/pg_ctl as user postgres, own port and socket dir) and a redis-server on
 * its own port. Each can be killed and started again on the same port and data; cleanup
 * ends them by PID. Loopback only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface ThrowawayRedis {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server without persistence on its own port. */
export async function throwawayRedis(): Promise<ThrowawayRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor(() => accepts(port), `redis on ${port}`);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
    child = null;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, kill, start, stop: kill };
}

export interface ThrowawayPostgres {
  url: string;
  /** SIGKILL of the postmaster: connections drop at once, as in a crash. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const version = fs.readdirSync(root).sort().at(-1);
  if (!version) throw new Error('no PostgreSQL installed under /usr/lib/postgresql');
  return path.join(root, version, 'bin', name);
}

/** Runs a command as the postgres user (the cluster files must be theirs). */
function asPostgres(cmd: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'ignore' });
  else execFileSync(cmd, args, { stdio: 'ignore' });
}

/** A fresh PostgreSQL cluster (trust auth) on its own port and socket dir. */
export async function throwawayPostgres(): Promise<ThrowawayPostgres> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pg-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sock');
  fs.mkdirSync(sockets);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres', dir]);
  asPostgres(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1 -c fsync=on`;
  const start = async () => {
    // After a SIGKILL the old backends may take a moment to notice and release shared
    // memory: a start refused for that is tried again, for a bounded time.
    for (let attempt = 1; ; attempt++) {
      try {
        asPostgres(pgBin('pg_ctl'), ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-t', '120', '-w', 'start']);
        break;
      } catch (err) {
        if (attempt >= 10) {
          const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8').slice(-2_000) : '';
          throw new Error(`postgres did not start: ${String(err)}\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    await waitFor(() => accepts(port), `postgres on ${port}`);
  };
  const postmasterPid = () => Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const kill = async () => {
    if (!fs.existsSync(path.join(data, 'postmaster.pid'))) return;
    const pid = postmasterPid();
    process.kill(pid, 'SIGKILL');
    // Its backends notice the postmaster is gone and exit; the pid file stays (a crash).
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'postmaster exit');
  };
  const stop = async () => {
    try {
      asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
    } catch {
      /* not running */
    }
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kill,
    start,
    async stop() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
