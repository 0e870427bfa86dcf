// The auditor's OpenID Provider checks: against Gatehouse's provider every one is blocked;
// against a deliberately weak provider (test/fixtures/weak-oidc-provider.ts: its
// interaction signs in a pending session, acr_values ignored) every one is found.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { signupWithTotp } from '../helpers/accounts.js';
import type { TestServer } from '../helpers/server.js';
import { startWeakOidcProvider, WEAK_CLIENT } from '../fixtures/weak-oidc-provider.js';
import { startOidcServer } from '../oidc/rp.js';
import { digest, OIDC_CHECKS, statusOf } from './helpers.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

describe('auditor OIDC checks against Gatehouse', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startOidcServer();
  }, 60_000);
  afterAll(async () => server?.close());

  it('reports each OIDC check blocked (and the legitimate flow works: the preflight signs in with the factor)', async () => {
    const g = server.server.gatehouse;
    const { clientSecret } = await new ClientRegistry(g.database.db, g.keys.box, server.dataDir).add(
      { client_id: 'audit-client', redirect_uris: [REDIRECT] },
      Date.now(),
    );
    const account = await signupWithTotp(server.url);
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        accounts: [
          { username: account.email, password: account.password, totpSecret: account.secret, recoveryCodes: account.recoveryCodes },
        ],
        oidc: { clientId: 'audit-client', clientSecret, redirectUri: REDIRECT, unreachableAcr: 'urn:gatehouse:phr' },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'gatehouse oidc profile',
    );
    const report = await runAudit({ target: server.url, profile, only: OIDC_CHECKS });
    expect(report.aborted, digest(report)).toBeUndefined();
    for (const id of OIDC_CHECKS) expect(statusOf(report, id), digest(report)).toBe('blocked');
    // The factor really went (the refresh check's change), so its refusal is the revocation.
    expect((await account.client.get('/api/mfa')).body.factors).toEqual([]);
  });
});

describe('auditor OIDC checks against a weak provider', () => {
  let weak: Awaited<ReturnType<typeof startWeakOidcProvider>>;
  beforeAll(async () => {
    weak = await startWeakOidcProvider();
  });
  afterAll(async () => weak?.close());

  it('finds each flaw', async () => {
    const profile = parseProfile(
      {
        name: 'weak provider',
        login: { method: 'POST', path: '/api/auth/login', encoding: 'json', mfaRequired: { status: 202 } },
        secondFactor: {
          totp: { method: 'POST', path: '/api/auth/mfa/verify', codeField: 'code' },
          recoveryCode: { method: 'POST', path: '/api/auth/mfa/verify', codeField: 'code' },
          accepted: { status: 200 },
        },
        whoami: { method: 'GET', path: '/api/session', success: { status: 200 } },
        sensitiveActions: [{ name: 'remove TOTP', kind: 'disable_mfa', method: 'DELETE', path: '/api/mfa' }],
        accounts: [weak.account],
        oidc: { authorizationPath: '/auth', tokenPath: '/token', ...WEAK_CLIENT, unreachableAcr: 'urn:weak:phr' },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'weak provider profile',
    );
    const report = await runAudit({ target: weak.url, profile, only: OIDC_CHECKS });
    expect(report.aborted, digest(report)).toBeUndefined();
    for (const id of OIDC_CHECKS) expect(statusOf(report, id), digest(report)).toBe('bypassed');
    expect(report.exitCode).not.toBe(0);
    expect(weak.factorRemoved()).toBe(true);
  });
});
