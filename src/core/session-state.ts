/**
 * The session state machine. Every way of signing in (password, remember-me, trusted
 * device, reset, later OIDC and passkeys) goes through these functions, so there is one
 * place that decides whether a session is pending, enrolling or full.
 *
 *   none ──password──▶ pending ──second factor──▶ full
 *        ──password (MFA policy, no factor)──▶ enrolling ──factor confirmed──▶ full
 *                                               └─the account gains a factor elsewhere: may verify
 *                                                 it as if pending (`awaitsSecondFactor`)──▶ full
 *        ──password (no factor, no policy)──▶ full (aal 1)
 *
 * Pure: no I/O, times are epoch milliseconds passed in by the caller.
 */

export type SessionState = 'pending' | 'enrolling' | 'full';

/** Authentication method references (RFC 8176 values, plus two of ours). */
export type AuthMethod =
  | 'pwd' // password
  | 'otp' // TOTP or a one-time recovery code
  | 'mfa' // more than one factor was verified
  | 'hwk' // hardware-bound key (WebAuthn, not backed up)
  | 'swk' // software/synced key (WebAuthn passkey that may be backed up)
  | 'user' // user verification (PIN/biometric) on the authenticator
  | 'trusted_device' // a remembered device stood in for the second factor
  | 'remember_me' // restored from a remember-me token, no password this session
  | 'fed' // signed in at a configured upstream OpenID Provider (federated login), no password
  | 'fed_mfa'; // that upstream's acr/amr is configured as trusted MFA: it stood in for the second factor

export interface SessionTimes {
  pendingTtlSeconds: number;
  sessionTtlSeconds: number;
  sessionIdleTtlSeconds: number;
}

/** What the state machine needs to know about a session. */
export interface SessionFacts {
  state: SessionState;
  amr: AuthMethod[];
  /** When the session was established (first credential). */
  authTime: number;
  /** Last time the password was entered in this session, if ever. */
  passwordAt: number | null;
  /** Last time a real second factor was verified in this session, if ever. */
  mfaAt: number | null;
  /**
   * Last time a user-verified WebAuthn check succeeded in this session, if ever. Only this
   * satisfies GATEHOUSE_STEP_UP_PHISHING_RESISTANT; a later TOTP step-up does not move it.
   */
  webauthnAt?: number | null;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end of life. Pending and enrolling sessions get the short pending TTL. */
  expiresAt: number;
}

/** `all`: every account must enrol a second factor before it gets a full session. */
export const MFA_POLICIES = ['off', 'all'] as const;
export type MfaPolicy = (typeof MFA_POLICIES)[number];

export interface AccountFactsForLogin {
  hasSecondFactor: boolean;
  mfaPolicy: MfaPolicy;
}

export type FirstFactor =
  | { kind: 'password' }
  | { kind: 'remember_me' }
  /** Password plus a valid trusted-device cookie for this account. */
  | { kind: 'password_on_trusted_device' }
  /**
   * A linked upstream OpenID Provider's sign-in. A first factor only, unless the upstream
   * reported an acr/amr its configuration trusts as MFA (`trustedMfa`).
   */
  | { kind: 'upstream'; trustedMfa: boolean }
  /**
   * Password plus the one-time recovery link an admin's factor reset mailed: always
   * enrolling (the account has no factor left and must set one up before anything else).
   */
  | { kind: 'recovery_link' };

function stateAfterFirstFactor(account: AccountFactsForLogin, factor: FirstFactor): SessionState {
  if (factor.kind === 'recovery_link') return 'enrolling';
  // Trusted upstream MFA is MFA: it meets the second step and the MFA-required policy.
  if (factor.kind === 'upstream' && factor.trustedMfa) return 'full';
  if (account.hasSecondFactor) {
    // A trusted device may only stand in for the factor together with the password.
    return factor.kind === 'password_on_trusted_device' ? 'full' : 'pending';
  }
  // Remember-me never counts as enrolment: with MFA required, the account must still enrol.
  return account.mfaPolicy === 'all' ? 'enrolling' : 'full';
}

/** The new session after a first factor. */
export function startSession(account: AccountFactsForLogin, factor: FirstFactor, now: number, times: SessionTimes): SessionFacts {
  const state = stateAfterFirstFactor(account, factor);
  const amr = firstFactorAmr(factor);
  const lifetime = state === 'full' ? times.sessionTtlSeconds : times.pendingTtlSeconds;
  return {
    state,
    amr,
    authTime: now,
    // Only a password entered here (alone, on a trusted device, or with a recovery link)
    // moves passwordAt: an upstream sign-in or a remember-me restore is never fresh (★).
    passwordAt: factor.kind === 'upstream' || factor.kind === 'remember_me' ? null : now,
    mfaAt: null,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + lifetime * 1000,
  };
}

function firstFactorAmr(factor: FirstFactor): AuthMethod[] {
  switch (factor.kind) {
    case 'remember_me':
      return ['remember_me'];
    case 'password':
    case 'recovery_link':
      return ['pwd'];
    case 'password_on_trusted_device':
      return ['pwd', 'trusted_device'];
    case 'upstream':
      return factor.trustedMfa ? ['fed', 'fed_mfa', 'mfa'] : ['fed'];
  }
}

export class IllegalTransitionError extends Error {}

/**
 * May verify a second factor to become full: pending, or enrolling while the account has
 * gained a factor since the sign-in (confirmed in another session). Such a session would
 * otherwise be stuck: adding one more factor is ★ (I2), which it cannot be. Everything
 * else still answers it as an enrolling session (contract: `enrollment_required`).
 */
export function awaitsSecondFactor(session: Pick<SessionFacts, 'state'>, factorMethods: readonly string[]): boolean {
  return session.state === 'pending' || (session.state === 'enrolling' && factorMethods.length > 0);
}

/**
 * A second factor was verified: login completion (pending), step-up (full) or the first
 * enrolment (enrolling). The caller must also replace the session token.
 */
export function completeSecondFactor(session: SessionFacts, methodAmr: AuthMethod[], now: number, times: SessionTimes): SessionFacts {
  const becomesFull = session.state !== 'full';
  const amr = new Set<AuthMethod>(session.amr.filter((m) => m !== 'trusted_device'));
  for (const m of methodAmr) amr.add(m);
  if (amr.has('pwd') || amr.has('remember_me') || amr.has('fed')) amr.add('mfa');
  return {
    ...session,
    state: 'full',
    amr: [...amr],
    mfaAt: now,
    webauthnAt: isPhishingResistant(methodAmr) ? now : (session.webauthnAt ?? null),
    lastSeenAt: now,
    // The absolute lifetime starts when the session becomes full; step-up never extends it.
    expiresAt: becomesFull ? now + times.sessionTtlSeconds * 1000 : session.expiresAt,
  };
}

/** A WebAuthn check (hardware- or software-bound key) with user verification. */
export function isPhishingResistant(methodAmr: readonly AuthMethod[]): boolean {
  return (methodAmr.includes('hwk') || methodAmr.includes('swk')) && methodAmr.includes('user');
}

/** The password was entered again in a full session (re-authentication). */
export function recordPassword(session: SessionFacts, now: number): SessionFacts {
  if (session.state !== 'full') throw new IllegalTransitionError('reauth needs a full session');
  const amr = session.amr.includes('pwd') ? session.amr : [...session.amr, 'pwd' as const];
  return { ...session, amr, passwordAt: now, lastSeenAt: now };
}

export function isExpired(session: SessionFacts, now: number, times: SessionTimes): boolean {
  if (now >= session.expiresAt) return true;
  return now >= session.lastSeenAt + times.sessionIdleTtlSeconds * 1000;
}

/** Authenticator assurance level as reported to clients. */
export function assuranceLevel(session: SessionFacts): 1 | 2 {
  if (session.state !== 'full') return 1;
  return session.mfaAt !== null || session.amr.includes('trusted_device') || session.amr.includes('fed_mfa') ? 2 : 1;
}

/**
 * Fresh enough for a sensitive action: the strongest factor the account has was checked
 * within maxAge. A trusted device or remember-me token never makes a session fresh.
 */
export function isFresh(session: SessionFacts, hasSecondFactor: boolean, now: number, maxAgeSeconds: number): boolean {
  const checkedAt = hasSecondFactor ? session.mfaAt : session.passwordAt;
  return checkedAt !== null && now - checkedAt <= maxAgeSeconds * 1000;
}

/** Last-seen is written at most once per this interval so the gate does not write per request. */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

/**
 * True when last-seen should be written. The interval is at most a quarter of the idle
 * TTL (when given), so an active session never idles out between writes however short
 * the idle TTL is configured.
 */
export function needsTouch(session: SessionFacts, now: number, idleTtlSeconds?: number): boolean {
  const resolution = idleTtlSeconds === undefined ? LAST_SEEN_RESOLUTION_MS : Math.min(LAST_SEEN_RESOLUTION_MS, idleTtlSeconds * 250);
  return now - session.lastSeenAt >= resolution;
}
