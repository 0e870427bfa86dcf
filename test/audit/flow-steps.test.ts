// Flow steps: APIs whose login the auditor could not express before (issue 13). Tokenland
// carries the pending token in the code request's body (its own field name, or OAuth-style
// mfa_token), hands out the remember-me token in a reply body to be exchanged at an
// endpoint, and puts the reset token in the URL path. Profiles written from the API alone.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { deepMerge, parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { startTokenland, TOKENLAND_USERS, type TokenlandFlaws, type TokenlandStyle } from '../fixtures/tokenland/app.js';
import { digest } from './helpers.js';

function profile(style: TokenlandStyle, mailDir: string, extra: Record<string, unknown> = {}) {
  const path = fileURLToPath(new URL(`../fixtures/tokenland/${style}.profile.yaml`, import.meta.url));
  const raw = parse(readFileSync(path, 'utf8').replace('MAILDIR', mailDir)) as unknown;
  return parseProfile(deepMerge(raw, extra), `tokenland ${style}`);
}

async function audit(style: TokenlandStyle, flaws: Partial<TokenlandFlaws>, extra: Record<string, unknown> = {}) {
  const mailDir = await mkdtemp(join(tmpdir(), 'tokenland-mail-'));
  const app = await startTokenland({ style, flaws, mailDir });
  try {
    return await runAudit({ target: app.url, profile: profile(style, mailDir, extra) });
  } finally {
    await app.close();
    await rm(mailDir, { recursive: true, force: true });
  }
}

const notBlocked = (r: Awaited<ReturnType<typeof audit>>) =>
  r.results
    .filter((x) => x.status !== 'blocked')
    .map((x) => `${x.id}:${x.status}`)
    .sort();

// Without a cookie or bearer token before the factor there is nothing to fixate; the API
// has no token login and no change-e-mail/password actions; OAuth style has no remember-me.
const NA_BOTH = [
  'session-fixation-mfa:not_applicable',
  'stale-session-sensitive-action:not_applicable',
  'token-login-skips-mfa:not_applicable',
  'api-token-without-step-up:not_applicable',
  // No OpenID Provider.
  'oidc-code-for-pending-session:not_applicable',
  'oidc-prompt-none-pending:not_applicable',
  'oidc-acr-values-ignored:not_applicable',
  'oidc-refresh-after-factor-removal:not_applicable',
  'upstream-login-links-without-factor:not_applicable',
];

describe.concurrent('flow steps: Tokenland', () => {
  it('pending token in the body under its own name: secure variant, every applicable check blocked', async () => {
    const report = await audit('pending-body', {});
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(notBlocked(report), digest(report)).toEqual([...NA_BOTH].sort());
    // The refusal to disable MFA says what the app demanded.
    const disable = report.results.find((r) => r.id === 'mfa-disable-without-reauth')!;
    expect(disable.summary).toContain('demanded a fresh second factor');
    const text = JSON.stringify(report);
    expect(text).not.toContain(TOKENLAND_USERS[0].password);
    for (const c of TOKENLAND_USERS[0].recoveryCodes) expect(text).not.toContain(c);
  });

  it('pending token in the body: planted flaws found (replay, body remember-me token, reset token in the path, password-only disable)', async () => {
    const report = await audit('pending-body', {
      totpReplay: true,
      rememberSkipsMfa: true,
      resetLogsIn: true,
      disableWithPasswordOnly: true,
    });
    const bypassed = report.results
      .filter((r) => r.status === 'bypassed')
      .map((r) => r.id)
      .sort();
    expect(bypassed, digest(report)).toEqual([
      'mfa-disable-without-reauth',
      'password-reset-session',
      'remember-me-skips-mfa',
      'totp-replay',
    ]);
    expect(
      report.results.filter((r) => r.status === 'error' || r.status === 'inconclusive'),
      digest(report),
    ).toEqual([]);
    const disable = report.results.find((r) => r.id === 'mfa-disable-without-reauth')!;
    expect(disable.summary).toContain('re-authentication demanded: password only (no fresh second factor)');
    // The reset went to /api/v2/password/reset/<token from the mail>.
    const reset = report.results.find((r) => r.id === 'password-reset-session')!;
    expect(reset.evidence.some((e) => /\/api\/v2\/password\/reset\/[^/]+$/.test(e.request.url) && e.response?.status === 200)).toBe(true);
  });

  it('OAuth-style mfa_token: secure variant blocked, the reusable recovery code found', async () => {
    const secure = await audit('oauth', {});
    expect(notBlocked(secure), digest(secure)).toEqual([...NA_BOTH, 'remember-me-skips-mfa:not_applicable'].sort());
    const flawed = await audit('oauth', { recoveryCodeReuse: true });
    const got = Object.fromEntries(
      flawed.results.filter((r) => r.status !== 'blocked' && r.status !== 'not_applicable').map((r) => [r.id, r.status]),
    );
    // The race is not a second finding for a code that is simply reusable.
    expect(got, digest(flawed)).toEqual({ 'recovery-code-reuse': 'bypassed' });
    expect(flawed.results.find((r) => r.id === 'recovery-code-race')?.status).toBe('not_applicable');
  });
});
