/**
 * Remember-me: a long-lived token in its own cookie, tied to one account and one browser.
 *
 * - Issued when a session that asked to be remembered becomes full.
 * - Stored only as SHA-256; rotated on every use. All rotations of one "remember me"
 *   form a chain (family) with one absolute expiry (GATEHOUSE_REMEMBER_DAYS from the
 *   login): rotation never extends it.
 * - Using a token is a conditional UPDATE (`used_at IS NULL`), so of any number of
 *   parallel uses exactly one restores a session.
 * - A restored session goes through the state machine (FirstFactor `remember_me`):
 *   pending for an account with a second factor, aal 1 otherwise, never fresh.
 *
 * Theft detection (issue 18). INVARIANT: once any token of a chain has been presented
 * after its rotation or revocation, no session produced by that chain stays valid and
 * no token of that chain restores a session.
 *
 * - Every route that reads the cookie (restore in the gate, login and sign-up, the
 *   issuing of a new chain, logout and sign-out) hands the presented token to this
 *   service first (`screen`, `restore`, `replace`, `logout`); so does the gate, once per
 *   touch interval, for a request carrying a live session too (`screenStale`).
 * - A token the legitimate browser was told to drop (rotated: it got the successor;
 *   signed out or replaced: its cookie was cleared or overwritten) or of a chain already
 *   caught replaying is *stale*: whoever presents it holds a copy. The chain's remaining
 *   tokens and every session it produced are revoked, `remember_me.replayed` is recorded
 *   and the owner is mailed (once per chain per burst). This holds for a token of any
 *   account, whatever the route is about.
 * - A token revoked from elsewhere while it was still the chain's newest (password
 *   change or reset, the sessions list) is *ended*: the owner's own browser still holds
 *   it, so it is not evidence and nobody is mailed, but the invariant still applies.
 * - Revoked rows are never deleted before the chain's expiry plus a session lifetime
 *   (see `MaintenanceService`), so a late replay is still recognised.
 * - Two requests of one browser presenting the same live token at once (tabs restoring
 *   together) cannot be told apart from a thief racing the owner: the loser is treated
 *   as a replay, as before this change (fail closed; the contract's "a replayed old one
 *   revokes the whole chain" applies from the first millisecond). Requests that carry a
 *   live session never restore, so this only happens when no tab has a session.
 */
import type { Transaction } from 'kysely';
import { factorMethodsOf } from '../store/json-columns.js';
import type { Database } from '../store/schema.js';
import type { RememberTokenRow, RememberTokenStore, RevokeReason } from '../store/credentials.js';
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

/**
 * What a presented token is: `live` (usable), `stale` (theft evidence), `ended` (revoked
 * from elsewhere, not evidence), `unknown` (garbage, never issued, expired unused, or
 * purged) or `none` (no cookie).
 */
export type Presented = { kind: 'none' | 'unknown' } | { kind: 'live' | 'stale' | 'ended'; row: RememberTokenRow };

/** Reasons whose tokens the legitimate browser no longer holds: presenting one is evidence. */
const EVIDENCE: ReadonlySet<string> = new Set<RevokeReason>(['replayed', 'logout', 'superseded']);

/** One notification per chain within this window, however many replays arrive (ms). */
export const REMEMBER_REPLAY_MAIL_WINDOW_MS = 10 * 60_000;

function plausible(token: string | undefined): token is string {
  return typeof token === 'string' && token.length >= 20 && token.length <= 200;
}

/** A fresh, unused token of a chain (the first one, or a rotation's successor); only its hash is stored. */
function chainLink(
  link: Pick<RememberTokenRow, 'id' | 'user_id' | 'family_id' | 'session_id' | 'expires_at'>,
  token: string,
  ctx: RequestContext,
): RememberTokenRow {
  return {
    ...link,
    token_hash: hashToken(token),
    created_at: ctx.now,
    used_at: null,
    revoked_at: null,
    revoked_reason: null,
    alarmed_at: null,
    ip: ctx.ip,
    user_agent: ctx.userAgent.slice(0, 512),
  };
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
  /** A new chain for the session; null when the session ended meanwhile (nothing to remember). */
  async issue(userId: string, sessionId: string, ctx: RequestContext): Promise<IssuedRememberToken | null> {
    const token = randomToken();
    const expiresAt = ctx.now + this.options.rememberDays * 86_400_000;
    const issued = await this.store.insertForLiveSession({
      ...chainLink({ id: newId(), user_id: userId, family_id: newId(), session_id: sessionId, expires_at: expiresAt }, token, ctx),
      session_id: sessionId,
    });
    return issued ? { token, expiresAt } : null;
  }

  /** Classifies a presented token without using it. */
  async inspect(presented: string | undefined, now: number): Promise<Presented> {
    if (presented === undefined) return { kind: 'none' };
    if (!plausible(presented)) return { kind: 'unknown' };
    const row = await this.store.findByHash(hashToken(presented));
    if (!row) return { kind: 'unknown' };
    if (row.used_at !== null) return { kind: 'stale', row };
    if (row.revoked_at !== null) return { kind: EVIDENCE.has(row.revoked_reason ?? '') ? 'stale' : 'ended', row };
    if (row.expires_at <= now) return { kind: 'unknown' };
    // A successor inserted while its chain was being revoked (another instance) may have
    // slipped the revocation; the chain is over all the same.
    if (await this.store.familyRevoked(row.family_id)) return { kind: 'ended', row };
    return { kind: 'live', row };
  }

  /**
   * A presented token that is not being used to restore (login, sign-up): a stale one
   * raises the alarm, an ended one takes its chain's sessions along. Live ones are left
   * alone. The caller clears the cookie unless the result is `live`.
   */
  async screen(presented: string | undefined, ctx: RequestContext): Promise<Presented> {
    const found = await this.inspect(presented, ctx.now);
    await this.settle(found, ctx);
    return found;
  }

  /**
   * Alongside a live session: only a stale token is acted on (the alarm). An ended one is
   * left alone, since the session may be the one that ended the chain (a password change
   * keeps the session that made it) and the cookie restores nothing anyway.
   */
  async screenStale(presented: string | undefined, ctx: RequestContext): Promise<Presented> {
    const found = await this.inspect(presented, ctx.now);
    if (found.kind === 'stale') await this.settle(found, ctx);
    return found;
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
    const used = await this.store.rotate(tokenHash, ctx.now, (row) =>
      chainLink(
        { id: successorId, user_id: row.user_id, family_id: row.family_id, session_id: null, expires_at: row.expires_at },
        next,
        ctx,
      ),
    );
    if (!used) {
      await this.settle(await this.inspect(presented, ctx.now), ctx);
      return null;
    }
    const user = await this.users.findById(used.user_id);
    if (!user) return null;
    const factorMethods = factorMethodsOf(user);
    const login = await this.auth.establish(
      { id: user.id, email: user.email },
      factorMethods,
      { kind: 'remember_me' },
      ctx,
      'cookie',
      false,
    );
    await this.store.attachSession(successorId, login.session.id);
    // A replay may have revoked the chain while this session was being made: then the
    // session goes too. The session is attached before this read, and the replay reads
    // the chain's sessions after its revocation, so one of the two sees the other.
    if (await this.store.familyRevoked(used.family_id)) {
      await this.sessions.revoke(login.session.id);
      return null;
    }
    return { login, remember: { token: next, expiresAt: used.expires_at } };
  }

  /**
   * The browser is about to get a new chain (a login that asked to be remembered): the
   * token it held is not forgotten silently. A live one's chain ends explicitly (its
   * tombstone makes a later presentation of a copy a replay); a stale one raises the
   * alarm. A live token of another account ends too: the cookie that held it is being
   * overwritten, and a live token nobody legitimate holds any more could only ever be
   * used by a copy, unseen. Its sessions stay and its owner is not mailed: holding a
   * live token is no evidence of theft (and whoever holds it could use it anyway).
   */
  async replace(presented: string | undefined, ctx: RequestContext): Promise<void> {
    const found = await this.inspect(presented, ctx.now);
    if (found.kind === 'live') await this.store.revokeFamily(found.row.family_id, ctx.now, 'superseded');
    else await this.settle(found, ctx);
  }

  /**
   * Logout: the chain behind this session and the chain of the presented cookie end
   * (the browser's cookie is cleared, so a later presentation is a copy's). A stale
   * presented token raises the alarm.
   */
  async logout(sessionId: string | null, presented: string | undefined, ctx: RequestContext): Promise<void> {
    const found = await this.inspect(presented, ctx.now);
    await this.settle(found, ctx);
    const families = new Set<string>(sessionId ? await this.store.familiesOfSession(sessionId) : []);
    if (found.kind === 'live') families.add(found.row.family_id);
    for (const family of families) await this.store.revokeFamily(family, ctx.now, 'logout');
  }

  /** A session was signed out from the sessions list: the chain behind it ends. */
  async endForRevokedSession(sessionId: string, now: number): Promise<void> {
    for (const family of await this.store.familiesOfSession(sessionId)) await this.store.revokeFamily(family, now, 'session_revoked');
  }

  /** Password change, reset, revoke-all: every chain of the account. */
  revokeAll(userId: string, now: number, trx?: Transaction<Database>): Promise<void> {
    return this.store.revokeAllForUser(userId, now, 'account', trx);
  }

  /** Acts on a presented token that cannot restore: see the invariant above. */
  private async settle(found: Presented, ctx: RequestContext): Promise<void> {
    if (found.kind === 'stale') await this.replayed(found.row, ctx);
    else if (found.kind === 'ended') await this.revokeChainSessions(found.row.family_id, 'session_revoked', ctx.now);
  }

  /** Theft evidence: the chain ends, with every session it produced; the owner is told. */
  private async replayed(row: RememberTokenRow, ctx: RequestContext): Promise<void> {
    const sessionsRevoked = await this.revokeChainSessions(row.family_id, 'replayed', ctx.now);
    if (await this.store.claimAlarm(row.family_id, ctx.now, REMEMBER_REPLAY_MAIL_WINDOW_MS)) {
      await this.log.record('remember_me.replayed', row.user_id, ctx, {
        familyId: row.family_id,
        sessionsRevoked,
        presented: row.used_at !== null ? 'rotated' : 'revoked',
      });
    }
  }

  /**
   * Revokes what is left of a chain (when `reason` is given) and then every session it
   * produced. Revocation repeats until a pass finds nothing left: a rotation committing
   * concurrently (on another instance) inserts a successor the first pass could not see.
   */
  private async revokeChainSessions(familyId: string, reason?: RevokeReason, now = Date.now()): Promise<number> {
    if (reason) for (let pass = 0; pass < 5 && (await this.store.revokeFamily(familyId, now, reason)) > 0; pass++);
    const sessionIds = await this.store.sessionsOfFamily(familyId);
    for (const id of sessionIds) await this.sessions.revoke(id);
    return sessionIds.length;
  }
}
