/**
 * Federated login: Gatehouse as relying party of an upstream OpenID Provider. Pure
 * decisions, the I/O lives in services/federation.ts.
 *
 *   upstream sign-in ──identity linked──▶ startSession({ kind: 'upstream', trustedMfa })
 *                                          (pending/enrolling/full by the state machine)
 *                    ──not linked──▶ link pending (no session) ──a full, fresh session of
 *                                     the target account confirms──▶ linked
 *
 * An upstream sign-in is a first factor only: the session it opens owes the account's own
 * second factor, unless the upstream's acr/amr is configured as trusted MFA. It is never
 * fresh (★ needs a factor checked by Gatehouse). A matching e-mail address never links by
 * itself: the link waits until the account it names signs in with its own factors.
 *
 * An upstream configured with `createAccounts` creates an account for an identity whose
 * verified address no account has; that account starts with the upstream as its only
 * first factor (no usable password, no second factor) and enrols per the MFA policy.
 */

export interface UpstreamTrust {
  /** acr values of this upstream that count as MFA (e.g. `urn:gatehouse:aal2`). */
  trustedAcr: readonly string[];
  /** amr values of this upstream that count as MFA when present (e.g. `mfa`, `hwk`). */
  trustedAmr: readonly string[];
}

/** What the upstream asserted in its (verified) ID token. */
export interface UpstreamAssertion {
  acr?: unknown;
  amr?: unknown;
}

/**
 * Whether the upstream's assertion meets its configured trust. Only the configured values
 * count; an upstream claiming `mfa` is ignored unless `mfa` is listed for it.
 */
export function upstreamMfaTrusted(assertion: UpstreamAssertion, trust: UpstreamTrust): boolean {
  if (typeof assertion.acr === 'string' && trust.trustedAcr.includes(assertion.acr)) return true;
  const amr = Array.isArray(assertion.amr) ? assertion.amr.filter((m): m is string => typeof m === 'string') : [];
  return amr.some((m) => trust.trustedAmr.includes(m));
}

export type UpstreamLoginStep =
  /** The identity is linked: open a session for that account. */
  | { kind: 'sign_in'; userId: string }
  /** A new account for the identity (its upstream allows it), linked at once; its session has the upstream as first factor only. */
  | { kind: 'create_account' }
  /** Not linked: remember the identity; a full, fresh session of `targetUserId` (or, when null, of any account) may link it. */
  | { kind: 'link_pending'; targetUserId: string | null };

export interface UpstreamLoginInput {
  linkedUserId: string | null;
  /** The local account with the upstream's e-mail address, counted only when the upstream verified the address. */
  emailMatchUserId: string | null;
  emailVerified: boolean;
  /** The account of the browser's full Gatehouse session, if any. */
  signedInUserId: string | null;
  /** The upstream may create accounts (`createAccounts`), and the identity has a well-formed e-mail address. */
  mayCreateAccount?: boolean;
}

export function decideUpstreamLogin(input: UpstreamLoginInput): UpstreamLoginStep {
  if (input.linkedUserId) return { kind: 'sign_in', userId: input.linkedUserId };
  if (input.signedInUserId) return { kind: 'link_pending', targetUserId: input.signedInUserId };
  // A new account only for an address the upstream verified and no account has: an
  // address an account has is never taken over, it waits for that account's own factors.
  if (input.mayCreateAccount && input.emailVerified && input.emailMatchUserId === null) return { kind: 'create_account' };
  return { kind: 'link_pending', targetUserId: input.emailVerified ? input.emailMatchUserId : null };
}

export type LinkRefusal = 'not_full' | 'other_account' | 'expired';

/**
 * Whether a session may confirm a pending link: full (every factor of the account's
 * sign-in done), of the account the link names (when it names one), in time. Freshness
 * (★) is the gate's and the account lock's (`AccountChanges.apply` with `fresh`).
 */
export function mayConfirmLink(input: {
  sessionState: 'pending' | 'enrolling' | 'full' | null;
  sessionUserId: string | null;
  targetUserId: string | null;
  expiresAt: number;
  now: number;
}): LinkRefusal | null {
  if (input.now >= input.expiresAt) return 'expired';
  if (input.sessionState !== 'full' || !input.sessionUserId) return 'not_full';
  if (input.targetUserId !== null && input.targetUserId !== input.sessionUserId) return 'other_account';
  return null;
}
