// Brute force against the second factor. Both checks are bounded: they stop at the first
// sign of a limit, or after limits.maxGuesses wrong codes.
import { randomInt } from 'node:crypto';
import type { AuditContext } from '../context.js';
import type { IssuedCode } from '../factors.js';
import type { Profile } from '../profile.js';
import { describeMatcher } from '../matchers.js';
import { blocked, bypassed, Inconclusive, notApplicable, type Check } from './types.js';

const PASSKEY_ONLY = 'the profile submits no codes (passkey only): there is nothing to guess';

/** A code that is certainly wrong, for whichever factor the profile can submit. */
function wrongCode(ctx: AuditContext): Pick<IssuedCode, 'kind' | 'code'> {
  if (ctx.profile.secondFactor.totp) return { kind: 'totp', code: ctx.codes.wrongTotp() };
  return { kind: 'recovery', code: `wrong-${randomInt(1e9)}` };
}

interface GuessRun {
  limitedAfter: number | undefined;
  attempts: number;
  lastStatus: number;
}

async function guess(
  ctx: AuditContext,
  cap: number,
  headers: (i: number) => Record<string, string> | undefined,
  label: string,
): Promise<GuessRun> {
  await ctx.ensureHeadroom(cap);
  const login = await ctx.passwordLogin({ note: 'log in with the password (pending session)' });
  let lastStatus = 0;
  for (let i = 1; i <= cap; i++) {
    const h = headers(i);
    const r = await ctx.submitCode(login.session, wrongCode(ctx), {
      note: `${label} ${i} of at most ${cap}`,
      ...(h ? { headers: h } : {}),
    });
    lastStatus = r.res.status;
    if (r.accepted) throw new Inconclusive('a deliberately wrong code was accepted; the accepted matcher may be too loose');
    if (ctx.isLimited(r.res)) return { limitedAfter: i, attempts: i, lastStatus };
  }
  return { limitedAfter: undefined, attempts: cap, lastStatus };
}

const guessPlan = (p: Profile, extra = ''): string[] => [
  `${p.login.method} ${p.login.path} with the password (pending session)`,
  `up to ${p.limits.maxGuesses} wrong codes${extra}, stopping at the first limit reply (${describeMatcher(p.secondFactor.limited)}, any 429 or Retry-After, or a 4xx saying "too many")`,
];

/** The result of mfa-guess-unlimited, for the X-Forwarded-For check to compare against. */
const baselines = new WeakMap<AuditContext, GuessRun>();

export const mfaGuessUnlimited: Check = {
  id: 'mfa-guess-unlimited',
  title: 'Second-factor guesses not limited',
  severity: 'high',
  references: ['WSTG-ATHN-03', 'WSTG-ATHN-11', 'ASVS 5.0 V6.3.1'],
  description:
    'Submits wrong codes in one pending session until the target limits them or the configured cap is reached. ' +
    'A six-digit code falls to an unthrottled guesser within hours.',
  fixHint:
    'Limit wrong codes per pending session (revoke it after a handful) and per account across sessions, ' +
    'with a lockout that even a correct code cannot pass.',
  notApplicable: (p) => (p.secondFactor.totp || p.secondFactor.recoveryCode ? undefined : PASSKEY_ONLY),
  plan: (p) => guessPlan(p),
  async run(ctx) {
    const cap = ctx.profile.limits.maxGuesses;
    const run = await guess(ctx, cap, () => undefined, 'wrong code');
    baselines.set(ctx, run);
    if (run.limitedAfter !== undefined) return blocked(`Limited after ${run.limitedAfter} wrong codes (status ${run.lastStatus}).`);
    return bypassed(`${cap} wrong codes in one pending session, none of them limited (last status ${run.lastStatus}).`);
  },
};

export const xffRateLimitEvasion: Check = {
  id: 'xff-rate-limit-evasion',
  title: 'Rate limit evaded with X-Forwarded-For',
  severity: 'medium',
  references: ['WSTG-ATHN-03', 'ASVS 5.0 V6.3.1'],
  description:
    'Repeats the wrong-code run with a different X-Forwarded-For address on every attempt. ' +
    'A limiter keyed on a client-supplied address is no limit at all.',
  fixHint: 'Key limits on the account and pending session; trust X-Forwarded-For only from known proxy addresses.',
  dependsOn: ['mfa-guess-unlimited'],
  notApplicable: (p) => (p.secondFactor.totp || p.secondFactor.recoveryCode ? undefined : PASSKEY_ONLY),
  plan: (p) => guessPlan(p, ', each with a new X-Forwarded-For address'),
  async run(ctx) {
    const baseline = baselines.get(ctx);
    if (!baseline) throw new Inconclusive('runs after mfa-guess-unlimited, which did not run');
    if (baseline.limitedAfter === undefined) {
      return notApplicable('No limit was observed even without the header (see mfa-guess-unlimited), so there is none to evade.');
    }
    // Go one attempt past the baseline, so "not limited" really means the header helped.
    const cap = Math.min(50, Math.max(ctx.profile.limits.maxGuesses, baseline.limitedAfter + 1));
    const run = await guess(ctx, cap, (i) => ({ 'x-forwarded-for': spoofedAddress(i) }), 'wrong code from a spoofed address');
    if (run.limitedAfter !== undefined) {
      return blocked(`Still limited after ${run.limitedAfter} attempts from ${run.limitedAfter} different X-Forwarded-For addresses.`);
    }
    return bypassed(
      `Without the header the target limited after ${baseline.limitedAfter} wrong codes; with a new ` +
        `X-Forwarded-For per attempt, ${run.attempts} wrong codes were not limited.`,
    );
  },
};

/** Documentation-range addresses (RFC 5737), so nothing real is impersonated. */
function spoofedAddress(i: number): string {
  return `203.0.113.${(i % 254) + 1}`;
}
