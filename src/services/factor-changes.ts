/**
 * What adding or removing any second factor (TOTP or passkey) does to the account, in one
 * place: the confirmation decision of the state machine (core/factor-lifecycle.ts), the
 * gate's `factor_methods`, recovery codes (issued with the first factor, deleted with the
 * last), the last-factor rule under GATEHOUSE_MFA_REQUIRED=all, the security log and the
 * factor-removed hooks (trusted devices). Every change runs under the account lock.
 */
import type { Transaction } from 'kysely';
import { InvalidRequestError, NoPendingSetupError, NotFoundError } from '../core/errors.js';
import { decideConfirmation, type FactorType } from '../core/factor-lifecycle.js';
import { assuranceLevel, type AuthMethod, type MfaPolicy } from '../core/session-state.js';
import type { FactorSetupStore, FactorStore, RecoveryCodeStore } from '../store/factors.js';
import type { Database, FactorSetupRow } from '../store/schema.js';
import type { AccountChanges } from './account-changes.js';
import type { RequestContext } from './context.js';
import type { KeyedHasher } from './keys.js';
import { issueRecoveryCodes } from './recovery-codes.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession, IssuedSession, SessionService } from './sessions.js';

export interface FactorChangeDeps {
  accounts: AccountChanges;
  factors: FactorStore;
  setups: FactorSetupStore;
  recoveryCodes: RecoveryCodeStore;
  sessions: SessionService;
  log: SecurityLog;
  hasher: KeyedHasher;
  mfaRequired: MfaPolicy;
  /** Run after a confirmed factor is removed (trusted devices are revoked here). */
  removedHooks: ReadonlyArray<(userId: string) => Promise<void>>;
}

export interface ConfirmedFactor {
  /** Shown once, with the account's first factor only. */
  recoveryCodes: string[] | null;
  /** The session with a new token when it became full and fresh (first factor), else null. */
  session: IssuedSession | null;
  aal: 1 | 2;
}

/**
 * Confirms the session's set-up as a factor: under the account lock, consumes the set-up
 * (I3), decides first or additional factor (I1, I2), inserts the factor with
 * `insertFactor`, refreshes the gate's list (I4), issues recovery codes for a first
 * factor, moves the epoch and, for a first factor, advances the session in the same
 * transaction, so no response ever carries codes of a factor that did not land.
 */
export async function confirmFactor(
  deps: FactorChangeDeps,
  session: ActiveSession,
  setup: FactorSetupRow,
  factor: { type: FactorType; amr: AuthMethod[]; details: Record<string, unknown> },
  ctx: RequestContext,
  insertFactor: (trx: Transaction<Database>) => Promise<void>,
): Promise<ConfirmedFactor> {
  return deps.accounts.apply(session.userId, ctx.now, {
    actingSession: session,
    voidsSetups: true,
    run: async (trx, account) => {
      const outcome = decideConfirmation({
        sessionId: session.id,
        session: session.facts,
        setup: { sessionId: setup.session_id, accountEpoch: Number(setup.account_epoch), expiresAt: Number(setup.expires_at) },
        account,
        factorAmr: factor.amr,
        now: ctx.now,
        // I2 with the gate's window (roles as they are now, the session's risk).
        policy: account.freshness(session.risk),
        times: deps.sessions.times,
      });
      if (!(await deps.setups.consume(trx, setup.id, session.id, account.epoch, ctx.now))) throw new NoPendingSetupError();
      await insertFactor(trx);
      await deps.factors.refreshFactorMethods(trx, session.userId, ctx.now);
      let recoveryCodes: string[] | null = null;
      if (outcome.kind === 'first_factor') {
        const issued = issueRecoveryCodes(deps.hasher);
        await deps.recoveryCodes.replaceAll(trx, session.userId, issued.rows, ctx.now);
        recoveryCodes = issued.display;
      }
      await deps.log.record('mfa.factor_added', session.userId, ctx, { type: factor.type, factorId: setup.id, ...factor.details }, trx);
      if (outcome.kind === 'additional_factor') return { recoveryCodes, session: null, aal: assuranceLevel(session.facts) };
      const advanced = await deps.sessions.advance(session, outcome.session, ctx.now, trx);
      return { recoveryCodes, session: advanced, aal: assuranceLevel(advanced.facts) };
    },
  });
}

/**
 * Removes the session's factor `factorId` of `type` (404 for another type or account).
 * `beforeDelete` removes rows that hang on the factor (a passkey's credential).
 */
export async function removeFactor(
  deps: FactorChangeDeps,
  session: ActiveSession,
  factorId: string,
  type: FactorType,
  ctx: RequestContext,
  beforeDelete?: (trx: Transaction<Database>) => Promise<void>,
): Promise<void> {
  await deps.accounts.apply(session.userId, ctx.now, {
    actingSession: session,
    voidsSetups: true,
    run: async (trx) => {
      const factor = await trx
        .selectFrom('factors')
        .select('type')
        .where('id', '=', factorId)
        .where('user_id', '=', session.userId)
        .executeTakeFirst();
      if (!factor || factor.type !== type) throw new NotFoundError('No such factor.');
      await beforeDelete?.(trx);
      if (!(await deps.factors.delete(trx, session.userId, factorId))) throw new NotFoundError('No such factor.');
      const methods = await deps.factors.refreshFactorMethods(trx, session.userId, ctx.now);
      if (methods.length === 0) {
        if (deps.mfaRequired === 'all') {
          throw new InvalidRequestError('Your organisation requires a second factor: add another before removing this one.', [
            { path: 'factorId', message: 'last factor' },
          ]);
        }
        await deps.recoveryCodes.deleteAll(trx, session.userId);
      }
      await deps.log.record('mfa.factor_removed', session.userId, ctx, { type, factorId }, trx);
    },
  });
  for (const hook of deps.removedHooks) await hook(session.userId);
}
