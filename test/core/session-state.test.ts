import { describe, expect, it } from 'vitest';
import {
  assuranceLevel,
  completeSecondFactor,
  IllegalTransitionError,
  isExpired,
  isFresh,
  needsTouch,
  recordPassword,
  startSession,
  type SessionFacts,
  type SessionTimes,
} from '../../src/core/session-state.js';

const times: SessionTimes = { pendingTtlSeconds: 300, sessionTtlSeconds: 86_400, sessionIdleTtlSeconds: 3_600 };
const T0 = 1_700_000_000_000;
const s = (n: number) => n * 1000;

const withFactor = { hasSecondFactor: true, mfaPolicy: 'off' as const };
const noFactor = { hasSecondFactor: false, mfaPolicy: 'off' as const };
const noFactorPolicyAll = { hasSecondFactor: false, mfaPolicy: 'all' as const };
const withFactorPolicyAll = { hasSecondFactor: true, mfaPolicy: 'all' as const };

describe('startSession (first factor)', () => {
  it('password on an account with a second factor → pending, short TTL, no mfaAt', () => {
    const f = startSession(withFactor, { kind: 'password' }, T0, times);
    expect(f).toMatchObject({ state: 'pending', amr: ['pwd'], authTime: T0, passwordAt: T0, mfaAt: null, createdAt: T0, lastSeenAt: T0 });
    expect(f.expiresAt).toBe(T0 + s(300));
    expect(assuranceLevel(f)).toBe(1);
  });

  it('password on an account with a factor is pending under the MFA policy too', () => {
    expect(startSession(withFactorPolicyAll, { kind: 'password' }, T0, times).state).toBe('pending');
  });

  it('password, no factor, no policy → full at aal 1 with the absolute TTL', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, times);
    expect(f).toMatchObject({ state: 'full', amr: ['pwd'], passwordAt: T0, mfaAt: null });
    expect(f.expiresAt).toBe(T0 + s(86_400));
    expect(assuranceLevel(f)).toBe(1);
  });

  it('password, no factor, MFA required → enrolling with the short TTL', () => {
    const f = startSession(noFactorPolicyAll, { kind: 'password' }, T0, times);
    expect(f.state).toBe('enrolling');
    expect(f.expiresAt).toBe(T0 + s(300));
    expect(assuranceLevel(f)).toBe(1);
  });

  it('remember-me on an account with a factor → pending (never skips the factor)', () => {
    const f = startSession(withFactor, { kind: 'remember_me' }, T0, times);
    expect(f).toMatchObject({ state: 'pending', amr: ['remember_me'], passwordAt: null, mfaAt: null });
  });

  it('remember-me without a factor → full at aal 1, or enrolling under the MFA policy', () => {
    const full = startSession(noFactor, { kind: 'remember_me' }, T0, times);
    expect(full).toMatchObject({ state: 'full', amr: ['remember_me'], passwordAt: null });
    expect(assuranceLevel(full)).toBe(1);
    expect(startSession(noFactorPolicyAll, { kind: 'remember_me' }, T0, times).state).toBe('enrolling');
  });

  it('password on a trusted device → full, amr shows the trusted device, no mfaAt', () => {
    const f = startSession(withFactor, { kind: 'password_on_trusted_device' }, T0, times);
    expect(f).toMatchObject({ state: 'full', amr: ['pwd', 'trusted_device'], passwordAt: T0, mfaAt: null });
    expect(f.expiresAt).toBe(T0 + s(86_400));
    expect(assuranceLevel(f)).toBe(2);
  });

  it('a trusted device on an account without a factor changes nothing about enrolment', () => {
    expect(startSession(noFactorPolicyAll, { kind: 'password_on_trusted_device' }, T0, times).state).toBe('enrolling');
  });
});

describe('completeSecondFactor', () => {
  it('pending → full: mfaAt set, amr gains otp and mfa, absolute lifetime starts now', () => {
    const pending = startSession(withFactor, { kind: 'password' }, T0, times);
    const full = completeSecondFactor(pending, ['otp'], T0 + s(10), times);
    expect(full.state).toBe('full');
    expect(full.mfaAt).toBe(T0 + s(10));
    expect(full.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(full.expiresAt).toBe(T0 + s(10) + s(86_400));
    expect(full.authTime).toBe(T0);
    expect(full.passwordAt).toBe(T0);
    expect(assuranceLevel(full)).toBe(2);
    expect(pending.state).toBe('pending'); // pure: input untouched
  });

  it('enrolling → full when the first factor is confirmed', () => {
    const enrolling = startSession(noFactorPolicyAll, { kind: 'password' }, T0, times);
    const full = completeSecondFactor(enrolling, ['otp'], T0 + s(20), times);
    expect(full).toMatchObject({ state: 'full', mfaAt: T0 + s(20) });
    expect(full.expiresAt).toBe(T0 + s(20) + s(86_400));
    expect(full.amr).toContain('mfa');
  });

  it('remember-me + second factor → full with mfa in amr', () => {
    const pending = startSession(withFactor, { kind: 'remember_me' }, T0, times);
    const full = completeSecondFactor(pending, ['otp'], T0 + 1, times);
    expect(full.amr).toEqual(['remember_me', 'otp', 'mfa']);
  });

  it('step-up in a full session refreshes mfaAt but never extends the absolute lifetime', () => {
    const full = completeSecondFactor(startSession(withFactor, { kind: 'password' }, T0, times), ['otp'], T0, times);
    const later = T0 + s(5_000);
    const stepped = completeSecondFactor(full, ['otp'], later, times);
    expect(stepped.mfaAt).toBe(later);
    expect(stepped.expiresAt).toBe(full.expiresAt);
    expect(stepped.lastSeenAt).toBe(later);
    expect(new Set(stepped.amr).size).toBe(stepped.amr.length); // no duplicates
  });

  it('a real second factor replaces the trusted-device stand-in', () => {
    const trusted = startSession(withFactor, { kind: 'password_on_trusted_device' }, T0, times);
    const stepped = completeSecondFactor(trusted, ['otp'], T0 + 1, times);
    expect(stepped.amr).not.toContain('trusted_device');
    expect(stepped.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(stepped.mfaAt).toBe(T0 + 1);
  });
});

describe('recordPassword (reauth)', () => {
  it('records a fresh password time in a full session', () => {
    const full = startSession(noFactor, { kind: 'remember_me' }, T0, times);
    const r = recordPassword(full, T0 + s(100));
    expect(r.passwordAt).toBe(T0 + s(100));
    expect(r.amr).toEqual(['remember_me', 'pwd']);
    expect(recordPassword(r, T0 + s(200)).amr).toEqual(['remember_me', 'pwd']);
  });

  it('is refused for pending and enrolling sessions', () => {
    expect(() => recordPassword(startSession(withFactor, { kind: 'password' }, T0, times), T0)).toThrow(IllegalTransitionError);
    expect(() => recordPassword(startSession(noFactorPolicyAll, { kind: 'password' }, T0, times), T0)).toThrow(IllegalTransitionError);
  });
});

describe('expiry', () => {
  const short: SessionTimes = { pendingTtlSeconds: 5, sessionTtlSeconds: 100, sessionIdleTtlSeconds: 20 };

  it('a pending session dies after the pending TTL', () => {
    const p = startSession(withFactor, { kind: 'password' }, T0, short);
    expect(isExpired(p, T0 + s(5) - 1, short)).toBe(false);
    expect(isExpired(p, T0 + s(5), short)).toBe(true);
  });

  it('an enrolling session also lives only the pending TTL', () => {
    const e = startSession(noFactorPolicyAll, { kind: 'password' }, T0, short);
    expect(isExpired(e, T0 + s(5), short)).toBe(true);
  });

  it('a full session dies after the idle TTL without activity', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, short);
    expect(isExpired(f, T0 + s(20) - 1, short)).toBe(false);
    expect(isExpired(f, T0 + s(20), short)).toBe(true);
    // Activity moves the idle deadline.
    expect(isExpired({ ...f, lastSeenAt: T0 + s(15) }, T0 + s(30), short)).toBe(false);
  });

  it('a full session dies at its absolute end however active it is', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, short);
    const active = { ...f, lastSeenAt: T0 + s(99) };
    expect(isExpired(active, T0 + s(100) - 1, short)).toBe(false);
    expect(isExpired(active, T0 + s(100), short)).toBe(true);
  });

  it('the absolute lifetime of a login completed by MFA counts from verification', () => {
    const p = startSession(withFactor, { kind: 'password' }, T0, short);
    const f = completeSecondFactor(p, ['otp'], T0 + s(4), short);
    expect(isExpired({ ...f, lastSeenAt: T0 + s(100) }, T0 + s(103), short)).toBe(false);
    expect(isExpired({ ...f, lastSeenAt: T0 + s(100) }, T0 + s(104), short)).toBe(true);
  });

  it('last-seen is written at most once per minute for long idle TTLs', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, times);
    expect(needsTouch(f, T0 + 59_999)).toBe(false);
    expect(needsTouch(f, T0 + 60_000)).toBe(true);
    expect(needsTouch(f, T0 + 59_999, times.sessionIdleTtlSeconds)).toBe(false);
  });

  it('with a short idle TTL, last-seen is written often enough to keep an active session alive', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, short);
    // idle 20 s: written every 5 s at most, well before the idle deadline.
    expect(needsTouch(f, T0 + 4_999, short.sessionIdleTtlSeconds)).toBe(false);
    expect(needsTouch(f, T0 + 5_000, short.sessionIdleTtlSeconds)).toBe(true);
  });
});

describe('freshness', () => {
  const maxAge = 900;

  it('account with a factor: fresh only within maxAge of the last second-factor check', () => {
    const full = completeSecondFactor(startSession(withFactor, { kind: 'password' }, T0, times), ['otp'], T0, times);
    expect(isFresh(full, true, T0 + s(maxAge), maxAge)).toBe(true);
    expect(isFresh(full, true, T0 + s(maxAge) + 1, maxAge)).toBe(false);
  });

  it('account with a factor: a fresh password does not count', () => {
    const full = completeSecondFactor(startSession(withFactor, { kind: 'password' }, T0, times), ['otp'], T0, times);
    const reauthed = recordPassword(full, T0 + s(2_000));
    expect(isFresh(reauthed, true, T0 + s(2_001), maxAge)).toBe(false);
  });

  it('account without a factor: the password time counts (login, then reauth)', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, times);
    expect(isFresh(f, false, T0 + s(maxAge), maxAge)).toBe(true);
    expect(isFresh(f, false, T0 + s(maxAge) + 1, maxAge)).toBe(false);
    const r = recordPassword(f, T0 + s(1_000));
    expect(isFresh(r, false, T0 + s(1_500), maxAge)).toBe(true);
  });

  it('a session restored by remember-me is never fresh until the password is entered', () => {
    const f = startSession(noFactor, { kind: 'remember_me' }, T0, times);
    expect(isFresh(f, false, T0, maxAge)).toBe(false);
    expect(isFresh(recordPassword(f, T0 + 5), false, T0 + 10, maxAge)).toBe(true);
  });

  it('a trusted-device session is never fresh, even right after login', () => {
    const f = startSession(withFactor, { kind: 'password_on_trusted_device' }, T0, times);
    expect(isFresh(f, true, T0, maxAge)).toBe(false);
    expect(isFresh(recordPassword(f, T0 + 1), true, T0 + 2, maxAge)).toBe(false);
    // Only a real second factor makes it fresh.
    expect(isFresh(completeSecondFactor(f, ['otp'], T0 + 3, times), true, T0 + 4, maxAge)).toBe(true);
  });

  it('an account that gained a factor elsewhere needs that factor, not its old password time', () => {
    const f = startSession(noFactor, { kind: 'password' }, T0, times);
    expect(isFresh(f, true, T0 + 1, maxAge)).toBe(false);
  });
});
