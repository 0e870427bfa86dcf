/**
 * `gatehouse serve` (what `npm start` runs): one instance in the foreground; SIGTERM and
 * SIGINT shut it down in order (src/server/serve.ts) and exit 0. A start-up failure is
 * one line naming what to fix, never a stack trace, and exit code 2.
 */
import { ConfigError, loadConfig, type ServerConfig } from '../config.js';
import { KeyError } from '../services/keys.js';
import { SchemaBehindError } from '../store/database.js';

const HELP = `Usage: gatehouse serve [--workers N|auto]

Runs the Gatehouse server in the foreground, configured by the environment (the variables
are listed in docs/deploy.md). --workers (or GATEHOUSE_WORKERS): N processes sharing the
port. SIGTERM or SIGINT: stops being ready, lets in-flight requests finish for
GATEHOUSE_SHUTDOWN_GRACE_SECONDS, closes and exits 0.
`;

/** A database URL without its password, for messages. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EADDRNOTAVAIL: 'the address is not available on this machine',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on the device',
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'timed out',
  '28P01': 'password authentication failed',
  '28000': 'not authorised',
  '3D000': 'the database does not exist',
};

function codeOf(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 3) return undefined;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors)) for (const inner of e.errors) if (codeOf(inner, depth + 1)) return codeOf(inner, depth + 1);
  return codeOf(e.cause, depth + 1);
}

/** One line for a failure an operator can fix (settings, a busy port, a directory, the database); null: a bug, print it whole. */
export function describeStartupFailure(err: unknown, config: ServerConfig | null): string | null {
  if (err instanceof ConfigError) return `configuration error: ${err.message}`;
  if (err instanceof KeyError || err instanceof SchemaBehindError) return err.message;
  if (!config || !(err instanceof Error)) return null;
  const code = codeOf(err);
  const reason = (code && REASONS[code]) ?? err.message.split('\n')[0];
  const e = err as Error & { syscall?: string; path?: string; metricsListener?: boolean };
  if (e.syscall === 'listen' || code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL') {
    const [host, port, names] = e.metricsListener
      ? [config.metricsHost, config.metricsPort, 'GATEHOUSE_METRICS_HOST/GATEHOUSE_METRICS_PORT']
      : [config.host, config.port, 'HOST/PORT'];
    return `cannot listen on ${host}:${port}: ${reason} (set ${names}, or stop what holds it)`;
  }
  if ((e.path && e.path.startsWith(config.dataDir)) || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') {
    return `cannot use the data directory ${config.dataDir} (GATEHOUSE_DATA_DIR): ${reason}`;
  }
  if (/^postgres/.test(config.databaseUrl) && code && (code in REASONS || /^(08|28|3D|57P)/.test(code) || /timeout/i.test(err.message))) {
    return `cannot reach the database ${withoutPassword(config.databaseUrl)} (GATEHOUSE_DATABASE_URL): ${reason}`;
  }
  if (/^postgres/.test(config.databaseUrl) && /timeout exceeded when trying to connect|Connection terminated/i.test(err.message)) {
    return `cannot reach the database ${withoutPassword(config.databaseUrl)} (GATEHOUSE_DATABASE_URL): ${reason}`;
  }
  return null;
}

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = argv.filter((a, i) => !(a === '--workers' || a.startsWith('--workers=') || argv[i - 1] === '--workers'));
  if (unknown.length > 0) {
    process.stderr.write(`gatehouse serve: unknown option ${unknown[0]}\n\n${HELP}`);
    return 2;
  }
  let config: ServerConfig | null = null;
  try {
    config = loadConfig(process.env);
    // The server's modules load only once the settings are known to be good.
    const { runServer, workersFlag } = await import('../server/cluster.js');
    let workers: number;
    try {
      workers = workersFlag(argv) ?? config.workers;
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
    if (config.metrics === 'on' && workers > 1) throw new ConfigError('GATEHOUSE_METRICS=on needs one worker (--workers 1)');
    const instance = await runServer(config, workers);
    const stop = (signal: NodeJS.Signals) => {
      void instance.close(signal).then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`gatehouse: shutdown failed: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // Runs until a signal ends the process.
    return await new Promise<number>(() => undefined);
  } catch (err) {
    const line = describeStartupFailure(err, config);
    if (line === null) throw err;
    process.stderr.write(`gatehouse: ${line}\n`);
    return 2;
  }
}
