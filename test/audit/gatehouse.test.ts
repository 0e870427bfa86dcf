// The third run: Gatehouse itself, audited with the built-in profile. The test sets up its
// accounts the way any client would (the contract's HTTP API: signup, TOTP setup and
// confirm), so the auditor and this test both treat Gatehouse as a black box.
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { Session } from '../../src/audit/session.js';
import { describe, expect, it } from 'vitest';
import { parseProfile } from '../../src/audit/profile.js';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { runAudit } from '../../src/audit/runner.js';
import { auditedGatehouse, digest, idsWith } from './helpers.js';

interface TestAccount {
  username: string;
  password: string;
  totpSecret: string;
  recoveryCodes: string[];
}

/** Just enough of a cookie-carrying client for the account setup. */
class Client {
  // The auditor's own session jar: one cookie implementation for the whole auditor suite.
  private readonly jar: Session;
  constructor(private readonly base: string) {
    this.jar = new Session(undefined, base);
  }

  async post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(new URL(path, this.base), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...this.jar.headers(path),
      },
      body: JSON.stringify(body),
    });
    this.jar.absorbSetCookies(res.headers.getSetCookie(), path);
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }
}

async function createAccountWithTotp(base: string, email: string): Promise<TestAccount> {
  const password = `Audit-${email}-q7Lm!x2Z`;
  const client = new Client(base);
  const signup = await client.post('/api/auth/signup', { email, password });
  expect(signup.status, JSON.stringify(signup.json)).toBe(201);
  const setup = await client.post('/api/mfa/totp/setup', {});
  expect(setup.status, JSON.stringify(setup.json)).toBe(200);
  const secret = String(setup.json.secret);
  // Confirm with the previous step's code (accepted within the drift window), so the
  // current step is still unused when the auditor starts.
  const totp = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30 });
  const code = totp.generate({ timestamp: Date.now() - 30_000 });
  const confirm = await client.post('/api/mfa/totp/confirm', { code });
  expect(confirm.status, JSON.stringify(confirm.json)).toBe(200);
  const recoveryCodes = confirm.json.recoveryCodes as string[];
  expect(recoveryCodes).toHaveLength(10);
  return { username: email, password, totpSecret: secret, recoveryCodes };
}

describe('auditor against Gatehouse (built-in profile)', () => {
  const target = auditedGatehouse();

  it('reports every check blocked', async () => {
    const alice = await createAccountWithTotp(target.server.url, 'alice.audit@example.test');
    const bob = await createAccountWithTotp(target.server.url, 'bob.audit@example.test');
    // A relying party registered for the OIDC checks (as `gatehouse clients add` would).
    const g = target.server.server.gatehouse;
    const { clientSecret } = await new ClientRegistry(g.database.db, g.keys.box, target.server.dataDir).add(
      { client_id: 'audit-client', redirect_uris: ['http://127.0.0.1:9/cb'] },
      Date.now(),
    );
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        accounts: [alice, bob],
        stepUp: { maxAgeSeconds: 2 },
        // Without GATEHOUSE_SMTP_URL, Gatehouse writes each mail as a file under <dataDir>/mail.
        passwordReset: { token: { from: 'mailDir', dir: join(target.server.dataDir, 'mail') } },
        oidc: { clientId: 'audit-client', clientSecret, redirectUri: 'http://127.0.0.1:9/cb', unreachableAcr: 'urn:gatehouse:phr' },
        // Gatehouse trusts the auditor's own upstream OpenID Provider (federated login).
        upstreamLogin: target.upstreamLogin,
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'gatehouse test profile',
    );

    const report = await runAudit({ target: target.server.url, profile });

    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    // Gatehouse has every feature the checks need, so none is skipped.
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual([]);
    expect(idsWith(report, 'blocked')).toHaveLength(20);
    expect(report.exitCode).toBe(0);
  });
});
