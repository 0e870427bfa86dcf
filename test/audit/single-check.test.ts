// The fixture runs only plant the write-up's four flaws. These tests plant each remaining
// flaw on its own and run the check meant to catch it, so every check is shown able to
// say "bypassed" (and, in the secure runs, "blocked"): none of them can pass by doing nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAudit } from '../../src/audit/runner.js';
import type { Status } from '../../src/audit/checks/types.js';
import { startFixtureApp, type Flaws } from '../fixtures/mfa-app.js';
import { digest, fixtureProfile } from './helpers.js';

/** Profile parts for the fixture features the main profile leaves out. */
const tokenLogin = { path: '/api/mobile/login', usernameField: 'username', passwordField: 'password', tokenField: 'token' };
const passwordReset = (dir: string) => ({
  request: { path: '/password/forgot', emailField: 'email' },
  token: { from: 'mailDir', dir },
  reset: { path: '/password/reset' },
});

interface Case {
  flaw: keyof Flaws | undefined;
  expect: Record<string, Status>;
  extra?: (mailDir: string) => Record<string, unknown>;
}

const cases: Case[] = [
  { flaw: 'totpReplay', expect: { 'totp-replay': 'bypassed' } },
  // The race check builds on the reuse check: a simply reusable code is one finding, not two.
  { flaw: 'recoveryCodeRace', expect: { 'recovery-code-reuse': 'blocked', 'recovery-code-race': 'bypassed' } },
  { flaw: 'recoveryCodeReuse', expect: { 'recovery-code-reuse': 'bypassed', 'recovery-code-race': 'not_applicable' } },
  { flaw: 'otpAnyAccount', expect: { 'otp-cross-account': 'bypassed' } },
  { flaw: 'keepSessionAfterMfa', expect: { 'session-fixation-mfa': 'bypassed' } },
  { flaw: 'pendingReachesDashboard', expect: { 'pending-forced-browsing': 'bypassed' } },
  { flaw: 'disableMfaWithoutStepUp', expect: { 'mfa-disable-without-reauth': 'bypassed' } },
  { flaw: 'unlimitedGuesses', expect: { 'mfa-guess-unlimited': 'bypassed', 'xff-rate-limit-evasion': 'not_applicable' } },
  { flaw: 'limitTrustsForwardedFor', expect: { 'mfa-guess-unlimited': 'blocked', 'xff-rate-limit-evasion': 'bypassed' } },
  { flaw: 'tokenLoginSkipsMfa', expect: { 'token-login-skips-mfa': 'bypassed' }, extra: () => ({ tokenLogin }) },
  { flaw: 'resetLogsIn', expect: { 'password-reset-session': 'bypassed' }, extra: (dir) => ({ passwordReset: passwordReset(dir) }) },
  // The secure bank, for the features only these tests describe.
  {
    flaw: undefined,
    expect: { 'token-login-skips-mfa': 'blocked', 'password-reset-session': 'blocked' },
    extra: (dir) => ({ tokenLogin, passwordReset: passwordReset(dir) }),
  },
];

describe('each check catches the flaw it is about', () => {
  for (const c of cases) {
    const name = c.flaw ? `${c.flaw} → ${Object.keys(c.expect).join(', ')}` : `secure bank → ${Object.keys(c.expect).join(', ')} blocked`;
    it.concurrent(name, async () => {
      const mailDir = await mkdtemp(join(tmpdir(), 'audit-mail-'));
      const app = await startFixtureApp({ flaws: c.flaw ? { [c.flaw]: true } : {}, stepUpSeconds: 1, mailDir });
      try {
        const profile = fixtureProfile({ stepUp: { maxAgeSeconds: 1 }, ...c.extra?.(mailDir) });
        const report = await runAudit({ target: app.url, profile, only: Object.keys(c.expect) });
        const got = Object.fromEntries(report.results.map((r) => [r.id, r.status]));
        expect(got, digest(report)).toEqual(c.expect);
      } finally {
        await app.close();
        await rm(mailDir, { recursive: true, force: true });
      }
    });
  }
});

describe('bearer-token transport', () => {
  // The fixture's mobile API: login returns a pending token, /verify-mfa (called with it)
  // returns the full token in the body. Everything else in the profile stays as it is.
  const bearer = {
    login: { path: '/api/mobile/login', encoding: 'json', mfaRequired: { body: { path: 'requiresMfa', equals: true } } },
    session: { transport: 'bearer', tokenField: 'token' },
    rememberMe: null, // a cookie feature: not part of the mobile API
    stepUp: { maxAgeSeconds: 1 },
  };

  it.concurrent('the secure bank blocks every applicable check', async () => {
    const app = await startFixtureApp({ stepUpSeconds: 1 });
    try {
      const report = await runAudit({ target: app.url, profile: fixtureProfile(bearer) });
      const notBlocked = report.results.filter((r) => r.status !== 'blocked').map((r) => `${r.id}:${r.status}`);
      expect(notBlocked.sort(), digest(report)).toEqual([
        'oidc-acr-values-ignored:not_applicable',
        'oidc-code-for-pending-session:not_applicable',
        'oidc-prompt-none-pending:not_applicable',
        'oidc-refresh-after-factor-removal:not_applicable',
        'password-reset-session:not_applicable',
        'remember-me-skips-mfa:not_applicable',
        'token-login-skips-mfa:not_applicable',
        'upstream-login-links-without-factor:not_applicable',
      ]);
      // The session really travelled as a bearer token, never as a cookie.
      const me = report.results.find((r) => r.id === 'password-only-session')?.evidence[1]?.request.headers;
      expect(me?.authorization).toMatch(/^Bearer /);
      expect(me?.cookie).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it.concurrent('a token kept after the second factor is caught as fixation', async () => {
    const app = await startFixtureApp({ flaws: { keepSessionAfterMfa: true }, stepUpSeconds: 1 });
    try {
      const report = await runAudit({
        target: app.url,
        profile: fixtureProfile(bearer),
        only: ['session-fixation-mfa', 'password-only-session'],
      });
      expect(Object.fromEntries(report.results.map((r) => [r.id, r.status])), digest(report)).toEqual({
        'password-only-session': 'blocked',
        'session-fixation-mfa': 'bypassed',
      });
    } finally {
      await app.close();
    }
  });
});
