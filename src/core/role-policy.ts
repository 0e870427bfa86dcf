/**
 * MFA by role (pure). Accounts carry roles; each role may have a policy: whether a second
 * factor is required, which kinds of factor count, and a shorter step-up window. Across an
 * account's roles the strictest wins: required beats optional, the allowed kinds are the
 * intersection of every restriction, and the shortest window applies. The deployment's
 * own settings (GATEHOUSE_MFA_REQUIRED, GATEHOUSE_STEP_UP_MAX_AGE) are the floor.
 */
export const FACTOR_KINDS = ['totp', 'webauthn', 'recovery_code'] as const;
export type FactorKind = (typeof FACTOR_KINDS)[number];

export const ROLE_SHAPE = /^[a-z][a-z0-9_-]{0,31}$/;

export interface RolePolicy {
  mfa: 'required' | 'optional';
  /** Factor kinds that count for this role; absent: any. */
  factors?: FactorKind[];
  /** Freshness window for ★ actions (seconds); absent: the deployment's. */
  stepUpMaxAgeSeconds?: number;
}

export interface DeploymentPolicy {
  mfaRequired: 'off' | 'all';
  stepUpMaxAgeSeconds: number;
  /** Seconds an account that became subject to a role's `required` may still sign in without a factor. */
  enrolmentGraceSeconds: number;
}

/** The policy in effect for one account, with the reasons (shown on the settings page). */
export interface EffectivePolicy {
  mfa: 'required' | 'optional';
  /** Null: every kind counts. An empty list: nothing counts (contradictory roles; fail closed). */
  allowedFactors: FactorKind[] | null;
  stepUpMaxAgeSeconds: number;
  /** Required by the deployment for everyone (no grace) rather than by a role. */
  requiredByDeployment: boolean;
  /** Why: one sentence per rule that applies, e.g. "role admin: a second factor is required". */
  because: string[];
}

export function effectivePolicy(
  roles: readonly string[],
  policies: Readonly<Record<string, RolePolicy>>,
  base: DeploymentPolicy,
): EffectivePolicy {
  let mfa: EffectivePolicy['mfa'] = base.mfaRequired === 'all' ? 'required' : 'optional';
  let allowed: FactorKind[] | null = null;
  let window = base.stepUpMaxAgeSeconds;
  const because: string[] = base.mfaRequired === 'all' ? ['this server requires a second factor for every account'] : [];
  for (const role of [...new Set(roles)].sort()) {
    const policy = Object.hasOwn(policies, role) ? policies[role] : undefined;
    if (!policy) continue;
    if (policy.mfa === 'required') {
      mfa = 'required';
      because.push(`role ${role}: a second factor is required`);
    }
    if (policy.factors) {
      const kinds = policy.factors;
      allowed = allowed === null ? [...kinds] : allowed.filter((k) => kinds.includes(k));
      because.push(`role ${role}: only ${kinds.join(', ')} count`);
    }
    if (policy.stepUpMaxAgeSeconds !== undefined && policy.stepUpMaxAgeSeconds < window) {
      window = policy.stepUpMaxAgeSeconds;
      because.push(`role ${role}: sensitive actions need a check within ${policy.stepUpMaxAgeSeconds} s`);
    }
  }
  return { mfa, allowedFactors: allowed, stepUpMaxAgeSeconds: window, requiredByDeployment: base.mfaRequired === 'all', because };
}

/** The account's factors that count under the policy. */
export function allowedMethods(has: readonly string[], policy: Pick<EffectivePolicy, 'allowedFactors'>): string[] {
  const allowed = policy.allowedFactors;
  return allowed === null ? [...has] : has.filter((m) => (allowed as readonly string[]).includes(m));
}

/**
 * The methods an account may prove itself with (sign-in, step-up): those that count, or,
 * when none of its factors counts, those it has, which then only lead to enrolling one
 * that counts (the account is `due`, see `enrolmentStatus`).
 */
export function usableMethods(has: readonly string[], policy: Pick<EffectivePolicy, 'allowedFactors'>): string[] {
  const counted = allowedMethods(has, policy);
  return counted.length > 0 ? counted : [...has];
}

/**
 * - `satisfied`: no factor needed, or the account has one that counts.
 * - `grace`: a role requires one, the account has none that counts, and the grace period
 *   (from `dueAt`) has not ended; sign-in works, with a reminder. `dueAt` null: the account
 *   was not seen since it became subject; its grace starts at its next sign-in.
 * - `due`: enrol first: every page and API answers `enrollment_required`.
 */
export type EnrolmentStatus = 'satisfied' | 'grace' | 'due';

export function enrolmentStatus(policy: EffectivePolicy, has: readonly string[], dueAt: number | null, now: number): EnrolmentStatus {
  if (policy.mfa === 'optional') {
    // Optional, but restricted kinds still decide what counts at sign-in and step-up.
    return 'satisfied';
  }
  if (allowedMethods(has, policy).length > 0) return 'satisfied';
  if (policy.requiredByDeployment) return 'due';
  return dueAt !== null && now >= dueAt ? 'due' : 'grace';
}

/** True when a role policy says a second-factor method may not be used to prove anything beyond enrolment. */
export function methodCounts(method: string, policy: Pick<EffectivePolicy, 'allowedFactors'>): boolean {
  return policy.allowedFactors === null || (policy.allowedFactors as readonly string[]).includes(method);
}
