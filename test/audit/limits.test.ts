// A limiter's refusal is not a blocked door. These runs put limiters in front of the fixture
// bank (per client address, in front of the code endpoints; and a guess limit answered with
// 400 instead of 429) and check that a planted flaw behind them is found, or reported
// inconclusive: limited, and never "blocked"; and that a limit answered with 400 counts as a
// limit without a hand-written matcher.
import { describe, expect, it } from 'vitest';
import { runAudit } from '../../src/audit/runner.js';
import { startFixtureApp, type FixtureOptions } from '../fixtures/mfa-app.js';
import { digest, fixtureProfile } from './helpers.js';

async function audit(options: FixtureOptions, only?: string[], extra: Record<string, unknown> = {}) {
  const app = await startFixtureApp({ stepUpSeconds: 1, ...options });
  try {
    const profile = fixtureProfile({ stepUp: { maxAgeSeconds: 1 }, ...extra });
    return await runAudit({ target: app.url, profile, ...(only ? { only } : {}) });
  } finally {
    await app.close();
  }
}

const statuses = (r: Awaited<ReturnType<typeof audit>>) => Object.fromEntries(r.results.map((x) => [x.id, x.status]));

describe.concurrent('limits are not refusals', () => {
  it('a replay flaw behind a short per-address limit is found: the auditor waits the Retry-After out', async () => {
    // Two code submissions per 2 s per address: the preflight and the first use of the code
    // fill the window, so the replay is answered 429 (Retry-After 1-2 s) first.
    const report = await audit({ flaws: { totpReplay: true }, addressLimit: { max: 2, windowSeconds: 2 } }, ['totp-replay']);
    expect(statuses(report), digest(report)).toEqual({ 'totp-replay': 'bypassed' });
    const notes = report.results[0]!.evidence.map((e) => `${e.note} → ${e.response?.status}`);
    expect(notes, notes.join('\n')).toContain('submit the same TOTP code again → 429');
  });

  it('a replay flaw behind a long per-address limit is inconclusive: limited, never blocked', async () => {
    const report = await audit({ flaws: { totpReplay: true }, addressLimit: { max: 2, windowSeconds: 900 } }, ['totp-replay']);
    const r = report.results[0]!;
    expect(r.status, digest(report)).toBe('inconclusive');
    expect(r.why).toMatch(/^limited: status 429, Retry-After 9\d\d$/);
    expect(r.summary).toMatch(/Inconclusive \(limited\)/);
    expect(report.exitCode).toBe(2);
  });

  it('the same with the limit answered as 400 "Too many attempts" and no Retry-After', async () => {
    const report = await audit(
      { flaws: { totpReplay: true, recoveryCodeReuse: true }, addressLimit: { max: 2, windowSeconds: 900, answer: 400 } },
      ['totp-replay', 'recovery-code-reuse'],
    );
    expect(statuses(report), digest(report)).toEqual({ 'totp-replay': 'inconclusive', 'recovery-code-reuse': 'inconclusive' });
    expect(report.results[0]!.why).toBe('limited: status 400 saying "Too many"');
  });

  it('a replay flaw behind a short limiter answered 400 "too many" without Retry-After is found: the auditor backs off', async () => {
    const report = await audit({ flaws: { totpReplay: true }, addressLimit: { max: 2, windowSeconds: 2, answer: 400 } }, ['totp-replay']);
    expect(statuses(report), digest(report)).toEqual({ 'totp-replay': 'bypassed' });
    const notes = report.results[0]!.evidence.map((e) => `${e.note} → ${e.response?.status}`);
    expect(notes, notes.join('\n')).toContain('submit the same TOTP code again → 400');
  });

  it('a guess limit answered with 400 is a limit, though the profile declares 429', async () => {
    // The profile says limited: {status: 429}; the bank answers 400 "Too many attempts, slow
    // down". Read as a plain refusal, ten wrong codes would look unlimited: a false finding.
    const report = await audit({ guessLimitAnswer: 400 }, ['mfa-guess-unlimited', 'xff-rate-limit-evasion']);
    expect(statuses(report), digest(report)).toEqual({ 'mfa-guess-unlimited': 'blocked', 'xff-rate-limit-evasion': 'blocked' });
    expect(report.results[0]!.summary).toMatch(/Limited after \d wrong codes \(status 400\)/);
  });

  it('the secure bank behind a per-address limiter: no false finding, no error', async () => {
    const report = await audit({ addressLimit: { max: 4, windowSeconds: 2 } });
    const bad = report.results.filter((r) => r.status === 'bypassed' || r.status === 'error' || r.status === 'inconclusive');
    expect(
      bad.map((r) => r.id),
      digest(report),
    ).toEqual([]);
  });

  it('a refusal names its reason; a correct code that is limited blames the limit, not the secret', async () => {
    const ok = await audit({}, ['totp-replay']);
    expect(ok.results[0]!.why, digest(ok)).toMatch(/^status 401 is not secondFactor\.accepted, and not a limit reply/);
    // Every code submission refused for rate: the preflight says so instead of "is the secret current?".
    const locked = await audit({ addressLimit: { max: 0, windowSeconds: 900 } }, ['totp-replay']);
    expect(locked.aborted, digest(locked)).toMatch(
      /preflight failed: a valid second-factor code got a limit reply \(status 429, Retry-After 900/,
    );
  });
});
