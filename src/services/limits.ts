/**
 * Attempt limits. Two kinds:
 *
 * - Rate limits (`AttemptLimiter`, rate-limiter-flexible): so many requests per window
 *   per key, e.g. password attempts per client address.
 * - Consecutive-failure limits (`FailureLimiter`): wrong passwords and wrong second-factor
 *   codes per account, with the lockout.
 *
 * Counters live where the deployment shares state: the database by default (so limits
 * hold across restarts and across instances sharing it), Redis when GATEHOUSE_REDIS_URL
 * is set.
 */
import type { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import { RateLimiterPostgres, RateLimiterRedis, RateLimiterRes, RateLimiterSQLite, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { DatabaseHandle } from '../store/database.js';

export interface LimitSpec {
  /** Attempts allowed within the window. */
  points: number;
  windowSeconds: number;
  /** How long the key stays blocked once the attempts are used up. */
  blockSeconds: number;
}

export type RateReservation = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** A rate limit: `points` requests per window per key; every request counts, whatever its outcome. */
export class AttemptLimiter {
  constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly spec: LimitSpec,
  ) {}

  async reserve(key: string): Promise<RateReservation> {
    try {
      await this.limiter.consume(key, 1);
      return { allowed: true };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      return {
        allowed: false,
        // A request that lands between the last allowed attempt and the start of its block
        // sees the remaining *window*; the block ends at most blockSeconds from now.
        retryAfterSeconds: Math.max(1, Math.min(this.spec.blockSeconds, Math.ceil(err.msBeforeNext / 1000))),
      };
    }
  }

  /** Gives back a reserved attempt that turned out not to be a guess (e.g. a success). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(key, 1);
  }
}

/*
 * Consecutive-failure limits.
 *
 * INVARIANT (issue 9): per key, at every moment
 *     settled failures since the last success  +  attempts in flight  <=  cap.
 * An attempt is *in flight* from its reservation until it settles as a success, a
 * failure or "not a guess" (released). Only settled failures lock: when they reach the
 * cap, the key is locked for blockSeconds and nothing is checked until it ends. A
 * success zeroes the settled failures (attempts still in flight keep their places).
 * Consequences: at most `cap` wrong guesses settle between two successes (each wrong
 * guess settling after a success was either in flight at that success or admitted after
 * it, and all of those together never exceed the cap), however the requests are spread
 * over processes; and an attempt is refused only by a lock, never because others are in
 * flight: when the cap is taken by attempts in flight, a new one *waits* for them to
 * settle (bounded by `maxWaitMs`, then 429 with Retry-After 1).
 *
 * A reservation that is never settled (its process died) stops counting after
 * RESERVATION_TTL_MS without any new admission; requests time out well before that.
 */

/** Longer than the server's request timeout (30 s): an unsettled reservation is then certainly abandoned. */
export const RESERVATION_TTL_MS = 60_000;
/** How long an attempt waits for in-flight attempts to settle before it is refused (below the request timeout). */
export const MAX_RESERVATION_WAIT_MS = 10_000;

export type TryReserve = { kind: 'reserved'; generation: number } | { kind: 'locked'; until: number } | { kind: 'full' };

/** Atomic per-key operations of a failure limit (one implementation per backend). */
export interface FailureStore {
  tryReserve(key: string, now: number, spec: LimitSpec): Promise<TryReserve>;
  /** Settles a reservation; for a failure, returns the settled failure count (== cap exactly once per lock). */
  settle(key: string, generation: number, outcome: 'success' | 'failure' | 'release', now: number, spec: LimitSpec): Promise<number>;
  /** Forgets settled failures and any lock (the owner proved control another way). */
  clear(key: string): Promise<void>;
}

export type FailureReservation = { allowed: false; retryAfterSeconds: number } | { allowed: true; attempt: Attempt };

/** One reserved attempt. Settle it exactly once; `release()` in a `finally` is a no-op after a settle. */
export class Attempt {
  private settled = false;
  constructor(
    private readonly limiter: FailureLimiter,
    readonly key: string,
    private readonly generation: number,
  ) {}

  /** The guess was right: failures are forgiven. */
  async succeeded(): Promise<void> {
    await this.finish('success');
  }

  /** The guess was wrong. Returns the lockout in seconds when this failure started it (once per lock), else null. */
  async failed(): Promise<number | null> {
    const failures = await this.finish('failure');
    return failures === this.limiter.spec.points ? this.limiter.spec.blockSeconds : null;
  }

  /** Nothing was checked (an error before the check): gives the place back. */
  async release(): Promise<void> {
    await this.finish('release');
  }

  private async finish(outcome: 'success' | 'failure' | 'release'): Promise<number> {
    if (this.settled) return 0;
    this.settled = true;
    return this.limiter.settle(this.key, this.generation, outcome);
  }
}

export class FailureLimiter {
  /** In-process waiters per key, woken when an attempt of this process settles (other processes are polled). */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly store: FailureStore,
    readonly spec: LimitSpec,
    private readonly maxWaitMs = MAX_RESERVATION_WAIT_MS,
  ) {}

  async reserve(key: string): Promise<FailureReservation> {
    const giveUpAt = Date.now() + this.maxWaitMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
      const now = Date.now();
      const r = await this.store.tryReserve(key, now, this.spec);
      if (r.kind === 'reserved') return { allowed: true, attempt: new Attempt(this, key, r.generation) };
      if (r.kind === 'locked') {
        // The lock may have started after `now` (set by a settle that ran meanwhile): measure from here.
        const left = Math.ceil((r.until - Date.now()) / 1000);
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.min(this.spec.blockSeconds, left)) };
      }
      // Full of attempts in flight: their outcome decides whether this one may be checked.
      if (now >= giveUpAt) return { allowed: false, retryAfterSeconds: 1 };
      await this.nextSettleOr(key, pause * (0.5 + Math.random()));
    }
  }

  async settle(key: string, generation: number, outcome: 'success' | 'failure' | 'release'): Promise<number> {
    try {
      return await this.store.settle(key, generation, outcome, Date.now(), this.spec);
    } finally {
      for (const wake of this.waiters.get(key) ?? []) wake();
    }
  }

  /** Forgets failures and any lock for `key` (attempts in flight keep their places). */
  async reset(key: string): Promise<void> {
    await this.store.clear(key);
  }

  private nextSettleOr(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }
}

/**
 * The database backend: one row per key in `attempt_counters`; every change is a single
 * conditional statement, so concurrent requests and instances never lose an update.
 */
export class SqlFailureStore implements FailureStore {
  constructor(
    private readonly db: Kysely<any>,
    private readonly prefix: string,
  ) {}

  async tryReserve(rawKey: string, now: number, spec: LimitSpec): Promise<TryReserve> {
    const key = `${this.prefix}:${rawKey}`;
    const staleBefore = now - spec.windowSeconds * 1000;
    // Failures count as zero once their lock ended or the last one is older than the window;
    // reservations count as zero once none was made for RESERVATION_TTL_MS (then abandoned).
    const failures = sql`(CASE WHEN (attempt_counters.locked_until IS NOT NULL AND attempt_counters.locked_until <= ${now}) OR (attempt_counters.last_failure_at IS NOT NULL AND attempt_counters.last_failure_at <= ${staleBefore}) THEN 0 ELSE attempt_counters.failures END)`;
    const abandoned = sql`(attempt_counters.inflight_expires_at <= ${now})`;
    // One statement (one write per login step): a key seen for the first time is inserted
    // as the row the update below would make of a fresh one (no failures, one attempt in
    // flight, generation 1: a fresh row's expiry 0 reads as abandoned); an existing key is
    // updated only while unlocked and below the cap, else no row comes back.
    const { rows } = await sql<{ generation: number }>`
      INSERT INTO attempt_counters (id, failures, inflight, generation, inflight_expires_at)
      VALUES (${key}, 0, 1, 1, ${now + RESERVATION_TTL_MS})
      ON CONFLICT (id) DO UPDATE SET
        failures = ${failures},
        last_failure_at = CASE WHEN ${failures} = 0 THEN NULL ELSE attempt_counters.last_failure_at END,
        locked_until = NULL,
        inflight = CASE WHEN ${abandoned} THEN 1 ELSE attempt_counters.inflight + 1 END,
        generation = CASE WHEN ${abandoned} THEN attempt_counters.generation + 1 ELSE attempt_counters.generation END,
        inflight_expires_at = ${now + RESERVATION_TTL_MS}
      WHERE (attempt_counters.locked_until IS NULL OR attempt_counters.locked_until <= ${now})
        AND ${failures} + (CASE WHEN ${abandoned} THEN 0 ELSE attempt_counters.inflight END) < ${spec.points}
      RETURNING generation`.execute(this.db);
    if (rows[0]) return { kind: 'reserved', generation: Number(rows[0].generation) };
    const { rows: state } = await sql<{ locked_until: number | null }>`SELECT locked_until FROM attempt_counters WHERE id = ${key}`.execute(
      this.db,
    );
    const until = state[0]?.locked_until == null ? null : Number(state[0].locked_until);
    return until !== null && until > now ? { kind: 'locked', until } : { kind: 'full' };
  }

  async settle(
    rawKey: string,
    generation: number,
    outcome: 'success' | 'failure' | 'release',
    now: number,
    spec: LimitSpec,
  ): Promise<number> {
    const key = `${this.prefix}:${rawKey}`;
    // A reservation from before an "abandoned" reset no longer occupies a place.
    const inflight = sql`CASE WHEN generation = ${generation} AND inflight > 0 THEN inflight - 1 ELSE inflight END`;
    if (outcome === 'release') {
      await sql`UPDATE attempt_counters SET inflight = ${inflight} WHERE id = ${key}`.execute(this.db);
      return 0;
    }
    if (outcome === 'success') {
      await sql`UPDATE attempt_counters SET inflight = ${inflight}, failures = 0, last_failure_at = NULL WHERE id = ${key}`.execute(
        this.db,
      );
      return 0;
    }
    const { rows } = await sql<{ failures: number }>`
      UPDATE attempt_counters SET
        inflight = ${inflight},
        failures = failures + 1,
        last_failure_at = ${now},
        locked_until = CASE WHEN failures + 1 >= ${spec.points} THEN ${now + spec.blockSeconds * 1000} ELSE locked_until END
      WHERE id = ${key}
      RETURNING failures`.execute(this.db);
    return Number(rows[0]?.failures ?? 0);
  }

  async clear(rawKey: string): Promise<void> {
    await sql`UPDATE attempt_counters SET failures = 0, last_failure_at = NULL, locked_until = NULL WHERE id = ${`${this.prefix}:${rawKey}`}`.execute(
      this.db,
    );
  }
}

/** The same operations as Lua scripts on one Redis hash per key (atomic per script). */
const REDIS_RESERVE = `
local now, stale_before, cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'failures', 'last_failure_at', 'locked_until', 'inflight', 'inflight_expires_at', 'generation')
local failures, last_failure, locked_until = tonumber(h[1]) or 0, tonumber(h[2]), tonumber(h[3])
local inflight, expires, generation = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
if locked_until and locked_until > now then return {2, tostring(locked_until)} end
if locked_until or (last_failure and last_failure <= stale_before) then failures = 0 end
if expires <= now then inflight = 0; generation = generation + 1 end
if failures + inflight >= cap then return {3, '0'} end
redis.call('HSET', KEYS[1], 'failures', failures, 'inflight', inflight + 1, 'inflight_expires_at', now + ttl, 'generation', generation)
redis.call('HDEL', KEYS[1], 'locked_until')
if failures == 0 then redis.call('HDEL', KEYS[1], 'last_failure_at') end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return {1, tostring(generation)}
`;

const REDIS_SETTLE = `
local generation, outcome, now, cap, lock_until = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if outcome ~= 'failure' then return 0 end
end
local h = redis.call('HMGET', KEYS[1], 'inflight', 'generation', 'failures')
local inflight, gen, failures = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
if gen == generation and inflight > 0 then redis.call('HSET', KEYS[1], 'inflight', inflight - 1) end
if outcome == 'success' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  redis.call('HDEL', KEYS[1], 'last_failure_at')
  return 0
end
if outcome == 'release' then return 0 end
failures = failures + 1
redis.call('HSET', KEYS[1], 'failures', failures, 'last_failure_at', now)
if failures >= cap then redis.call('HSET', KEYS[1], 'locked_until', lock_until) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]))
return failures
`;

export class RedisFailureStore implements FailureStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}

  private keyOf(key: string): string {
    // Not the rate-limiter-flexible key of earlier versions (a string, not a hash).
    return `gatehouse:failures:${this.prefix}:${key}`;
  }

  private keepMs(spec: LimitSpec): number {
    return Math.max(spec.windowSeconds, spec.blockSeconds) * 1000 + RESERVATION_TTL_MS;
  }

  async tryReserve(key: string, now: number, spec: LimitSpec): Promise<TryReserve> {
    const [kind, value] = (await this.client.eval(
      REDIS_RESERVE,
      1,
      this.keyOf(key),
      now,
      now - spec.windowSeconds * 1000,
      spec.points,
      RESERVATION_TTL_MS,
      this.keepMs(spec),
    )) as [number, string];
    if (kind === 1) return { kind: 'reserved', generation: Number(value) };
    if (kind === 2) return { kind: 'locked', until: Number(value) };
    return { kind: 'full' };
  }

  async settle(key: string, generation: number, outcome: 'success' | 'failure' | 'release', now: number, spec: LimitSpec): Promise<number> {
    const failures = await this.client.eval(
      REDIS_SETTLE,
      1,
      this.keyOf(key),
      generation,
      outcome,
      now,
      spec.points,
      now + spec.blockSeconds * 1000,
      this.keepMs(spec),
    );
    return Number(failures);
  }

  async clear(key: string): Promise<void> {
    await this.client.hdel(this.keyOf(key), 'failures', 'last_failure_at', 'locked_until');
  }
}

/** The per-address windows' tables (rate-limiter-flexible's layout, migration 0009). */
const RATE_LIMIT_TABLES = [
  'rate_limits_password_address',
  'rate_limits_bad_body_address',
  'rate_limits_reset_account',
  'rate_limits_reset_address',
];

/** Consecutive failures per account are forgotten after a day without one. */
const ACCOUNT_FAILURE_WINDOW_SECONDS = 86_400;

/**
 * Deletes limiter rows that decide nothing any more (maintenance): attempt counters
 * untouched for longer than their window and lockout (`keepMs`, as Redis expires its keys),
 * not locked and with no reservation in flight, and per-address windows that ended. A
 * fresh row reads exactly like each of them, so no limit loosens. Returns the rows deleted.
 */
export async function purgeIdleLimits(db: Kysely<any>, now: number, lockoutSeconds: number): Promise<number> {
  const cutoff = now - (Math.max(ACCOUNT_FAILURE_WINDOW_SECONDS, lockoutSeconds) * 1000 + RESERVATION_TTL_MS);
  const counters = await sql`
    DELETE FROM attempt_counters
    WHERE inflight_expires_at <= ${cutoff}
      AND (last_failure_at IS NULL OR last_failure_at <= ${cutoff})
      AND (locked_until IS NULL OR locked_until <= ${now})`.execute(db);
  let deleted = Number(counters.numAffectedRows ?? 0);
  for (const table of RATE_LIMIT_TABLES) {
    const windows = await sql`DELETE FROM ${sql.table(table)} WHERE expire IS NOT NULL AND expire <= ${now}`.execute(db);
    deleted += Number(windows.numAffectedRows ?? 0);
  }
  return deleted;
}

export function createFailureLimiter(backend: LimiterBackend, name: string, spec: LimitSpec): FailureLimiter {
  const store = backend.kind === 'redis' ? new RedisFailureStore(backend.client, name) : new SqlFailureStore(backend.handle.db, name);
  return new FailureLimiter(store, spec);
}

export type LimiterBackend = { kind: 'database'; handle: DatabaseHandle } | { kind: 'redis'; client: Redis };

export async function createLimiter(backend: LimiterBackend, name: string, spec: LimitSpec): Promise<AttemptLimiter> {
  const common = {
    keyPrefix: name,
    points: spec.points,
    duration: spec.windowSeconds,
    blockDuration: spec.blockSeconds,
  };
  if (backend.kind === 'redis') {
    return new AttemptLimiter(new RateLimiterRedis({ ...common, storeClient: backend.client }), spec);
  }
  const handle = backend.handle;
  const limiter = await new Promise<RateLimiterAbstract>((resolve, reject) => {
    // The table comes from the migrations (0009_limiter_tables), never from the library at start-up.
    const options = { ...common, tableName: `rate_limits_${name.replace(/\W/g, '_')}`, tableCreated: true, clearExpiredByTimeout: false };
    let created: RateLimiterAbstract;
    const done = (err?: unknown) => (err ? reject(err) : setImmediate(() => resolve(created)));
    created =
      handle.kind === 'sqlite'
        ? new RateLimiterSQLite({ ...options, storeClient: handle.sqlite, storeType: 'better-sqlite3' }, done)
        : new RateLimiterPostgres({ ...options, storeClient: handle.pool, storeType: 'pool' }, done);
  });
  return new AttemptLimiter(limiter, spec);
}

/** The limits Gatehouse enforces (contract, "Limits"). */
export interface Limits {
  /** Consecutive wrong second-factor codes per account, across sessions and addresses. */
  mfaPerAccount: FailureLimiter;
  /** Consecutive wrong passwords per account (by normalised email, known or not). */
  passwordPerAccount: FailureLimiter;
  /** Password attempts per client address. */
  passwordPerAddress: AttemptLimiter;
  /** Request bodies refused as too deeply nested, per client address. */
  badBodiesPerAddress: AttemptLimiter;
}

/** Too deeply nested bodies an address may send per window before it gets 429 for them. */
export const BAD_BODIES_PER_ADDRESS = 50;

export const MFA_ATTEMPTS_PER_PENDING_SESSION = 5;
export const CONSECUTIVE_FAILURES_BEFORE_LOCKOUT = 10;

/**
 * `addresses`: where per-address rate windows live (Redis when configured). `accounts`:
 * where the per-account consecutive failures and lockouts live — always the database,
 * the source of truth that survives a Redis restart (a Redis without persistence would
 * otherwise forget every lockout and grant each locked account its failures again).
 */
export async function createLimits(
  backends: { addresses: LimiterBackend; accounts: LimiterBackend },
  lockoutSeconds: number,
): Promise<Limits> {
  const day = ACCOUNT_FAILURE_WINDOW_SECONDS;
  const backend = backends.addresses;
  return {
    mfaPerAccount: createFailureLimiter(backends.accounts, 'mfa_account', {
      points: CONSECUTIVE_FAILURES_BEFORE_LOCKOUT,
      windowSeconds: day,
      blockSeconds: lockoutSeconds,
    }),
    passwordPerAccount: createFailureLimiter(backends.accounts, 'password_account', {
      points: CONSECUTIVE_FAILURES_BEFORE_LOCKOUT,
      windowSeconds: day,
      blockSeconds: lockoutSeconds,
    }),
    passwordPerAddress: await createLimiter(backend, 'password_address', {
      points: 100,
      windowSeconds: 900,
      blockSeconds: 900,
    }),
    badBodiesPerAddress: await createLimiter(backend, 'bad_body_address', {
      points: BAD_BODIES_PER_ADDRESS,
      windowSeconds: 900,
      blockSeconds: 900,
    }),
  };
}
