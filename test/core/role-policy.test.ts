import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnrollmentRequiredError } from '../../src/core/errors.js';
import { authorize } from '../../src/core/requirements.js';
import {
  effectivePolicy,
  enrolmentStatus,
  FACTOR_KINDS,
  methodCounts,
  usableMethods,
  type RolePolicy,
} from '../../src/core/role-policy.js';
import { startSession } from '../../src/core/session-state.js';

const NOW = 1_700_000_000_000;
const base = { mfaRequired: 'off' as const, stepUpMaxAgeSeconds: 900, enrolmentGraceSeconds: 7 * 86_400 };
const policies: Record<string, RolePolicy> = {
  admin: { mfa: 'required', factors: ['webauthn'], stepUpMaxAgeSeconds: 300 },
  staff: { mfa: 'required' },
  reader: { mfa: 'optional', factors: ['totp', 'webauthn'] },
};

describe('policy by role', () => {
  it('no role: the deployment’s policy', () => {
    const p = effectivePolicy([], policies, base);
    expect(p).toMatchObject({ mfa: 'optional', allowedFactors: null, stepUpMaxAgeSeconds: 900, because: [] });
  });

  it('strictest wins across roles: required, intersection of kinds, shortest window', () => {
    const p = effectivePolicy(['reader', 'admin'], policies, base);
    expect(p.mfa).toBe('required');
    expect(p.allowedFactors).toEqual(['webauthn']);
    expect(p.stepUpMaxAgeSeconds).toBe(300);
    expect(p.because.join('; ')).toContain('role admin');
  });

  it('a role never loosens the deployment (fast-check: adding roles never lowers the policy)', () => {
    const role = fc.constantFrom('admin', 'staff', 'reader', 'unknown', '__proto__');
    fc.assert(
      fc.property(fc.array(role), fc.array(role), fc.constantFrom('off', 'all'), (some, more, mfaRequired) => {
        const deployment = { ...base, mfaRequired: mfaRequired as 'off' | 'all' };
        const a = effectivePolicy(some, policies, deployment);
        const b = effectivePolicy([...some, ...more], policies, deployment);
        if (a.mfa === 'required') expect(b.mfa).toBe('required');
        if (mfaRequired === 'all') expect(b.mfa).toBe('required');
        expect(b.stepUpMaxAgeSeconds).toBeLessThanOrEqual(a.stepUpMaxAgeSeconds);
        expect(b.stepUpMaxAgeSeconds).toBeLessThanOrEqual(deployment.stepUpMaxAgeSeconds);
        const kinds = (p: typeof a) => p.allowedFactors ?? [...FACTOR_KINDS];
        for (const k of kinds(b)) expect(kinds(a)).toContain(k);
      }),
    );
  });

  it('a TOTP does not count for a passkeys-only admin; with no factor that counts, what it has leads only to enrolment', () => {
    const p = effectivePolicy(['admin'], policies, base);
    expect(methodCounts('totp', p)).toBe(false);
    expect(methodCounts('webauthn', p)).toBe(true);
    expect(usableMethods(['totp', 'webauthn', 'recovery_code'], p)).toEqual(['webauthn']);
    expect(usableMethods(['totp'], p)).toEqual(['totp']);
    expect(enrolmentStatus(p, ['totp'], NOW - 1, NOW)).toBe('due');
    expect(enrolmentStatus(p, ['webauthn'], NOW - 1, NOW)).toBe('satisfied');
  });

  it('grace: before the due time sign-in works, after it the account must enrol; null due means not yet started', () => {
    const p = effectivePolicy(['staff'], policies, base);
    expect(enrolmentStatus(p, [], NOW + 1, NOW)).toBe('grace');
    expect(enrolmentStatus(p, [], NOW, NOW)).toBe('due');
    expect(enrolmentStatus(p, [], null, NOW)).toBe('grace');
    expect(enrolmentStatus(p, ['totp'], NOW - 1, NOW)).toBe('satisfied');
    // Required by the deployment: no grace at all (as GATEHOUSE_MFA_REQUIRED=all always was).
    expect(enrolmentStatus(effectivePolicy([], policies, { ...base, mfaRequired: 'all' }), [], NOW + 1, NOW)).toBe('due');
  });

  it('a due account’s full session is refused every full route with enrollment_required, but may enrol', () => {
    const times = { pendingTtlSeconds: 300, sessionTtlSeconds: 86_400, sessionIdleTtlSeconds: 3_600 };
    const session = startSession({ hasSecondFactor: false, mfaPolicy: 'off' }, { kind: 'password' }, NOW, times);
    const principal = { kind: 'session' as const, session, account: { factorMethods: [], enrolmentDue: true } };
    const policy = { stepUpMaxAgeSeconds: 900 };
    expect(authorize({ session: 'full' }, principal, NOW, policy)).toBeInstanceOf(EnrollmentRequiredError);
    expect(authorize({ session: 'enrolling' }, principal, NOW, policy)).toBeNull();
    expect(authorize({ session: 'full' }, { ...principal, account: { factorMethods: [] } }, NOW, policy)).toBeNull();
  });
});
