/**
 * Attempt limits on rate-limiter-flexible. Counters live where the deployment shares
 * state: the database by default (so limits hold across restarts and across instances
 * sharing it), Redis when GATEHOUSE_REDIS_URL is set.
 *
 * Attempts are reserved *before* a guess is checked and reset after a success, so N
 * parallel guesses are N counted attempts and can never exceed the limit.
 */
import type { Redis } from 'ioredis';
import {
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  RateLimiterSQLite,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { DatabaseHandle } from '../store/database.js';

export interface LimitSpec {
  /** Attempts allowed within the window. */
  points: number;
  windowSeconds: number;
  /** How long the key stays blocked once the attempts are used up. */
  blockSeconds: number;
}

export type Reservation =
  | { allowed: true; attempt: number }
  | { allowed: false; retryAfterSeconds: number; /** true exactly once: the request that started the block */ blockStarted: boolean };

export class AttemptLimiter {
  constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly spec: LimitSpec,
  ) {}

  async reserve(key: string): Promise<Reservation> {
    try {
      const res = await this.limiter.consume(key, 1);
      return { allowed: true, attempt: res.consumedPoints };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      return {
        allowed: false,
        // A request that lands between the last allowed attempt and the start of its block
        // sees the remaining *window* (up to a day); the block that is starting ends at most
        // blockSeconds from now, so that is the honest answer.
        retryAfterSeconds: Math.max(1, Math.min(this.spec.blockSeconds, Math.ceil(err.msBeforeNext / 1000))),
        blockStarted: err.consumedPoints === this.spec.points + 1,
      };
    }
  }

  /**
   * Starts the block now (called by the request whose failure used up the last attempt),
   * so the lockout lasts `blockSeconds` from the failure that caused it. Returns them.
   */
  async lock(key: string): Promise<number> {
    await this.limiter.block(key, this.spec.blockSeconds);
    return this.spec.blockSeconds;
  }

  /** True for the one reservation that used up the last attempt. */
  isLast(reservation: Reservation): boolean {
    return reservation.allowed && reservation.attempt === this.spec.points;
  }

  /** A success ends the run of consecutive failures. */
  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }

  /** Gives back a reserved attempt that turned out not to be a guess (e.g. a success). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(key, 1);
  }
}

export type LimiterBackend =
  | { kind: 'database'; handle: DatabaseHandle }
  | { kind: 'redis'; client: Redis };

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
    const options = { ...common, tableName: `rate_limits_${name.replace(/\W/g, '_')}`, tableCreated: false, clearExpiredByTimeout: false };
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
  mfaPerAccount: AttemptLimiter;
  /** Consecutive wrong passwords per account (by normalised email, known or not). */
  passwordPerAccount: AttemptLimiter;
  /** Password attempts per client address. */
  passwordPerAddress: AttemptLimiter;
  /** Request bodies refused as malformed or too deeply nested, per client address. */
  badBodiesPerAddress: AttemptLimiter;
}

/** Malformed or too deeply nested bodies an address may send per window before it gets 429 for them. */
export const BAD_BODIES_PER_ADDRESS = 50;

export const MFA_ATTEMPTS_PER_PENDING_SESSION = 5;
export const CONSECUTIVE_FAILURES_BEFORE_LOCKOUT = 10;

export async function createLimits(backend: LimiterBackend, lockoutSeconds: number): Promise<Limits> {
  const day = 86_400;
  return {
    mfaPerAccount: await createLimiter(backend, 'mfa_account', {
      points: CONSECUTIVE_FAILURES_BEFORE_LOCKOUT,
      windowSeconds: day,
      blockSeconds: lockoutSeconds,
    }),
    passwordPerAccount: await createLimiter(backend, 'password_account', {
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
