// Provisioning: with `provision: true` the auditor creates its own accounts (sign-up, TOTP
// enrolment, and the second account for otp-cross-account) from the profile's
// accountSetup steps. Against Gatehouse (the built-in profile's accountSetup) and a
// fixture app with its own sign-up shape.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { auditCommand } from '../../src/audit/command.js';
import { deepMerge, parseProfile, ProfileError } from '../../src/audit/profile.js';
import { startTokenland, type TokenlandFlaws } from '../fixtures/tokenland/app.js';
import { runAudit } from '../../src/audit/runner.js';
import { auditedGatehouse, digest, idsWith, SECTION_CHECKS } from './helpers.js';

describe('provisioning', () => {
  const target = auditedGatehouse();

  it('without accounts a profile needs provision: true, and provision: true needs accountSetup', () => {
    expect(() => parseProfile({ extends: 'builtin:gatehouse' })).toThrow(/accounts: missing/);
    expect(() => parseProfile({ extends: 'builtin:gatehouse', provision: true })).not.toThrow();
    const bare = { ...parseProfile({ extends: 'builtin:gatehouse', provision: true }) } as Record<string, unknown>;
    delete bare.accountSetup;
    delete bare.accounts;
    try {
      parseProfile(bare, 'bare');
      expect.unreachable();
    } catch (err) {
      expect((err as ProfileError).problems).toContainEqual(expect.stringMatching(/^accountSetup: provision: true needs accountSetup/));
    }
  });

  it('--provision on the command line: the dry run shows the accounts it would create and their steps', async () => {
    let out = '';
    const io = { stdout: { write: (t: string) => ((out += t), true) }, stderr: { write: () => true } };
    expect(await auditCommand(['--target', target.server.url, '--profile', 'builtin:gatehouse', '--provision', '--dry-run'], io)).toBe(0);
    expect(out).toContain('Provisioning (provision: true): first creates 2 account(s) (gatehouse-audit-{nonce}@example.test)');
    expect(out).toMatch(/- POST \/api\/mfa\/totp\/setup \(capture totpSecret\)/);
  });

  it('Gatehouse: the built-in accountSetup creates both accounts; every check blocked, none skipped', async () => {
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        provision: true,
        stepUp: { maxAgeSeconds: 2 },
        passwordReset: { token: { from: 'mailDir', dir: join(target.server.dataDir, 'mail') } },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'provisioned gatehouse',
    );
    const report = await runAudit({ target: target.server.url, profile });
    expect(report.aborted, digest(report)).toBeUndefined();
    const provisioningRequests = report.preflight.filter((e) => e.note.startsWith('provision account'));
    expect(provisioningRequests.map((e) => new URL(e.request.url).pathname)).toEqual([
      ...['/api/auth/signup', '/api/mfa/totp/setup', '/api/mfa/totp/confirm'],
      ...['/api/auth/signup', '/api/mfa/totp/setup', '/api/mfa/totp/confirm'],
    ]);
    // The report masks what provisioning made: the TOTP secret and the recovery codes.
    const setup = JSON.stringify(provisioningRequests.slice(1, 3));
    expect(setup).not.toMatch(/"secret":"[A-Z2-7]{16,}"/);
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual(SECTION_CHECKS);
    expect(idsWith(report, 'blocked')).toHaveLength(15);
  });

  it('a refused set-up step stops the run with its reason before any check', async () => {
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        provision: true,
        accountSetup: { password: 'short-{nonce}' },
      },
      'weak password',
    );
    // "short-xxxxxxxx" passes the profile's length rule; make it a password Gatehouse refuses.
    profile.accountSetup!.password = 'password';
    const report = await runAudit({ target: target.server.url, profile });
    expect(report.aborted).toMatch(/^provisioning failed: accountSetup\.steps\.0 \(POST \/api\/auth\/signup\) for account 1 answered 400/);
    expect(report.results).toEqual([]);
    expect(report.exitCode).toBe(2);
  });
});

// Tokenland's sign-up: a set-up token in a reply field, sent back in a header; the TOTP
// secret only inside an otpauth:// URL (a regex capture); backup codes at activation.
const TOKENLAND_SETUP = {
  provision: true,
  accounts: [],
  accountSetup: {
    username: 'audit-{nonce}@tokenland.example',
    password: 'Audit-{nonce}-pw',
    steps: [
      { path: '/api/v2/signup', body: { login: '{username}', password: '{password}' }, capture: { setupToken: { json: 'setup_token' } } },
      { path: '/api/v2/mfa/totp', headers: { 'X-Setup-Token': '{setupToken}' }, capture: { totpSecret: { regex: 'secret=([A-Z2-7]+)' } } },
      {
        path: '/api/v2/mfa/totp/activate',
        headers: { 'X-Setup-Token': '{setupToken}' },
        body: { code: '{totp}' },
        recoveryCodes: 'backup_codes',
      },
    ],
  },
};

async function auditTokenland(flaws: Partial<TokenlandFlaws>) {
  const mailDir = await mkdtemp(join(tmpdir(), 'tokenland-mail-'));
  const app = await startTokenland({ style: 'pending-body', flaws, mailDir });
  try {
    const path = fileURLToPath(new URL('../fixtures/tokenland/pending-body.profile.yaml', import.meta.url));
    const raw = parse(readFileSync(path, 'utf8').replace('MAILDIR', mailDir)) as Record<string, unknown>;
    const profile = parseProfile(deepMerge(raw, TOKENLAND_SETUP), 'tokenland provisioned');
    return await runAudit({ target: app.url, profile });
  } finally {
    await app.close();
    await rm(mailDir, { recursive: true, force: true });
  }
}

describe.concurrent('provisioning a fixture app (Tokenland)', () => {
  it('secure variant: the accounts it made audit clean, no error', async () => {
    const report = await auditTokenland({});
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(report.preflight.filter((e) => e.note.startsWith('provision account'))).toHaveLength(6);
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
    // The second account exists, so the cross-account check ran.
    expect(idsWith(report, 'blocked')).toContain('otp-cross-account');
  });

  it('planted replay flaw and password-only disable are found on the provisioned account', async () => {
    const report = await auditTokenland({ totpReplay: true, disableWithPasswordOnly: true });
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual(['mfa-disable-without-reauth', 'totp-replay']);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
  });
});
