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
import type { SessionFacts } from '../core/session-state.js';
import type { FactorSetupStore, FactorStore } from '../store/factors.js';
import type { Database } from '../store/schema.js';
import type { SessionStore } from '../store/sessions.js';
import type { UserStore } from '../store/users.js';

export interface LockedAccount extends LockedAccountFacts {
  passwordHash: string;
}

export interface AccountChange<T> {
  /** The session asking; the change answers 401 when it was revoked or replaced meanwhile. */
  actingSession?: { id: string; tokenHash: string };
  /** A security change: moves the account's epoch, voiding every unconfirmed set-up (I3). */
  voidsSetups: boolean;
  /**
   * A ★ change: freshness is judged again under the lock, with the factors the account has
   * now. The gate judged it with those it had when the request came in; a first factor
   * confirmed meanwhile (another session) makes a password-fresh session stale.
   */
  fresh?: { session: SessionFacts; policy?: FreshnessPolicy };
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
    /** The deployment's step-up policy, for `fresh` changes that name none. */
    private readonly freshness: FreshnessPolicy,
  ) {}

  async apply<T>(userId: string, now: number, change: AccountChange<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const locked = await this.users.lockForChange(trx, userId);
      if (!locked) throw new AccountGoneError();
      if (change.actingSession && !(await this.sessions.isCurrent(trx, change.actingSession.id, change.actingSession.tokenHash))) {
        throw new AccountGoneError();
      }
      const factorMethods = await this.factors.methodsOf(trx, userId);
      if (change.fresh) {
        const denied = authorize(
          { session: 'full', fresh: true },
          { kind: 'session', session: change.fresh.session, account: { factorMethods } },
          now,
          change.fresh.policy ?? this.freshness,
        );
        if (denied) throw denied;
      }
      const result = await change.run(trx, { epoch: locked.epoch, passwordHash: locked.passwordHash, factorMethods });
      if (change.voidsSetups) {
        await this.users.bumpEpoch(trx, userId, now);
        await this.setups.deleteForAccount(trx, userId);
      }
      return result;
    });
  }
}
