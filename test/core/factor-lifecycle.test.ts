import { describe, expect, it } from 'vitest';
import { NoPendingSetupError, StepUpRequiredError } from '../../src/core/errors.js';
import { decideConfirmation, isSetupLive, newSetup, SETUP_TTL_SECONDS } from '../../src/core/factor-lifecycle.js';
import { assuranceLevel, completeSecondFactor, startSession, type SessionTimes } from '../../src/core/session-state.js';

const times: SessionTimes = { pendingTtlSeconds: 300, sessionTtlSeconds: 86_400, sessionIdleTtlSeconds: 3_600 };
const policy = { stepUpMaxAgeSeconds: 900 };
const T0 = 1_700_000_000_000;
const SESSION = 'session-a';

const passwordOnly = startSession({ hasSecondFactor: false, mfaPolicy: 'off' }, { kind: 'password' }, T0, times);
const enrolling = startSession({ hasSecondFactor: false, mfaPolicy: 'all' }, { kind: 'password' }, T0, times);
const fullWithFactor = completeSecondFactor(
  startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password' }, T0, times),
  ['otp'],
  T0,
  times,
);
const noFactors = { epoch: 3, factorMethods: [] as string[] };
const hasPasskey = { epoch: 3, factorMethods: ['recovery_code', 'webauthn'] };

const decide = (over: Partial<Parameters<typeof decideConfirmation>[0]>) =>
  decideConfirmation({
    sessionId: SESSION,
    session: passwordOnly,
    setup: newSetup(SESSION, 3, T0),
    account: noFactors,
    factorAmr: ['otp'],
    now: T0 + 60_000,
    policy,
    times,
    ...over,
  });

describe('factor lifecycle: set-ups (I3)', () => {
  it('a set-up lives at most 10 minutes, for its session and its epoch only', () => {
    const setup = newSetup(SESSION, 3, T0);
    expect(SETUP_TTL_SECONDS).toBeLessThanOrEqual(600);
    expect(isSetupLive(setup, SESSION, noFactors, T0 + SETUP_TTL_SECONDS * 1000 - 1)).toBe(true);
    expect(isSetupLive(setup, SESSION, noFactors, T0 + SETUP_TTL_SECONDS * 1000)).toBe(false);
    expect(isSetupLive(setup, 'session-b', noFactors, T0)).toBe(false);
    expect(isSetupLive(setup, SESSION, { ...noFactors, epoch: 4 }, T0)).toBe(false);
  });

  it('confirming a missing, foreign, expired or void set-up is no_pending_setup', () => {
    expect(() => decide({ setup: null })).toThrow(NoPendingSetupError);
    expect(() => decide({ sessionId: 'session-b' })).toThrow(NoPendingSetupError);
    expect(() => decide({ now: T0 + SETUP_TTL_SECONDS * 1000 })).toThrow(NoPendingSetupError);
    expect(() => decide({ account: { ...noFactors, epoch: 4 } })).toThrow(NoPendingSetupError);
  });
});

describe('factor lifecycle: confirmation (I1, I2)', () => {
  it('the first factor of an account makes the confirming session full, aal 2 and fresh (I1 exception)', () => {
    const outcome = decide({});
    expect(outcome.kind).toBe('first_factor');
    if (outcome.kind !== 'first_factor') return;
    expect(outcome.session).toMatchObject({ state: 'full', mfaAt: T0 + 60_000 });
    expect(assuranceLevel(outcome.session)).toBe(2);
    const fromEnrolling = decide({ session: enrolling });
    expect(fromEnrolling.kind === 'first_factor' && fromEnrolling.session.state).toBe('full');
  });

  it('an additional factor needs a fresh existing factor at confirmation time, and changes nothing (I2)', () => {
    // The account gained a passkey after the set-up began: same epoch here, so only I2 stops it.
    expect(() => decide({ account: hasPasskey })).toThrow(StepUpRequiredError);
    expect(() => decide({ session: enrolling, account: hasPasskey })).toThrow(StepUpRequiredError);
    // Fresh a minute ago: allowed, and the outcome carries no new session facts.
    expect(decide({ session: fullWithFactor, account: hasPasskey })).toEqual({ kind: 'additional_factor' });
    // Stale by confirmation time, though it was fresh when the set-up began.
    expect(() =>
      decide({ session: fullWithFactor, account: hasPasskey, setup: newSetup(SESSION, 3, T0 + 899_000), now: T0 + 901_000 }),
    ).toThrow(StepUpRequiredError);
  });

  it('under the phishing-resistant policy only a fresh passkey check allows adding a factor to a passkey account', () => {
    const strict = { stepUpMaxAgeSeconds: 900, phishingResistantOnly: true };
    expect(() => decide({ session: fullWithFactor, account: hasPasskey, policy: strict })).toThrow(StepUpRequiredError);
    const passkeyFresh = completeSecondFactor(fullWithFactor, ['hwk', 'user'], T0, times);
    expect(decide({ session: passkeyFresh, account: hasPasskey, policy: strict }).kind).toBe('additional_factor');
  });

  it('a pending session never confirms a factor', () => {
    const pending = startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password' }, T0, times);
    expect(() => decide({ session: pending })).toThrow(NoPendingSetupError);
  });
});
