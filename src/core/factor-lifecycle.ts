/**
 * The factor lifecycle as transitions of the session state machine (pure, no I/O):
 *
 *   setup ──(same session, same account epoch, unexpired)──▶ confirm ──▶ factor
 *
 * Invariants (docs/security.md lists the tests that hold each):
 *
 * - I1: a session gains aal 2 or freshness only by verifying a factor that was confirmed
 *   before that verification began. The single exception: the first factor of an account
 *   that had none, confirmed by the session that began that set-up.
 * - I2: confirming a factor on an account that already has one is ★: it needs freshness of
 *   an existing factor at confirmation time, and never makes the session fresh.
 * - I3: an unconfirmed set-up belongs to one session, expires after SETUP_TTL_SECONDS and is
 *   void after any security change of the account (factor added or removed, password
 *   changed or reset, e-mail changed: each moves the account's epoch) and with its session
 *   (logout, revocation).
 * - I4: the factor list the gate and login read equals the confirmed factors: every
 *   change runs under the account lock (services/account-changes.ts).
 *
 * The caller evaluates `decideConfirmation` inside the transaction that holds the account
 * lock, with the account's factors and epoch as read under that lock.
 */
import { NoPendingSetupError } from './errors.js';
import { authorize, type FreshnessPolicy } from './requirements.js';
import { completeSecondFactor, type AuthMethod, type SessionFacts, type SessionTimes } from './session-state.js';

/** I3: how long an unconfirmed set-up lives (the contract allows at most 10 minutes). */
export const SETUP_TTL_SECONDS = 600;

export type FactorType = 'totp' | 'webauthn';

/** An unconfirmed set-up, as stored. */
export interface SetupFacts {
  sessionId: string;
  /** The account's security epoch when the set-up began. */
  accountEpoch: number;
  expiresAt: number;
}

/** The account as read under its lock. */
export interface LockedAccountFacts {
  epoch: number;
  /** Second-factor methods of the confirmed factors, e.g. ['totp', 'recovery_code']. */
  factorMethods: string[];
}

export function newSetup(sessionId: string, accountEpoch: number, now: number): SetupFacts {
  return { sessionId, accountEpoch, expiresAt: now + SETUP_TTL_SECONDS * 1000 };
}

/** I3: whether this session may still confirm this set-up. */
export function isSetupLive(setup: SetupFacts, sessionId: string, account: LockedAccountFacts, now: number): boolean {
  return setup.sessionId === sessionId && setup.accountEpoch === account.epoch && now < setup.expiresAt;
}

export type ConfirmationOutcome =
  /** The account's first factor: the session becomes full, aal 2 (I1's exception). */
  | { kind: 'first_factor'; session: SessionFacts }
  /** An additional factor: the session's facts do not change (I2). */
  | { kind: 'additional_factor' };

/**
 * Decides a factor confirmation. Throws NoPendingSetupError (I3) or StepUpRequiredError
 * (I2); the caller throws away the set-up and the factor in either case.
 */
export function decideConfirmation(input: {
  sessionId: string;
  session: SessionFacts;
  setup: SetupFacts | null;
  account: LockedAccountFacts;
  /** amr of the factor being confirmed (a TOTP code: otp; a passkey: hwk/swk, user). */
  factorAmr: AuthMethod[];
  now: number;
  policy: FreshnessPolicy;
  times: SessionTimes;
}): ConfirmationOutcome {
  const { session, setup, account, now } = input;
  if (!setup || !isSetupLive(setup, input.sessionId, account, now)) throw new NoPendingSetupError();
  if (session.state === 'pending') throw new NoPendingSetupError();
  if (account.factorMethods.length === 0) {
    return { kind: 'first_factor', session: completeSecondFactor(session, input.factorAmr, now, input.times) };
  }
  // I2: judged with the factors the account has now, not those the gate saw.
  const denied = authorize(
    { session: 'enrolling', fresh: true },
    { kind: 'session', session, account: { factorMethods: account.factorMethods } },
    now,
    input.policy,
  );
  if (denied) throw denied;
  return { kind: 'additional_factor' };
}
