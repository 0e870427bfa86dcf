/**
 * What an OIDC relying party is told about a Gatehouse session, and what an authorization
 * request needs from one. Pure: the facts come from the session state machine
 * (core/session-state.ts); nothing here decides a session's state.
 */
import { assuranceLevel, awaitsSecondFactor, type SessionFacts } from '../core/session-state.js';

export const ACR = {
  aal1: 'urn:gatehouse:aal1',
  aal2: 'urn:gatehouse:aal2',
  /** A user-verified passkey (WebAuthn) was checked in this session. */
  phr: 'urn:gatehouse:phr',
} as const;

export const ACR_VALUES = [ACR.aal1, ACR.aal2, ACR.phr];

/** phr implies aal2 implies aal1: a request for aal2 is met by a phr session. */
const RANK: Record<string, number> = { [ACR.aal1]: 1, [ACR.aal2]: 2, [ACR.phr]: 3 };

/** Only RFC 8176 values go on the wire; Gatehouse's own markers (remember_me, trusted_device) do not. */
const RFC8176 = new Set(['pwd', 'otp', 'mfa', 'hwk', 'swk', 'user']);

export interface WireAssurance {
  acr: string;
  amr: string[];
  /** Epoch milliseconds of the last credential the user presented in this session. */
  authTime: number;
}

/**
 * The assurance a full session carries, or null when it carries none an RP may rely on: a
 * pending or enrolling session, or one restored from remember-me in which the user has not
 * presented any credential (its creation time is not an authentication time).
 */
export function wireAssurance(facts: SessionFacts): WireAssurance | null {
  if (facts.state !== 'full') return null;
  // An upstream sign-in (federated login) is a credential presented when the session began.
  const upstreamAt = facts.amr.includes('fed') ? facts.authTime : null;
  const times = [facts.passwordAt, facts.mfaAt, facts.webauthnAt ?? null, upstreamAt].filter((t): t is number => t !== null);
  if (times.length === 0) return null;
  const level = assuranceLevel(facts);
  const acr = level === 2 && (facts.webauthnAt ?? null) !== null ? ACR.phr : level === 2 ? ACR.aal2 : ACR.aal1;
  return { acr, amr: facts.amr.filter((m) => RFC8176.has(m)), authTime: Math.max(...times) };
}

/** Parses a space-separated `acr_values`; unknown values are kept (they can never be met). */
export function parseAcrValues(raw: unknown): string[] {
  return typeof raw === 'string' ? raw.split(' ').filter(Boolean) : [];
}

/** True when `actual` meets at least one of `requested` (none requested: always). */
export function acrSatisfies(actual: string | undefined, requested: readonly string[]): boolean {
  if (requested.length === 0) return true;
  const have = actual ? (RANK[actual] ?? 0) : 0;
  return requested.some((r) => RANK[r] !== undefined && have >= RANK[r]!);
}

/** Whether signing in again could reach one of the requested values, given the account's factors. */
export function acrReachable(requested: readonly string[], factorMethods: readonly string[]): boolean {
  if (requested.length === 0) return true;
  const best = factorMethods.includes('webauthn') ? 3 : factorMethods.some((m) => m === 'totp') ? 2 : 1;
  return requested.some((r) => RANK[r] !== undefined && best >= RANK[r]!);
}

export type InteractionStep =
  | { kind: 'sign_in' }
  | { kind: 'verify' }
  | { kind: 'enrol' }
  | { kind: 'unmet'; description: string }
  | { kind: 'finish'; assurance: WireAssurance };

export interface InteractionInput {
  session: SessionFacts | null;
  factorMethods: readonly string[];
  /** The request's `prompt` values. */
  prompts: readonly string[];
  maxAgeSeconds?: number;
  acrValues: readonly string[];
  /** When the authorization request began (epoch ms): a sign-in after it is a re-authentication. */
  startedAt: number;
  now: number;
}

/**
 * The next step of a login interaction. Only a full session with a presented credential
 * ever finishes it; `prompt=login`, `max_age` and `acr_values` (essential) send the user to
 * sign in again, once: a re-authentication in this interaction that still falls short of
 * the requested acr ends it with `unmet_authentication_requirements`.
 */
export function decideInteraction(input: InteractionInput): InteractionStep {
  const { session } = input;
  if (!session) return { kind: 'sign_in' };
  if (awaitsSecondFactor(session, input.factorMethods)) return { kind: 'verify' };
  if (session.state === 'enrolling') return { kind: 'enrol' };
  const assurance = wireAssurance(session);
  if (!assurance) return { kind: 'sign_in' };
  const reauthenticated = assurance.authTime >= input.startedAt;
  if (input.prompts.includes('login') && !reauthenticated) return { kind: 'sign_in' };
  if (input.maxAgeSeconds !== undefined && input.now - assurance.authTime > input.maxAgeSeconds * 1000) {
    return reauthenticated ? { kind: 'unmet', description: 'max_age could not be met' } : { kind: 'sign_in' };
  }
  if (!acrSatisfies(assurance.acr, input.acrValues)) {
    if (reauthenticated || !acrReachable(input.acrValues, input.factorMethods)) {
      return { kind: 'unmet', description: `none of the requested acr_values could be met (this sign-in reached ${assurance.acr})` };
    }
    return { kind: 'sign_in' };
  }
  return { kind: 'finish', assurance };
}
