/**
 * Remember-me: a long-lived token in its own cookie, tied to one account and one browser.
 *
 * - Issued when a session that asked to be remembered becomes full.
 * - Stored only as SHA-256; rotated on every use. All rotations of one "remember me"
 *   form a chain (family) with one absolute expiry (GATEHOUSE_REMEMBER_DAYS from the
 *   login): rotation never extends it.
 * - Using a token is a conditional UPDATE (`used_at IS NULL`), so of any number of
 *   parallel uses exactly one restores a session. Presenting a token that was already
 *   used is a replay: the whole chain and every session it produced are revoked and
 *   `remember_me.replayed` is recorded.
 * - A restored session goes through the state machine (FirstFactor `remember_me`):
 *   pending for an account with a second factor, aal 1 otherwise, never fresh.
 */
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import type { RememberTokenStore } from '../store/credentials.js';
import type { UserStore } from '../store/users.js';
import type { AuthService, LoginResult } from './auth.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { SecurityLog } from './security-log.js';
import type { SessionService } from './sessions.js';

export interface IssuedRememberToken {
  /** The bearer secret: goes to the browser once, never stored. */
  token: string;
  expiresAt: number;
}

export interface RestoredSession {
  login: LoginResult;
  remember: IssuedRememberToken;
}

function plausible(token: string | undefined): token is string {
  return typeof token === 'string' && token.length >= 20 && token.length <= 200;
}

export class RememberMeService {
  constructor(
    private readonly store: RememberTokenStore,
    private readonly users: UserStore,
    private readonly sessions: SessionService,
    private readonly auth: AuthService,
    private readonly log: SecurityLog,
    private readonly options: { rememberDays: number },
  ) {}

  /** Starts a new chain for a session that just became full. */
  async issue(userId: string, sessionId: string, ctx: RequestContext): Promise<IssuedRememberToken> {
    const token = randomToken();
    const expiresAt = ctx.now + this.options.rememberDays * 86_400_000;
    await this.store.insert({
      id: newId(),
      user_id: userId,
      family_id: newId(),
      token_hash: hashToken(token),
      session_id: sessionId,
      created_at: ctx.now,
      expires_at: expiresAt,
      used_at: null,
      revoked_at: null,
      ip: ctx.ip,
      user_agent: ctx.userAgent.slice(0, 512),
    });
    return { token, expiresAt };
  }

  /**
   * Uses a presented token: a new session through the state machine and the token's
   * successor, or null (unknown, expired, revoked or replayed token).
   */
  async restore(presented: string | undefined, ctx: RequestContext): Promise<RestoredSession | null> {
    if (!plausible(presented)) return null;
    const tokenHash = hashToken(presented);
    const next = randomToken();
    const successorId = newId();
    const used = await this.store.rotate(tokenHash, ctx.now, (row) => ({
      id: successorId,
      user_id: row.user_id,
      family_id: row.family_id,
      token_hash: hashToken(next),
      session_id: null,
      created_at: ctx.now,
      expires_at: row.expires_at,
      used_at: null,
      revoked_at: null,
      ip: ctx.ip,
      user_agent: ctx.userAgent.slice(0, 512),
    }));
    if (!used) {
      await this.detectReplay(tokenHash, ctx);
      return null;
    }
    const user = await this.users.findById(used.user_id);
    if (!user) return null;
    const factorMethods = JSON.parse(user.factor_methods) as string[];
    const login = await this.auth.establish({ id: user.id, email: user.email }, factorMethods, { kind: 'remember_me' }, ctx, 'cookie', false);
    await this.store.attachSession(successorId, login.session.id);
    // A replay may have revoked the chain while this session was being made: then the
    // session goes too (whichever of the two ran last sees the other's write).
    if (await this.store.isRevoked(successorId)) {
      await this.sessions.revoke(login.session.id);
      return null;
    }
    return { login, remember: { token: next, expiresAt: used.expires_at } };
  }

  /** An already-used token of a live chain: revoke the chain and what it produced. */
  private async detectReplay(tokenHash: string, ctx: RequestContext): Promise<void> {
    const row = await this.store.findByHash(tokenHash);
    if (!row || row.used_at === null || row.revoked_at !== null) return;
    const sessionIds = await this.store.revokeFamily(row.family_id, ctx.now);
    for (const id of new Set(sessionIds)) await this.sessions.revoke(id);
    await this.log.record('remember_me.replayed', row.user_id, ctx, { familyId: row.family_id, sessionsRevoked: sessionIds.length });
  }

  /** Logout: the chain behind this session and the chain of the presented cookie end. */
  async revokeForLogout(sessionId: string | null, presented: string | undefined, now: number): Promise<void> {
    const families = new Set<string>(sessionId ? await this.store.familiesOfSession(sessionId) : []);
    if (plausible(presented)) {
      const row = await this.store.findByHash(hashToken(presented));
      if (row) families.add(row.family_id);
    }
    for (const family of families) await this.store.revokeFamily(family, now);
  }

  /** Password change, reset, revoke-all: every chain of the account. */
  revokeAll(userId: string, now: number, trx?: Transaction<Database>): Promise<void> {
    return this.store.revokeAllForUser(userId, now, trx);
  }
}
