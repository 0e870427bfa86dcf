import { describe, expect, it } from 'vitest';
import {
  EnrollmentRequiredError,
  InsufficientScopeError,
  InteractiveSessionRequiredError,
  MfaRequiredError,
  NoPendingAuthenticationError,
  StepUpRequiredError,
  UnauthenticatedError,
} from '../../src/core/errors.js';
import { authorize, type Principal, type Requirement } from '../../src/core/requirements.js';
import { CONTRACT_SCOPES as API_TOKEN_SCOPES, SCOPE_SHAPE, type Scope } from '../../src/core/scopes.js';
import { completeSecondFactor, recordPassword, startSession, type SessionTimes } from '../../src/core/session-state.js';

const times: SessionTimes = { pendingTtlSeconds: 300, sessionTtlSeconds: 86_400, sessionIdleTtlSeconds: 3_600 };
const NOW = 1_700_000_000_000;
const MAX_AGE = 900;
const policy = { stepUpMaxAgeSeconds: MAX_AGE };
const STALE = NOW - (MAX_AGE + 1) * 1000;

const totp = { factorMethods: ['recovery_code', 'totp'] };
const none = { factorMethods: [] as string[] };

/** Principals, named for the table. */
const principals: Record<string, Principal> = {
  anonymous: { kind: 'anonymous' },
  pending: {
    kind: 'session',
    account: totp,
    session: startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password' }, NOW, times),
  },
  enrolling: {
    kind: 'session',
    account: none,
    session: startSession({ hasSecondFactor: false, mfaPolicy: 'all' }, { kind: 'password' }, NOW, times),
  },
  // Enrolling, but the account confirmed a factor in another session since: it may verify that
  // factor (the pending requirement); everything else answers as for any enrolling session.
  enrolling_gained_factor: {
    kind: 'session',
    account: totp,
    session: startSession({ hasSecondFactor: false, mfaPolicy: 'all' }, { kind: 'password' }, NOW, times),
  },
  // An account with a factor, second factor verified just now.
  full_mfa_fresh: {
    kind: 'session',
    account: totp,
    session: completeSecondFactor(
      startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password' }, NOW, times),
      ['otp'],
      NOW,
      times,
    ),
  },
  // An account with a factor, second factor verified long ago (password re-entered since).
  full_mfa_stale: {
    kind: 'session',
    account: totp,
    session: recordPassword(
      completeSecondFactor(
        startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password' }, STALE, times),
        ['otp'],
        STALE,
        times,
      ),
      NOW,
    ),
  },
  // A trusted device stood in for the factor: full, but never fresh.
  full_trusted_device: {
    kind: 'session',
    account: totp,
    session: startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'password_on_trusted_device' }, NOW, times),
  },
  // No factor: the password time counts.
  full_pwd_fresh: {
    kind: 'session',
    account: none,
    session: startSession({ hasSecondFactor: false, mfaPolicy: 'off' }, { kind: 'password' }, NOW, times),
  },
  full_pwd_stale: {
    kind: 'session',
    account: none,
    session: startSession({ hasSecondFactor: false, mfaPolicy: 'off' }, { kind: 'password' }, STALE, times),
  },
  full_remember_me: {
    kind: 'session',
    account: none,
    session: startSession({ hasSecondFactor: false, mfaPolicy: 'off' }, { kind: 'remember_me' }, NOW, times),
  },
  token_all: { kind: 'api_token', scopes: [...API_TOKEN_SCOPES] },
  token_none: { kind: 'api_token', scopes: [] },
};

const requirements: Record<string, Requirement> = {
  none: { session: 'none' },
  any: { session: 'any' },
  pending: { session: 'pending' },
  enrolling: { session: 'enrolling' },
  'enrolling★': { session: 'enrolling', fresh: true },
  full: { session: 'full' },
  'full★': { session: 'full', fresh: true },
  'full+scope': { session: 'full', scope: 'transactions:read' },
  'full+scope★': { session: 'full', scope: 'transfers:write', fresh: true },
};

type Outcome = null | (new (...args: never[]) => Error);
const OK = null;
const UNAUTH = UnauthenticatedError;
const MFA = MfaRequiredError;
const NOPEND = NoPendingAuthenticationError;
const ENROL = EnrollmentRequiredError;
const STEP = StepUpRequiredError;
const INTER = InteractiveSessionRequiredError;
const SCOPE = InsufficientScopeError;

// Rows: requirement; columns: principal. Every combination is listed on purpose.
const cols = [
  'anonymous',
  'pending',
  'enrolling',
  'enrolling_gained_factor',
  'full_mfa_fresh',
  'full_mfa_stale',
  'full_trusted_device',
  'full_pwd_fresh',
  'full_pwd_stale',
  'full_remember_me',
  'token_all',
  'token_none',
] as const;
const table: Record<string, Outcome[]> = {
  //                 anon    pending enrol  enrol+factor mfaF  mfaS   trust  pwdF  pwdS   remember tokAll tokNone
  none: [OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK],
  any: [OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK],
  pending: [NOPEND, OK, NOPEND, OK, NOPEND, NOPEND, NOPEND, NOPEND, NOPEND, NOPEND, INTER, INTER],
  enrolling: [UNAUTH, MFA, OK, OK, OK, OK, OK, OK, OK, OK, INTER, INTER],
  'enrolling★': [UNAUTH, MFA, OK, STEP, OK, STEP, STEP, OK, STEP, STEP, INTER, INTER],
  full: [UNAUTH, MFA, ENROL, ENROL, OK, OK, OK, OK, OK, OK, INTER, INTER],
  'full★': [UNAUTH, MFA, ENROL, ENROL, OK, STEP, STEP, OK, STEP, STEP, INTER, INTER],
  'full+scope': [UNAUTH, MFA, ENROL, ENROL, OK, OK, OK, OK, OK, OK, OK, SCOPE],
  'full+scope★': [UNAUTH, MFA, ENROL, ENROL, OK, STEP, STEP, OK, STEP, STEP, INTER, SCOPE],
};

describe('authorize: every requirement × principal', () => {
  const cases = Object.entries(table).flatMap(([req, row]) => cols.map((p, i) => [req, p, row[i]!] as const));
  it('the table covers every requirement and principal', () => {
    expect(Object.keys(table).sort()).toEqual(Object.keys(requirements).sort());
    expect([...cols].sort()).toEqual(Object.keys(principals).sort());
    for (const row of Object.values(table)) expect(row).toHaveLength(cols.length);
  });
  it.each(cases)('%s × %s', (req, p, expected) => {
    const result = authorize(requirements[req]!, principals[p]!, NOW, policy);
    if (expected === null) expect(result).toBeNull();
    else expect(result).toBeInstanceOf(expected);
  });
});

describe('authorize: error details', () => {
  it('step_up_required names the methods and maxAge', () => {
    const err = authorize({ session: 'full', fresh: true }, principals.full_mfa_stale!, NOW, policy);
    expect(err?.toJSON()).toMatchObject({ error: 'step_up_required', methods: ['recovery_code', 'totp'], maxAge: MAX_AGE });
    expect(err?.status).toBe(403);
    const pwd = authorize({ session: 'full', fresh: true }, principals.full_pwd_stale!, NOW, policy);
    expect(pwd?.toJSON()).toMatchObject({ error: 'step_up_required', methods: ['password'], maxAge: MAX_AGE });
  });

  it('mfa_required is a 401 naming the methods', () => {
    const err = authorize({ session: 'full' }, principals.pending!, NOW, policy);
    expect(err?.status).toBe(401);
    expect(err?.toJSON()).toMatchObject({ error: 'mfa_required', methods: ['recovery_code', 'totp'] });
  });

  it('status codes follow the contract', () => {
    expect(authorize({ session: 'full' }, principals.anonymous!, NOW, policy)?.status).toBe(401);
    expect(authorize({ session: 'pending' }, principals.anonymous!, NOW, policy)?.toJSON()).toMatchObject({
      error: 'no_pending_authentication',
    });
    expect(authorize({ session: 'full' }, principals.enrolling!, NOW, policy)?.status).toBe(403);
    expect(authorize({ session: 'full', scope: 'account:read' }, principals.token_none!, NOW, policy)?.toJSON()).toMatchObject({
      error: 'insufficient_scope',
      scope: 'account:read',
    });
  });

  it('freshness is exact at the boundary', () => {
    const at = (mfaAt: number): Principal => ({
      ...(principals.full_mfa_fresh as Extract<Principal, { kind: 'session' }>),
      session: { ...(principals.full_mfa_fresh as Extract<Principal, { kind: 'session' }>).session, mfaAt },
    });
    expect(authorize({ session: 'full', fresh: true }, at(NOW - MAX_AGE * 1000), NOW, policy)).toBeNull();
    expect(authorize({ session: 'full', fresh: true }, at(NOW - MAX_AGE * 1000 - 1), NOW, policy)).toBeInstanceOf(StepUpRequiredError);
  });

  it('a token only gets the scope it holds', () => {
    for (const scope of API_TOKEN_SCOPES) {
      const holder: Principal = { kind: 'api_token', scopes: [scope] };
      for (const asked of API_TOKEN_SCOPES) {
        const r = authorize({ session: 'full', scope: asked as Scope }, holder, NOW, policy);
        if (asked === scope) expect(r).toBeNull();
        else expect(r).toBeInstanceOf(InsufficientScopeError);
      }
    }
  });

  it('a token of an account whose enrolment is due gets enrollment_required on the routes tokens may call, whatever its scopes', () => {
    for (const scope of API_TOKEN_SCOPES) {
      const due: Principal = { kind: 'api_token', scopes: [...API_TOKEN_SCOPES], enrolmentDue: true };
      expect(authorize({ session: 'full', scope: scope as Scope }, due, NOW, policy)).toBeInstanceOf(EnrollmentRequiredError);
      const settled: Principal = { kind: 'api_token', scopes: [...API_TOKEN_SCOPES], enrolmentDue: false };
      expect(authorize({ session: 'full', scope: scope as Scope }, settled, NOW, policy)).toBeNull();
    }
  });
});

describe('scopes', () => {
  it('the server declares exactly the contract’s three; host apps declare names of one shape', () => {
    expect([...API_TOKEN_SCOPES]).toEqual(['account:read', 'transactions:read', 'transfers:write']);
    for (const ok of ['account:read', 'orders:write', 'reports.export:read', 'admin']) expect(SCOPE_SHAPE.test(ok)).toBe(true);
    for (const bad of ['', 'Orders:read', 'a b', 'x:', ':read', 'a:b:c', 'x'.repeat(40)]) expect(SCOPE_SHAPE.test(bad)).toBe(false);
  });
});
