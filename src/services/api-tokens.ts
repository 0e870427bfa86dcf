/**
 * Personal API tokens: `gth_pat_` + 256 random bits (base64url), so a leaked token is
 * recognisable by secret scanners; stored only as SHA-256. A token is a non-interactive
 * credential: the gate lets it call only routes that name one of its scopes, and never a
 * sensitive (★) one.
 */
import type { Kysely, Transaction } from 'kysely';
import { InvalidRequestError, NotFoundError } from '../core/errors.js';
import type { Scope } from '../core/scopes.js';
import type { ApiTokenStore } from '../store/api-tokens.js';
import { factorMethodsOf, rolesOf } from '../store/json-columns.js';
import type { Database } from '../store/schema.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { AccountChanges } from './account-changes.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession } from './sessions.js';

export const API_TOKEN_PREFIX = 'gth_pat_';
/** lastUsedAt is written at most this often per token. */
export const API_TOKEN_TOUCH_INTERVAL_MS = 60_000;
export const MAX_TOKENS_PER_ACCOUNT = 100;
/** `gth_pat_` + 43 base64url characters. */
const TOKEN_SHAPE = /^gth_pat_[A-Za-z0-9_-]{43}$/;

export interface ApiTokenView {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  lastUsedAt: string | null;
}

export interface ResolvedApiToken {
  id: string;
  userId: string;
  scopes: Scope[];
  /** What the gate decides the account's enrolment with (as for a session): read with the token. */
  account: TokenAccountFacts;
}

export interface TokenAccountFacts {
  roles: string[];
  factorMethods: string[];
  mfaDueAt: number | null;
}

/** A stored token's scopes, less any the host app no longer declares. */
function parseScopes(value: string, declared: readonly Scope[]): Scope[] {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((s): s is Scope => typeof s === 'string' && declared.includes(s)) : [];
  } catch {
    return [];
  }
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export class ApiTokenService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountChanges,
    private readonly store: ApiTokenStore,
    private readonly log: SecurityLog,
    /** The scopes the host application declared. */
    readonly scopes: readonly Scope[],
  ) {}

  /**
   * A lasting credential: written under the account lock, by a session that must still be
   * current then (a concurrent password reset that revoked it wins; the token is not made).
   */
  async create(
    session: Pick<ActiveSession, 'id' | 'userId' | 'tokenHash' | 'facts' | 'risk'>,
    input: { name: string; scopes: string[] },
    ctx: RequestContext,
  ): Promise<{ id: string; token: string; scopes: Scope[] }> {
    const userId = session.userId;
    const unknown = input.scopes.filter((s) => !this.scopes.includes(s));
    if (unknown.length > 0) {
      throw new InvalidRequestError(`Unknown scope(s): ${unknown.join(', ')}. Scopes are ${this.scopes.join(', ') || '(none)'}.`, [
        { path: 'scopes', message: `unknown scope(s): ${unknown.join(', ')}` },
      ]);
    }
    // Keep the contract's order; duplicates collapse.
    const scopes = this.scopes.filter((s) => input.scopes.includes(s));
    const token = `${API_TOKEN_PREFIX}${randomToken(32)}`;
    const id = newId();
    // ★: judged again under the lock with the factors the account has then.
    await this.accounts.apply(userId, ctx.now, {
      actingSession: session,
      voidsSetups: false,
      fresh: { session: session.facts, risk: session.risk },
      run: async (trx) => {
        if ((await this.store.countForUser(trx, userId)) >= MAX_TOKENS_PER_ACCOUNT) {
          throw new InvalidRequestError(`An account can hold at most ${MAX_TOKENS_PER_ACCOUNT} tokens; delete some first.`, [
            { path: 'name', message: 'too many tokens' },
          ]);
        }
        await this.store.insert(trx, {
          id,
          user_id: userId,
          name: input.name,
          token_hash: hashToken(token),
          scopes: JSON.stringify(scopes),
          created_at: ctx.now,
          last_used_at: null,
        });
        await this.log.record('token.created', userId, ctx, { tokenId: id, name: input.name, scopes }, trx);
      },
    });
    return { id, token, scopes };
  }

  async list(userId: string): Promise<ApiTokenView[]> {
    const rows = await this.store.listForUser(userId);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      scopes: parseScopes(r.scopes, this.scopes),
      createdAt: iso(r.created_at)!,
      lastUsedAt: iso(r.last_used_at),
    }));
  }

  /** Another account's token is indistinguishable from no token: 404. */
  async revoke(userId: string, id: string, ctx: RequestContext): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (!(await this.store.deleteForUser(trx, userId, id))) throw new NotFoundError('No such token.');
      await this.log.record('token.revoked', userId, ctx, { tokenId: id }, trx);
    });
  }

  /** Every token of the account, inside the caller's (account-locked) transaction. */
  async revokeAll(userId: string, ctx: RequestContext, trx: Transaction<Database>): Promise<number> {
    const n = await this.store.deleteAllForUser(trx, userId);
    if (n > 0) await this.log.record('token.revoked', userId, ctx, { all: true, count: n }, trx);
    return n;
  }

  /** For the gate: the token's account and scopes, or null. */
  async resolve(token: string, now: number): Promise<ResolvedApiToken | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const row = await this.store.findByHash(hashToken(token));
    if (!row) return null;
    if (row.last_used_at === null || row.last_used_at <= now - API_TOKEN_TOUCH_INTERVAL_MS) {
      await this.store.touch(row.id, now, API_TOKEN_TOUCH_INTERVAL_MS);
    }
    return {
      id: row.id,
      userId: row.user_id,
      scopes: parseScopes(row.scopes, this.scopes),
      account: {
        roles: rolesOf(row),
        factorMethods: factorMethodsOf(row),
        mfaDueAt: row.mfa_due_at === null ? null : Number(row.mfa_due_at),
      },
    };
  }

  /** The gate extension (`GateExtensions.apiTokens`). */
  gateExtension() {
    return { prefix: API_TOKEN_PREFIX, resolve: (token: string, now: number) => this.resolve(token, now) };
  }
}
