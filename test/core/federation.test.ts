/**
 * The federated-login decisions (core/federation.ts) and the state machine's upstream
 * first factor, for every combination fast-check finds: an upstream sign-in never gives
 * aal 2 or freshness unless its configured trust says MFA (and then never freshness), an
 * unlinked identity never signs in, and a link is confirmed only by a full session of the
 * account it names.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideUpstreamLogin, mayConfirmLink, upstreamMfaTrusted } from '../../src/core/federation.js';
import { assuranceLevel, completeSecondFactor, isFresh, startSession } from '../../src/core/session-state.js';

const TIMES = { pendingTtlSeconds: 300, sessionTtlSeconds: 86400, sessionIdleTtlSeconds: 3600 };
const ACRS = ['urn:gatehouse:aal1', 'urn:gatehouse:aal2', 'urn:gatehouse:phr', 'urn:other:mfa', ''];
const AMRS = ['pwd', 'otp', 'mfa', 'hwk', 'swk', 'user', 'sms'];

const trust = fc.record({ trustedAcr: fc.subarray(ACRS), trustedAmr: fc.subarray(AMRS) });
const assertion = fc.record({
  acr: fc.oneof(fc.constantFrom(...ACRS), fc.constant(undefined), fc.integer()),
  amr: fc.oneof(fc.subarray(AMRS), fc.constant(undefined), fc.constant('mfa')),
});
const account = fc.record({ hasSecondFactor: fc.boolean(), mfaPolicy: fc.constantFrom('off' as const, 'all' as const) });

describe('an upstream sign-in in the session state machine', () => {
  it('is MFA only when a configured acr/amr was asserted; never fresh', () => {
    fc.assert(
      fc.property(
        account,
        trust,
        assertion,
        fc.integer({ min: 0, max: 1e12 }),
        fc.integer({ min: 1, max: 1e6 }),
        (acct, t, a, now, maxAge) => {
          const trusted = upstreamMfaTrusted(a, t);
          const expectedTrust =
            (typeof a.acr === 'string' && t.trustedAcr.includes(a.acr)) ||
            (Array.isArray(a.amr) && a.amr.some((m) => t.trustedAmr.includes(m)));
          expect(trusted).toBe(expectedTrust);
          const s = startSession(acct, { kind: 'upstream', trustedMfa: trusted }, now, TIMES);
          expect(isFresh(s, acct.hasSecondFactor, now, maxAge)).toBe(false);
          expect(s.passwordAt).toBeNull();
          if (!trusted) {
            expect(assuranceLevel(s)).toBe(1);
            if (acct.hasSecondFactor) expect(s.state).toBe('pending');
            if (!acct.hasSecondFactor && acct.mfaPolicy === 'all') expect(s.state).toBe('enrolling');
          } else {
            expect(s).toMatchObject({ state: 'full' });
            expect(assuranceLevel(s)).toBe(2);
          }
        },
      ),
    );
  });

  it('the local second factor completes a pending upstream sign-in (full, aal 2, fresh)', () => {
    const s = startSession({ hasSecondFactor: true, mfaPolicy: 'off' }, { kind: 'upstream', trustedMfa: false }, 1000, TIMES);
    const full = completeSecondFactor(s, ['otp'], 2000, TIMES);
    expect(full).toMatchObject({ state: 'full', mfaAt: 2000 });
    expect(full.amr).toEqual(expect.arrayContaining(['fed', 'otp', 'mfa']));
    expect(assuranceLevel(full)).toBe(2);
    expect(isFresh(full, true, 2000, 60)).toBe(true);
  });
});

describe('linking', () => {
  const id = fc.constantFrom('u1', 'u2', 'u3');
  it('only a linked identity signs in; an e-mail match or a signed-in browser only makes a pending link', () => {
    fc.assert(
      fc.property(fc.option(id), fc.option(id), fc.boolean(), fc.option(id), (linked, emailMatch, verified, signedIn) => {
        const step = decideUpstreamLogin({
          linkedUserId: linked,
          emailMatchUserId: emailMatch,
          emailVerified: verified,
          signedInUserId: signedIn,
        });
        if (linked) expect(step).toEqual({ kind: 'sign_in', userId: linked });
        else {
          expect(step.kind).toBe('link_pending');
          if (step.kind === 'link_pending' && step.targetUserId !== null)
            expect([signedIn, verified ? emailMatch : null]).toContain(step.targetUserId);
        }
      }),
    );
  });

  it('an account is created only where the upstream allows it, for a verified address no account has, in a browser signed in to none', () => {
    fc.assert(
      fc.property(
        fc.option(id),
        fc.option(id),
        fc.boolean(),
        fc.option(id),
        fc.boolean(),
        (linked, emailMatch, verified, signedIn, mayCreate) => {
          const step = decideUpstreamLogin({
            linkedUserId: linked,
            emailMatchUserId: emailMatch,
            emailVerified: verified,
            signedInUserId: signedIn,
            mayCreateAccount: mayCreate,
          });
          const creates = mayCreate && verified && linked === null && signedIn === null && emailMatch === null;
          expect(step.kind === 'create_account').toBe(creates);
          // An address an account has never becomes anything but a pending link to that account.
          if (!linked && !signedIn && verified && emailMatch) expect(step).toEqual({ kind: 'link_pending', targetUserId: emailMatch });
        },
      ),
    );
  });

  it('a link is confirmed only by a full session of the account it names, before it expires', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('pending' as const, 'enrolling' as const, 'full' as const, null),
        fc.option(id),
        fc.option(id),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (state, user, target, expiresAt, now) => {
          const refusal = mayConfirmLink({ sessionState: state, sessionUserId: user, targetUserId: target, expiresAt, now });
          const allowed = state === 'full' && user !== null && (target === null || target === user) && now < expiresAt;
          expect(refusal === null).toBe(allowed);
        },
      ),
    );
  });
});
