/**
 * What adding or removing any second factor (TOTP or passkey) does to the account, in one
 * place: the gate's `factor_methods`, recovery codes (issued with the first factor, deleted
 * with the last), the last-factor rule under GATEHOUSE_MFA_REQUIRED=all, the security log
 * and the factor-removed hooks (trusted devices).
 */
import type { Kysely, Transaction } from 'kysely';
import { InvalidRequestError, NotFoundError } from '../core/errors.js';
import type { FactorStore, RecoveryCodeStore } from '../store/factors.js';
import type { Database } from '../store/schema.js';
import type { RequestContext } from './context.js';
import type { KeyedHasher } from './keys.js';
import { issueRecoveryCodes } from './recovery-codes.js';
import type { SecurityLog } from './security-log.js';
import type { ActiveSession } from './sessions.js';

export interface FactorChangeDeps {
  db: Kysely<Database>;
  factors: FactorStore;
  recoveryCodes: RecoveryCodeStore;
  log: SecurityLog;
}

/**
 * Inside the transaction that confirmed a factor: refreshes the account's factor methods
 * and, when it is the account's first factor, issues recovery codes (shown once; else null).
 */
export async function settleFactorAdded(
  deps: Pick<FactorChangeDeps, 'factors' | 'recoveryCodes'> & { hasher: KeyedHasher },
  trx: Transaction<Database>,
  userId: string,
  hadFactor: boolean,
  now: number,
): Promise<string[] | null> {
  await deps.factors.refreshFactorMethods(trx, userId, now);
  if (hadFactor) return null;
  const issued = issueRecoveryCodes(deps.hasher);
  await deps.recoveryCodes.replaceAll(trx, userId, issued.rows, now);
  return issued.display;
}

/**
 * Removes the session's factor `factorId` of `type` (404 for another type or account).
 * `beforeDelete` removes rows that hang on the factor (a passkey's credential). An
 * unconfirmed factor (an enrolment in progress) goes silently and may always go.
 */
export async function removeFactor(
  deps: FactorChangeDeps & { mfaRequired: 'off' | 'all'; hooks: ReadonlyArray<(userId: string) => Promise<void>> },
  session: ActiveSession,
  factorId: string,
  type: 'totp' | 'webauthn',
  ctx: RequestContext,
  beforeDelete?: (trx: Transaction<Database>) => Promise<void>,
): Promise<void> {
  const factor = await deps.factors.findForUser(session.userId, factorId);
  if (!factor || factor.type !== type) throw new NotFoundError('No such factor.');
  const confirmed = factor.confirmed_at !== null;
  await deps.db.transaction().execute(async (trx) => {
    await beforeDelete?.(trx);
    if (!(await deps.factors.delete(trx, session.userId, factorId))) throw new NotFoundError('No such factor.');
    const methods = await deps.factors.refreshFactorMethods(trx, session.userId, ctx.now);
    if (methods.length === 0) {
      if (deps.mfaRequired === 'all' && confirmed) {
        throw new InvalidRequestError('Your organisation requires a second factor: add another before removing this one.', [
          { path: 'factorId', message: 'last factor' },
        ]);
      }
      await deps.recoveryCodes.deleteAll(trx, session.userId);
    }
    if (confirmed) await deps.log.record('mfa.factor_removed', session.userId, ctx, { type, factorId }, trx);
  });
  if (confirmed) for (const hook of deps.hooks) await hook(session.userId);
}
