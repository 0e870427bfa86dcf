/** The pure mapping from session facts to what an RP is told, and the interaction's next step. */
import { describe, expect, it } from 'vitest';
import type { SessionFacts } from '../../src/core/session-state.js';
import { ACR, acrSatisfies, decideInteraction, wireAssurance } from '../../src/oidc/assurance.js';

const T = 1_700_000_000_000;
const full = (over: Partial<SessionFacts> = {}): SessionFacts => ({
  state: 'full',
  amr: ['pwd'],
  authTime: T,
  passwordAt: T,
  mfaAt: null,
  createdAt: T,
  lastSeenAt: T,
  expiresAt: T + 86_400_000,
  ...over,
});
const base = { factorMethods: [] as string[], prompts: [] as string[], acrValues: [] as string[], startedAt: T + 10_000, now: T + 20_000 };

describe('wireAssurance', () => {
  it('reports aal1, aal2 and phr from the facts, RFC 8176 amr only, auth_time = last credential', () => {
    expect(wireAssurance(full())).toEqual({ acr: ACR.aal1, amr: ['pwd'], authTime: T });
    expect(wireAssurance(full({ amr: ['pwd', 'otp', 'mfa'], mfaAt: T + 5 }))).toEqual({
      acr: ACR.aal2,
      amr: ['pwd', 'otp', 'mfa'],
      authTime: T + 5,
    });
    expect(wireAssurance(full({ amr: ['pwd', 'swk', 'user', 'mfa'], mfaAt: T + 5, webauthnAt: T + 5 }))!.acr).toBe(ACR.phr);
    expect(wireAssurance(full({ amr: ['pwd', 'trusted_device'] }))).toEqual({ acr: ACR.aal2, amr: ['pwd'], authTime: T });
  });
  it('pending, enrolling and remember-me-only sessions carry nothing an RP may rely on', () => {
    expect(wireAssurance(full({ state: 'pending' }))).toBeNull();
    expect(wireAssurance(full({ state: 'enrolling' }))).toBeNull();
    expect(wireAssurance(full({ amr: ['remember_me'], passwordAt: null }))).toBeNull();
  });
  it('ranks phr over aal2 over aal1; unknown values are never met', () => {
    expect(acrSatisfies(ACR.phr, [ACR.aal2])).toBe(true);
    expect(acrSatisfies(ACR.aal2, [ACR.phr])).toBe(false);
    expect(acrSatisfies(ACR.aal2, ['urn:other'])).toBe(false);
    expect(acrSatisfies(undefined, [ACR.aal1])).toBe(false);
  });
});

describe('decideInteraction', () => {
  it('only a full session with a presented credential finishes', () => {
    expect(decideInteraction({ ...base, session: null }).kind).toBe('sign_in');
    expect(decideInteraction({ ...base, session: full({ state: 'pending' }) }).kind).toBe('verify');
    expect(decideInteraction({ ...base, session: full({ state: 'enrolling' }) }).kind).toBe('enrol');
    expect(decideInteraction({ ...base, session: full({ amr: ['remember_me'], passwordAt: null }) }).kind).toBe('sign_in');
    expect(decideInteraction({ ...base, session: full() }).kind).toBe('finish');
  });
  it('prompt=login and max_age need a sign-in after the request began', () => {
    expect(decideInteraction({ ...base, session: full(), prompts: ['login'] }).kind).toBe('sign_in');
    expect(decideInteraction({ ...base, session: full({ passwordAt: T + 11_000 }), prompts: ['login'] }).kind).toBe('finish');
    expect(decideInteraction({ ...base, session: full(), maxAgeSeconds: 5 }).kind).toBe('sign_in');
    expect(decideInteraction({ ...base, session: full(), maxAgeSeconds: 60 }).kind).toBe('finish');
  });
  it('unmet acr_values: a sign-in when the account can reach them (once), else unmet', () => {
    expect(decideInteraction({ ...base, session: full(), acrValues: [ACR.aal2] }).kind).toBe('unmet');
    expect(decideInteraction({ ...base, session: full(), acrValues: [ACR.aal2], factorMethods: ['totp', 'recovery_code'] }).kind).toBe(
      'sign_in',
    );
    const reauthed = full({ passwordAt: T + 11_000, mfaAt: T + 12_000, amr: ['pwd', 'otp', 'mfa'] });
    expect(decideInteraction({ ...base, session: reauthed, acrValues: [ACR.phr], factorMethods: ['totp', 'webauthn'] }).kind).toBe('unmet');
    expect(decideInteraction({ ...base, session: reauthed, acrValues: [ACR.aal2], factorMethods: ['totp'] }).kind).toBe('finish');
  });
});
