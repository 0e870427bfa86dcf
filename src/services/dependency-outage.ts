/**
 * Recognises errors that mean "a dependency is unreachable" (the database or Redis), as
 * opposed to a bug: those are answered 503 with Retry-After and the process stays up. The
 * drivers reconnect by themselves (pg's pool opens new connections, ioredis retries);
 * nothing is decided while a dependency is down, so every limit stays closed.
 */

/** Network and server-state codes of Node, PostgreSQL (SQLSTATE classes 08, 57P, 53) and SQLite. */
const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  // statement_timeout (GATEHOUSE_DATABASE_STATEMENT_TIMEOUT): the database is too slow right now.
  '57014',
  '53400',
  // Not outages, but the same answer is right: nothing was decided, try again (a deadlock
  // or serialisation failure PostgreSQL resolved by aborting this transaction).
  '40P01',
  '40001',
  'SQLITE_FULL',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_IOERR',
]);

const OUTAGE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection is closed/i,
  /stream isn't writeable/i,
  /reached the max retries per request/i,
  /client has encountered a connection error/i,
  /database or disk is full/i,
  /disk i\/o error/i,
];

export function isDependencyOutage(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 3) return false;
  const e = error as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (OUTAGE_CODES.has(code) || code.startsWith('08') || code.startsWith('SQLITE_IOERR')) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (typeof e.message === 'string' && OUTAGE_MESSAGES.some((re) => re.test(e.message as string))) return true;
  // AggregateError (several addresses refused) and wrapped causes.
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDependencyOutage(inner, depth + 1))) return true;
  return isDependencyOutage(e.cause, depth + 1);
}
