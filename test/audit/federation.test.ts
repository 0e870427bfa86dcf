// The auditor's federated-login check, with the auditor as the upstream OpenID Provider the
// target trusts: against Gatehouse it is blocked (an upstream identity with the account's
// e-mail address gets no session and no link); against the fixture bank with a planted
// flaw it is found, both when the e-mail match gives a full session and when it links the
// identity so that only the second factor is asked; with no flaw, blocked.
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { signupWithTotp } from '../helpers/accounts.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { startFixtureApp, type Flaws, type RunningFixture } from '../fixtures/mfa-app.js';
import { digest, fixtureProfile, freePort, statusOf, UPSTREAM_SECRET as SECRET } from './helpers.js';

const CHECK = 'upstream-login-links-without-factor';

let gatehouse: TestServer | undefined;
let bank: RunningFixture | undefined;
afterEach(async () => {
  await gatehouse?.close();
  await bank?.close();
  gatehouse = bank = undefined;
});

describe('upstream login links an account without its factor', () => {
  it('Gatehouse: blocked, and the account’s own sign-in still works', async () => {
    const issuer = `http://127.0.0.1:${await freePort()}`;
    gatehouse = await startTestServer({
      ...FAST_ENV,
      GATEHOUSE_OIDC_UPSTREAMS: JSON.stringify([{ name: 'audit', issuer, clientId: 'gatehouse', clientSecret: SECRET }]),
    });
    const account = await signupWithTotp(gatehouse.url);
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        accounts: [
          { username: account.email, password: account.password, totpSecret: account.secret, recoveryCodes: account.recoveryCodes },
        ],
        upstreamLogin: { issuer, clientId: 'gatehouse', clientSecret: SECRET, startPath: '/sign-in/upstream/audit' },
        safety: { requestsPerSecond: 100 },
      },
      'gatehouse with the auditor as upstream',
    );
    const report = await runAudit({ target: gatehouse.url, profile, only: [CHECK] });
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(statusOf(report, CHECK), digest(report)).toBe('blocked');
    const result = report.results.find((r) => r.id === CHECK)!;
    // The whole upstream sign-in ran: the target sent the browser to the pending link.
    const paths = result.evidence.map((e) => e.request.url.split('?')[0]);
    expect(paths).toContain(`${gatehouse.url}/sign-in/upstream/audit/callback`);
    expect(result.summary).toContain('/sign-in/upstream/link');
    expect(result.summary).toContain('second factor did not complete one');
    // Nothing got linked to the account.
    expect((await account.client.get('/api/account/upstreams')).body.upstreams).toEqual([]);
    expect(JSON.stringify(report)).not.toContain(SECRET);
  }, 60_000);

  async function auditBank(flaws: Partial<Flaws>) {
    const issuer = `http://127.0.0.1:${await freePort()}`;
    bank = await startFixtureApp({ flaws, upstream: { issuer, clientId: 'bank', clientSecret: SECRET } });
    const profile = fixtureProfile({
      upstreamLogin: { issuer, clientId: 'bank', clientSecret: SECRET, clientAuth: 'client_secret_post', startPath: '/login/upstream' },
    });
    const report = await runAudit({ target: bank.url, profile, only: [CHECK] });
    expect(report.aborted, digest(report)).toBeUndefined();
    return report;
  }

  it('a target that signs the e-mail match in with a full session: bypassed', async () => {
    const report = await auditBank({ upstreamLinksByEmail: true, upstreamSkipsMfa: true });
    expect(statusOf(report, CHECK), digest(report)).toBe('bypassed');
    expect(report.exitCode).not.toBe(0);
  });

  it('a target that links by e-mail and then asks only the second factor: bypassed', async () => {
    const report = await auditBank({ upstreamLinksByEmail: true });
    expect(statusOf(report, CHECK), digest(report)).toBe('bypassed');
    expect(digest(report)).toContain('linked by e-mail alone');
  });

  it('the fixture bank without the flaw: blocked; and a profile without upstreamLogin: not applicable', async () => {
    const report = await auditBank({});
    expect(statusOf(report, CHECK), digest(report)).toBe('blocked');
    await bank!.close();
    bank = await startFixtureApp();
    const without = await runAudit({ target: bank.url, profile: fixtureProfile(), only: [CHECK] });
    expect(statusOf(without, CHECK)).toBe('not_applicable');
  });

  it('a target not configured for the auditor’s upstream: the check cannot conclude (never blocked)', async () => {
    bank = await startFixtureApp();
    const issuer = `http://127.0.0.1:${await freePort()}`;
    const profile = fixtureProfile({ upstreamLogin: { issuer, clientId: 'bank', startPath: '/login/upstream' } });
    const report = await runAudit({ target: bank.url, profile, only: [CHECK] });
    expect(statusOf(report, CHECK), digest(report)).toBe('error');
    expect(digest(report)).toContain('configured to trust');
  });
});
