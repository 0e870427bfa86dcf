/**
 * What a route requires, and the pure decision whether a principal meets it. The HTTP
 * gate resolves the principal (one indexed read) and calls `authorize`; nothing else in
 * Gatehouse decides access.
 */
import {
  EnrollmentRequiredError,
  ForbiddenError,
  GatehouseError,
  InsufficientScopeError,
  InteractiveSessionRequiredError,
  MfaRequiredError,
  NoPendingAuthenticationError,
  StepUpRequiredError,
  UnauthenticatedError,
} from './errors.js';
import type { Scope } from './scopes.js';
import { awaitsSecondFactor, isFresh, type SessionFacts } from './session-state.js';

/**
 * - `none`: public (sign up, log in, forgot password, health).
 * - `any`: any session state or none (logout).
 * - `pending`: exactly a session waiting for its second factor (mfa/verify).
 * - `enrolling`: an enrolling or full session (TOTP setup/confirm).
 * - `full`: a full session, or an API token when `scope` is given.
 */
export type SessionRequirement = 'none' | 'any' | 'pending' | 'enrolling' | 'full';

export interface Requirement {
  session: SessionRequirement;
  /** A sensitive action: needs a fresh check of the account's strongest factor. */
  fresh?: boolean;
  /** Personal API tokens holding this scope may call the route. Without it, tokens are refused. */
  scope?: Scope;
  /** Only sessions of accounts with this role (e.g. `admin` for /api/admin); never an API token. */
  role?: string;
}

export interface AccountFacts {
  /** Second-factor methods of the account, e.g. ['totp', 'recovery_code']; empty: none. */
  factorMethods: string[];
  /**
   * A role requires a second factor, the account has none that counts and its grace period
   * ended (core/role-policy.ts): a full session is treated as enrolling.
   */
  enrolmentDue?: boolean;
  /** The account's roles (for `requires({ role })`). */
  roles?: readonly string[];
}

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'session'; session: SessionFacts; account: AccountFacts }
  /**
   * `enrolmentDue`: the token's account must enrol a second factor first (a role requires
   * one and its grace ended, core/role-policy.ts): its tokens are refused as its sessions are.
   */
  | { kind: 'api_token'; scopes: readonly Scope[]; enrolmentDue?: boolean };

export interface FreshnessPolicy {
  stepUpMaxAgeSeconds: number;
  /** When true only a fresh WebAuthn check counts (GATEHOUSE_STEP_UP_PHISHING_RESISTANT). */
  phishingResistantOnly?: boolean;
}

/** Methods a client can use to step up, in the order they should be offered. */
export function stepUpMethods(account: AccountFacts, policy: FreshnessPolicy): string[] {
  if (account.factorMethods.length === 0) return ['password'];
  // An account without a passkey steps up with what it has (else it could never add one).
  if (policy.phishingResistantOnly && account.factorMethods.includes('webauthn')) return ['webauthn'];
  return account.factorMethods;
}

/** Returns the error to answer with, or null when the principal may proceed. */
export function authorize(requirement: Requirement, principal: Principal, now: number, policy: FreshnessPolicy): GatehouseError | null {
  if (requirement.session === 'none' || requirement.session === 'any') return null;

  if (principal.kind === 'api_token') {
    if (requirement.role !== undefined) return new InteractiveSessionRequiredError();
    if (!requirement.scope || requirement.session !== 'full') return new InteractiveSessionRequiredError();
    if (principal.enrolmentDue === true) return new EnrollmentRequiredError();
    if (!principal.scopes.includes(requirement.scope)) return new InsufficientScopeError(requirement.scope);
    // A token is never an interactive, fresh check of anything.
    if (requirement.fresh) return new InteractiveSessionRequiredError();
    return null;
  }

  if (requirement.session === 'pending') {
    return principal.kind === 'session' && awaitsSecondFactor(principal.session, principal.account.factorMethods)
      ? null
      : new NoPendingAuthenticationError();
  }

  if (principal.kind === 'anonymous') return new UnauthenticatedError();
  const { session, account } = principal;
  if (session.state === 'pending') return new MfaRequiredError(account.factorMethods);
  if ((session.state === 'enrolling' || account.enrolmentDue === true) && requirement.session === 'full') {
    return new EnrollmentRequiredError();
  }
  if (requirement.role !== undefined && !(account.roles ?? []).includes(requirement.role)) return new ForbiddenError(requirement.role);

  if (requirement.fresh && !isFreshFor(principal, now, policy)) {
    return new StepUpRequiredError(stepUpMethods(account, policy), policy.stepUpMaxAgeSeconds);
  }
  return null;
}

function isFreshFor(principal: Extract<Principal, { kind: 'session' }>, now: number, policy: FreshnessPolicy): boolean {
  const { session, account } = principal;
  const hasFactor = account.factorMethods.length > 0;
  if (!isFresh(session, hasFactor, now, policy.stepUpMaxAgeSeconds)) return false;
  if (policy.phishingResistantOnly && account.factorMethods.includes('webauthn')) {
    // Only a fresh user-verified WebAuthn check counts; amr alone would also credit a
    // passkey used hours ago and followed by a TOTP step-up.
    const at = session.webauthnAt ?? null;
    return at !== null && now - at <= policy.stepUpMaxAgeSeconds * 1000;
  }
  return true;
}
