/**
 * `--workers N` / GATEHOUSE_WORKERS: the server on N processes (node:cluster) sharing one
 * listening port. Nothing that decides security lives in a worker's memory: sessions,
 * attempt counters and lockouts are rows in the shared database (or keys in Redis), so a
 * revocation or a lockout is seen by every worker on its next read, and a guess cap is
 * one counter whichever worker takes the guess. SQLite in WAL mode is safe for several
 * processes (each waits for the write lock, `busy_timeout`).
 *
 * The primary prepares the data dir once before any worker starts (migrations, a
 * generated secret key, signing keys), so workers never race to create them, then only
 * supervises: it serves nothing itself and replaces a worker that dies unexpectedly.
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { ServerConfig } from '../config.js';
import { serve, type ServingInstance } from './serve.js';
import { buildServer } from './server.js';

/** What `runServer` returns: the server itself with one worker, the supervisor with several. */
export interface ServingHandle {
  url: string;
  /** Worker process ids (empty when the server runs in this process). */
  workerPids(): number[];
  /** The orderly shutdown (serve.ts) of the server, or of every worker. */
  close(reason?: string): Promise<void>;
}

interface ListeningMessage {
  gatehouse: 'listening';
  url: string;
}

const isListening = (message: unknown): message is ListeningMessage =>
  typeof message === 'object' && message !== null && (message as ListeningMessage).gatehouse === 'listening';

/** The worker count named by `--workers N` (or `--workers=N`) in `argv`, or undefined. */
export function workersFlag(argv: string[]): number | undefined {
  const at = argv.findIndex((a) => a === '--workers' || a.startsWith('--workers='));
  if (at < 0) return undefined;
  const raw = argv[at]!.includes('=') ? argv[at]!.slice('--workers='.length) : argv[at + 1];
  return parseWorkers(raw ?? '', '--workers');
}

/** `auto` (one per core) or an integer from 1 to 256. */
export function parseWorkers(raw: string, name: string): number {
  if (raw.trim().toLowerCase() === 'auto') return os.availableParallelism();
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 256)
    throw new RangeError(`${name} must be "auto" or an integer from 1 to 256, got "${raw}"`);
  return value;
}

/**
 * Serves `config` on `workers` processes. Call it from the entry point in every process:
 * in the primary it prepares the data dir and forks the workers (which re-run the entry
 * point), in a worker it starts the server and reports its URL to the primary.
 */
export async function runServer(config: ServerConfig, workers: number): Promise<ServingHandle> {
  if (cluster.isWorker) {
    const instance = await serve(withHashShare(config, workers));
    process.send?.({ gatehouse: 'listening', url: instance.server.url } satisfies ListeningMessage);
    return instanceHandle(instance);
  }
  if (workers <= 1) return instanceHandle(await serve(config));
  return supervise(config, workers);
}

/**
 * Password hashes one worker runs at once: its share of the cores. Each worker hashing
 * on every core would put `workers` × `cores` hashes on the machine at once, and the
 * logins would be slower together than one process alone.
 */
export function hashSlotsPerWorker(workers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers));
}

/** `config` with the worker's share of hash slots, unless `argon2.concurrency` was set explicitly. */
export function withHashShare(config: ServerConfig, workers: number): ServerConfig {
  if (config.argon2.concurrency !== undefined) return config;
  // A copy with every property as it is (publicUrl is a getter).
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(config)) as ServerConfig;
  copy.argon2 = { ...config.argon2, concurrency: hashSlotsPerWorker(workers) };
  return copy;
}

function instanceHandle(instance: ServingInstance): ServingHandle {
  return { url: instance.server.url, workerPids: () => [], close: (reason = 'close') => instance.shutdown(reason) };
}

async function supervise(config: ServerConfig, count: number): Promise<ServingHandle> {
  // Migrations, the generated secret key and the demo bank's tables, once, before any worker.
  const prepared = await buildServer(config);
  await prepared.app.close();
  const logger = prepared.gatehouse.logger;

  let closing = false;
  const workers = new Set<Worker>();
  const fork = () =>
    new Promise<string>((resolve, reject) => {
      const worker = cluster.fork();
      workers.add(worker);
      const onMessage = (message: unknown) => {
        if (!isListening(message)) return;
        worker.off('message', onMessage);
        worker.off('exit', onEarlyExit);
        resolve(message.url);
      };
      const onEarlyExit = (code: number | null) =>
        reject(new Error(`gatehouse worker ${worker.process.pid} exited with ${code} before listening`));
      worker.on('message', onMessage);
      worker.once('exit', onEarlyExit);
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        if (closing) return;
        logger.error({ pid: worker.process.pid, code, signal }, 'gatehouse worker died; starting another');
        fork().catch((err) => logger.error({ err }, 'could not replace a gatehouse worker'));
      });
    });

  const urls = await Promise.all(Array.from({ length: count }, fork));
  logger.info({ url: urls[0], workers: count }, 'gatehouse workers listening');
  return {
    url: urls[0]!,
    workerPids: () => [...workers].map((w) => w.process.pid!),
    async close() {
      closing = true;
      await Promise.all(
        [...workers].map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) return resolve();
              worker.once('exit', () => resolve());
              // The worker's own SIGTERM handler (commands/serve.ts) drains, closes and exits.
              worker.process.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
