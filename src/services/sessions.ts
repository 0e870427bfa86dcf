/**
 * Session tokens and their storage. A token is 256 random bits, stored only as its
 * SHA-256; it is replaced whenever the session's assurance changes. This module turns
 * rows into `SessionFacts` for the state machine and back.
 */
import { parseSessionRisk, type SessionRisk } from '../core/risk.js';
import { isExpired, needsTouch, type AuthMethod, type SessionFacts, type SessionState, type SessionTimes } from '../core/session-state.js';
import type { Transaction } from 'kysely';
import { UnauthenticatedError } from '../core/errors.js';
import { amrOf, factorMethodsOf, rolesOf } from '../store/json-columns.js';
import type { Database } from '../store/schema.js';
import type { AccountChanges } from './account-changes.js';
import type { SessionStore, SessionWithAccount } from '../store/sessions.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';

export type SessionTransport = 'cookie' | 'token';

/**
 * How long a replaced session token still ends its session at logout: long enough for a
 * logout sent alongside the replacing request (slow networks, retries), short enough that
 * an old copy soon names nothing at all.
 */
export const REPLACED_TOKEN_LOGOUT_MS = 60_000;

/** A live session as the gate and the use cases see it. */
export interface ActiveSession {
  id: string;
  userId: string;
  email: string;
  tokenHash: string;
  transport: SessionTransport;
  remember: boolean;
  facts: SessionFacts;
  factorMethods: string[];
  /** The account's roles and enrolment due time (core/role-policy.ts). */
  roles: string[];
  mfaDueAt: number | null;
  /** When the account was created (read with the session: `GET /api/account` needs no second read). */
  accountCreatedAt: number;
  /** What risk signals raised for this session at sign-in (core/risk.ts); null: none recorded. */
  risk: SessionRisk | null;
  ip: string;
  userAgent: string;
}

export interface IssuedSession {
  id: string;
  /** The bearer secret: goes to the client once, never stored. */
  token: string;
  facts: SessionFacts;
}

/**
 * The presented token was replaced (or revoked) by a parallel request between the gate
 * and the write: that token no longer names a session, so the client sees 401.
 */
export class SessionReplacedError extends UnauthenticatedError {
  constructor() {
    super('This session token was just replaced by another request; use the new one or sign in again.');
  }
}

function toActive(row: SessionWithAccount): ActiveSession {
  return {
    id: row.id,
    userId: row.user_id,
    email: row.email,
    tokenHash: row.token_hash,
    transport: row.transport === 'token' ? 'token' : 'cookie',
    remember: row.remember === 1,
    factorMethods: factorMethodsOf(row),
    roles: rolesOf(row),
    mfaDueAt: row.mfa_due_at === null ? null : Number(row.mfa_due_at),
    accountCreatedAt: row.account_created_at,
    // Unreadable: the strictest reading (1 s window: every ★ action asks again).
    risk: parseSessionRisk(row.risk ?? null, 1),
    ip: row.ip,
    userAgent: row.user_agent,
    facts: {
      state: row.state as SessionState,
      amr: amrOf(row),
      authTime: row.auth_time,
      passwordAt: row.password_at,
      mfaAt: row.mfa_at,
      webauthnAt: row.webauthn_at ?? null,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      expiresAt: row.expires_at,
    },
  };
}

export class SessionService {
  /** Run after `revokeForUser` ended a session (remember-me registers here). */
  readonly revokedHooks: Array<(sessionId: string) => Promise<void>> = [];

  constructor(
    private readonly store: SessionStore,
    private readonly accounts: AccountChanges,
    readonly times: SessionTimes,
  ) {}

  async create(
    userId: string,
    facts: SessionFacts,
    ctx: RequestContext,
    options: { transport: SessionTransport; remember?: boolean; risk?: SessionRisk | null },
    trx?: Transaction<Database>,
  ): Promise<IssuedSession> {
    const token = randomToken();
    const id = newId();
    await this.store.insert(
      {
        id,
        user_id: userId,
        token_hash: hashToken(token),
        state: facts.state,
        amr: JSON.stringify(facts.amr),
        transport: options.transport,
        auth_time: facts.authTime,
        password_at: facts.passwordAt,
        mfa_at: facts.mfaAt,
        webauthn_at: facts.webauthnAt ?? null,
        remember: options.remember ? 1 : 0,
        risk: options.risk ? JSON.stringify(options.risk) : null,
        created_at: facts.createdAt,
        last_seen_at: facts.lastSeenAt,
        expires_at: facts.expiresAt,
        ip: ctx.ip,
        user_agent: ctx.userAgent.slice(0, 512),
      },
      trx,
    );
    return { id, token, facts };
  }

  /**
   * The live session for a presented token, or null. A token only works over the
   * transport it was issued for, so a cookie secret cannot be replayed as a bearer token
   * (which skips the CSRF check) and vice versa. One indexed read; never writes.
   */
  async resolve(token: string, transport: SessionTransport, now: number): Promise<ActiveSession | null> {
    if (token.length < 20 || token.length > 200) return null;
    const row = await this.store.findByTokenHash(hashToken(token));
    if (!row || row.transport !== transport) return null;
    const session = toActive(row);
    if (isExpired(session.facts, now, this.times)) return null;
    return session;
  }

  /**
   * The session whose token this was until moments ago (replaced by `advance`), or null.
   * Only logout may use it: a logout racing the request that replaced the token (a factor
   * confirmation, a step-up) must end the session rather than find none and answer 204.
   * Ending a session is all the old token can do, so it grants its holder nothing.
   */
  async resolveReplaced(token: string, transport: SessionTransport, now: number): Promise<ActiveSession | null> {
    if (token.length < 20 || token.length > 200) return null;
    const row = await this.store.findByReplacedTokenHash(hashToken(token), now);
    return row && row.transport === transport ? toActive(row) : null;
  }

  /**
   * Writes the new facts with a new token; the old token stops working except for logout
   * (`resolveReplaced`, for `REPLACED_TOKEN_LOGOUT_MS`). Inside an account change, pass its
   * transaction so the session moves with the change or not at all.
   */
  async advance(session: ActiveSession, next: SessionFacts, now: number, trx?: Transaction<Database>): Promise<IssuedSession> {
    const token = randomToken();
    const ok = await this.store.replace(
      session.id,
      session.tokenHash,
      {
        token_hash: hashToken(token),
        state: next.state,
        amr: JSON.stringify(next.amr),
        password_at: next.passwordAt,
        mfa_at: next.mfaAt,
        webauthn_at: next.webauthnAt ?? null,
        expires_at: next.expiresAt,
        last_seen_at: next.lastSeenAt,
      },
      now + REPLACED_TOKEN_LOGOUT_MS,
      trx,
    );
    // Someone else advanced (or revoked) this session first with the same token.
    if (!ok) throw new SessionReplacedError();
    return { id: session.id, token, facts: next };
  }

  /** Keeps the idle timeout honest without writing on every request. */
  async touchIfStale(session: ActiveSession, now: number): Promise<void> {
    if (needsTouch(session.facts, now, this.times.sessionIdleTtlSeconds)) await this.store.touch(session.id, now);
  }

  reserveMfaAttempt(sessionId: string, max: number): Promise<number | null> {
    return this.store.reserveMfaAttempt(sessionId, max);
  }

  revoke(sessionId: string): Promise<void> {
    return this.store.delete(sessionId);
  }

  /** Revokes one of the account's sessions inside an account change (its transaction). */
  async revokeWithin(trx: Transaction<Database>, userId: string, sessionId: string): Promise<void> {
    await this.store.deleteForUser(userId, sessionId, trx);
  }

  /** Revokes a pending session, but never one a parallel verification has just completed. */
  revokePending(sessionId: string): Promise<void> {
    return this.store.deletePending(sessionId);
  }

  /**
   * Revokes one of the account's sessions (false: no such session of this account), and
   * runs `revokedHooks` (the remember-me chain behind it ends too). Under the account lock:
   * of two sessions revoking each other at once, one wins and the other answers 401.
   */
  async revokeForUser(acting: ActiveSession, sessionId: string, now: number): Promise<boolean> {
    const deleted = await this.accounts.apply(acting.userId, now, {
      actingSession: acting,
      voidsSetups: false,
      run: (trx) => this.store.deleteForUser(acting.userId, sessionId, trx),
    });
    if (!deleted) return false;
    for (const hook of this.revokedHooks) await hook(sessionId);
    return true;
  }

  revokeAll(userId: string, keepSessionId?: string, trx?: Transaction<Database>): Promise<void> {
    return this.store.deleteAllForUser(userId, keepSessionId, trx);
  }

  /** The account's live sessions: neither past their absolute end nor idle too long. */
  async list(userId: string, now: number) {
    const rows = await this.store.listForUser(userId, now);
    return rows.filter((row) => now < row.last_seen_at + this.times.sessionIdleTtlSeconds * 1000);
  }
}
