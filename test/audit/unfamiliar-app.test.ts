// The auditor against an app written without looking at its code: "Inkwell", a notes app
// with form posts, a 302 to /login/otp as the MFA signal, Post/Redirect/Get settings
// actions and a guess limit that ends the pending login with a redirect. Its profile was
// written from docs/audit.md alone. Planted: TOTP replay and disabling 2FA without step-up.
// Every form needs a per-session CSRF token, which the profile fetches first (fetchFirst).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { deepMerge, parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { INKWELL_USERS, startInkwell } from '../fixtures/inkwell-notes/app.js';
import { digest, idsWith } from './helpers.js';

const PROFILE_PATH = fileURLToPath(new URL('../fixtures/inkwell-notes/profile.yaml', import.meta.url));
// Not an OpenID Provider either.
const NOT_IN_PROFILE = [
  'oidc-acr-values-ignored',
  'oidc-code-for-pending-session',
  'oidc-prompt-none-pending',
  'oidc-refresh-after-factor-removal',
  'password-reset-session',
  'token-login-skips-mfa',
  'upstream-login-links-without-factor',
];

function profile(edit: (raw: any) => void = () => {}) {
  const raw = parse(readFileSync(PROFILE_PATH, 'utf8'));
  edit(raw);
  return parseProfile(deepMerge(raw, {}), 'inkwell profile');
}

async function audit(opts: Parameters<typeof startInkwell>[0], p = profile()) {
  const app = await startInkwell({ stepUpSeconds: 2, ...opts });
  try {
    return await runAudit({ target: app.url, profile: p });
  } finally {
    await app.close();
  }
}

describe.concurrent('auditor against an unfamiliar app (Inkwell notes)', () => {
  it('reports exactly the two planted flaws as bypassed', async () => {
    const report = await audit({});
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual(['mfa-disable-without-reauth', 'totp-replay']);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual(NOT_IN_PROFILE);
    expect(report.exitCode).toBe(1);
    // The 2FA switch-off went through with the CSRF token and factor id read from /settings.
    const disable = report.results.find((r) => r.id === 'mfa-disable-without-reauth')!;
    const notes = disable.evidence.map((e) => e.note);
    expect(notes).toContain('fetch /settings for <input name="csrf">');
    const sent = disable.evidence.find((e) => e.request.url.endsWith('/settings/2fa/disable') && e.response?.status === 302);
    expect(sent?.request.body).toMatch(/^factor=totp-[0-9a-f]{8}&csrf=/);
    // The replay finding is confirmed by who-am-I, not by the code reply alone.
    const replay = report.results.find((r) => r.id === 'totp-replay')!;
    expect(replay.evidence.at(-1)?.request.url).toMatch(/\/me$/);
    expect(replay.evidence.at(-1)?.response?.status).toBe(200);
    const text = JSON.stringify(report);
    for (const u of INKWELL_USERS) {
      expect(text).not.toContain(u.password);
      expect(text).not.toContain(u.totpSecret);
      for (const c of u.recoveryCodes) expect(text).not.toContain(c);
    }
  });

  it('finds nothing once the two flaws are fixed', async () => {
    const report = await audit({ flaws: { totpReplay: false, disable2faWithoutReauth: false } });
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(report.exitCode).toBe(0);
  });

  // Mistakes a new user makes with such an app must fail closed, never flip a verdict.
  it('stops at the preflight when secondFactor.accepted is left at "any 2xx" but the app redirects', async () => {
    const report = await audit(
      {},
      profile((raw) => delete raw.secondFactor.accepted),
    );
    expect(report.aborted).toMatch(/status 302, Location \/notes\) does not match secondFactor\.accepted/);
    expect(report.exitCode).toBe(2);
  });

  it('does not report a redirecting action as refused when it has no success matcher', async () => {
    const report = await audit(
      { flaws: { totpReplay: false } },
      profile((raw) => raw.sensitiveActions.forEach((a: Record<string, unknown>) => delete a.success)),
    );
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'blocked'), digest(report)).not.toContain('mfa-disable-without-reauth');
    expect(report.results.find((r) => r.id === 'mfa-disable-without-reauth')?.summary).toMatch(/give this action a success matcher/);
    expect(report.exitCode).toBe(2);
  });

  it('does not turn a too-loose accepted matcher into code findings', async () => {
    const report = await audit(
      { flaws: { totpReplay: false, disable2faWithoutReauth: false } },
      profile((raw) => (raw.secondFactor.accepted = { status: [200, 302] })),
    );
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(report.results.find((r) => r.id === 'otp-cross-account')?.summary).toMatch(/accepted matcher may be too loose/);
  });

  it('reads the API key from the HTML page it is shown on, with the CSRF token sent in a header', async () => {
    const report = await audit({ flaws: { totpReplay: false, disable2faWithoutReauth: false, apiKeyWithoutReauth: true } });
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual(['api-token-without-step-up']);
    const result = report.results.find((r) => r.id === 'api-token-without-step-up')!;
    // Refused with the pending session (its form page redirects it away), minted with the stale one.
    expect(result.summary).toMatch(
      /create API key with the session whose second factor is older than 2s \(status 200\); the token then read \/api\/notes \(status 200\)/,
    );
    const minted = result.evidence.find((e) => e.request.url.endsWith('/settings/api-keys') && e.response?.status === 200);
    expect(minted?.request.headers['x-csrf-token']).toBeDefined();
    expect(JSON.stringify(report)).not.toMatch(/ink_[A-Za-z0-9_-]{20}/); // the minted key is masked
  });

  it('needs the CSRF token: without fetchFirst, or with the wrong input name, the preflight stops and says why', async () => {
    const without = await audit(
      {},
      profile((raw) => delete raw.login.fetchFirst),
    );
    expect(without.aborted).toMatch(/password login for marta failed with status 403/);
    const wrong = await audit(
      {},
      profile((raw) => (raw.login.fetchFirst.values[0].input = 'csrf_token')),
    );
    expect(wrong.aborted).toMatch(/status 403; its fetchFirst found no <input name="csrf_token"> \(GET \/login answered 200\)/);
    expect(wrong.exitCode).toBe(2);
  });
});
