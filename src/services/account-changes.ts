/**
 * Security changes of one account run one after another, on every instance (I4, and the
 * contract's "actions on one account are serialised"). Each runs in one transaction that
 * first takes the account lock, then checks that the session acting (if any) is still
 * current: of two concurrent changes from different sessions, the one that revoked the
 * other's session wins and the other answers 401.
 */
import type { Kysely, Transaction } from 'kysely';
import { UnauthenticatedError } from '../core/errors.js';
import type { LockedAccountFacts } from '../core/factor-lifecycle.js';
import { authorize, type FreshnessPolicy } from '../core/requirements.js';
import type { SessionRisk } from '../core/risk.js';
import type { SessionFacts } from '../core/session-state.js';
import type { FactorSetupStore, FactorStore } from '../store/factors.js';
import type { Database } from '../store/schema.js';
import type { SessionStore } from '../store/sessions.js';
import type { UserStore } from '../store/users.js';

export interface LockedAccount extends LockedAccountFacts {
  passwordHash: string;
  /** The account's roles as read under the lock. */
  roles: string[];
  /** The step-up window for a session of this account with this risk: the one the gate applies (roles, risk). */
  freshness(risk: SessionRisk | null): FreshnessPolicy;
}

/** The step-up window for a session of an account (PolicyService.freshnessFor). */
export type FreshnessFor = (roles: readonly string[], risk: SessionRisk | null) => FreshnessPolicy;

export interface AccountChange<T> {
  /** The session asking; the change answers 401 when it was revoked or replaced meanwhile. */
  actingSession?: { id: string; tokenHash: string };
  /** A security change: moves the account's epoch, voiding every unconfirmed set-up (I3). */
  voidsSetups: boolean;
  /**
   * A ★ change: freshness is judged again under the lock, with the factors the account has
   * now. The gate judged it with those it had when the request came in; a first factor
   * confirmed meanwhile (another session) makes a password-fresh session stale. The window
   * is the gate's (deployment, shortened by the account's roles as they are now and the
   * session's risk), so a race cannot win the longer deployment window.
   */
  fresh?: { session: SessionFacts; risk: SessionRisk | null };
  run(trx: Transaction<Database>, account: LockedAccount): Promise<T>;
}

export class AccountGoneError extends UnauthenticatedError {
  constructor() {
    super('This session has ended (another change to the account came first). Sign in again.');
  }
}

export class AccountChanges {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly users: UserStore,
    private readonly sessions: SessionStore,
    private readonly factors: FactorStore,
    private readonly setups: FactorSetupStore,
    /** The step-up window, as the gate decides it (PolicyService.freshnessFor). */
    private readonly freshnessFor: FreshnessFor,
  ) {}

  async apply<T>(userId: string, now: number, change: AccountChange<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const locked = await this.users.lockForChange(trx, userId);
      if (!locked) throw new AccountGoneError();
      if (change.actingSession && !(await this.sessions.isCurrent(trx, change.actingSession.id, change.actingSession.tokenHash))) {
        throw new AccountGoneError();
      }
      const factorMethods = await this.factors.methodsOf(trx, userId);
      const freshness = (risk: SessionRisk | null) => this.freshnessFor(locked.roles, risk);
      if (change.fresh) {
        const denied = authorize(
          { session: 'full', fresh: true },
          { kind: 'session', session: change.fresh.session, account: { factorMethods } },
          now,
          freshness(change.fresh.risk),
        );
        if (denied) throw denied;
      }
      const result = await change.run(trx, {
        epoch: locked.epoch,
        passwordHash: locked.passwordHash,
        roles: locked.roles,
        factorMethods,
        freshness,
      });
      if (change.voidsSetups) {
        await this.users.bumpEpoch(trx, userId, now);
        await this.setups.deleteForAccount(trx, userId);
      }
      return result;
    });
  }
}
