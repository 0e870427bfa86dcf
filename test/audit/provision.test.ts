// Provisioning: with `provision: true` the auditor creates its own accounts (sign-up, TOTP
// enrolment, and the second account for otp-cross-account) from the profile's
// accountSetup steps. Against Gatehouse (the built-in profile's accountSetup) and a
// fixture app with its own sign-up shape.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile, ProfileError } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { digest, idsWith } from './helpers.js';

describe('provisioning', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      GATEHOUSE_STEP_UP_MAX_AGE: '2',
      GATEHOUSE_TRUSTED_DEVICE_DAYS: '0',
      GATEHOUSE_ARGON2_MEMORY_KIB: '1024',
      GATEHOUSE_ARGON2_ITERATIONS: '1',
    });
  });
  afterAll(async () => {
    await server?.close();
  });

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

  it('Gatehouse: the built-in accountSetup creates both accounts; every check blocked, none skipped', async () => {
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        provision: true,
        stepUp: { maxAgeSeconds: 2 },
        passwordReset: { token: { from: 'mailDir', dir: join(server.dataDir, 'mail') } },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'provisioned gatehouse',
    );
    const report = await runAudit({ target: server.url, profile });
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
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual([]);
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
    const report = await runAudit({ target: server.url, profile });
    expect(report.aborted).toMatch(/^provisioning failed: accountSetup\.steps\.0 \(POST \/api\/auth\/signup\) for account 1 answered 400/);
    expect(report.results).toEqual([]);
    expect(report.exitCode).toBe(2);
  });
});
