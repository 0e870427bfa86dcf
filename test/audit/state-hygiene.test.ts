// One check's success must not break the rest: after the stale-session check changes the
// e-mail address the bank logs in with, every later check still logs in (with the new one).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAudit } from '../../src/audit/runner.js';
import { startFixtureApp } from '../fixtures/mfa-app.js';
import { digest, fixtureProfile, idsWith } from './helpers.js';

describe('state hygiene', () => {
  it('an e-mail change (the login name) before other checks does not break them', async () => {
    const mailDir = await mkdtemp(join(tmpdir(), 'audit-mail-'));
    const app = await startFixtureApp({ flaws: { changeEmailWithoutStepUp: true }, loginByEmail: true, stepUpSeconds: 1, mailDir });
    try {
      const base = fixtureProfile();
      const profile = fixtureProfile({
        stepUp: { maxAgeSeconds: 1 },
        passwordReset: {
          request: { path: '/password/forgot' },
          token: { from: 'mailDir', dir: mailDir },
          reset: { path: '/password/reset' },
        },
        accounts: [{ ...base.accounts[0], username: 'alice@bank.example' }, base.accounts[1]],
      });
      const report = await runAudit({ target: app.url, profile });
      expect(idsWith(report, 'bypassed'), digest(report)).toEqual(['stale-session-sensitive-action']);
      expect(idsWith(report, 'error'), digest(report)).toEqual([]);
      expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
      const stale = report.results.find((r) => r.id === 'stale-session-sensitive-action')!;
      expect(stale.summary).toMatch(/the account's address is now audit-[0-9a-f]+@example\.invalid; later checks use it/);
      // The checks after it logged in with the new address.
      const later = report.results.find((r) => r.id === 'mfa-disable-without-reauth')!;
      expect(later.status, digest(report)).toBe('blocked');
      expect(later.evidence.find((e) => e.request.url.endsWith('/login'))?.request.body).toMatch(
        /username=audit-[0-9a-f]+%40example\.invalid/,
      );
    } finally {
      await app.close();
      await rm(mailDir, { recursive: true, force: true });
    }
  });
});
