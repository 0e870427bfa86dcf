// The auditor's software passkey: its registration and assertions verify with
// @simplewebauthn/server (an independent implementation), and an audit of Gatehouse with
// a passkey-only account (made by provisioning) blocks everything that applies.
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertPasskey, createPasskey } from '../../src/audit/passkey.js';
import { parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { startKeyway, type KeywayFlaws } from '../fixtures/keyway/app.js';
import { auditedGatehouse, digest, idsWith, SECTION_CHECKS } from './helpers.js';

const ORIGIN = 'http://localhost:3000';

describe('software passkey', () => {
  it('registers and signs assertions that @simplewebauthn/server accepts; a wrong challenge or origin is refused', async () => {
    const options = await generateRegistrationOptions({
      rpName: 'Test',
      rpID: 'localhost',
      userName: 'a@example.test',
      attestationType: 'none',
    });
    const { credential, response } = createPasskey(options, ORIGIN);
    const reg = await verifyRegistrationResponse({
      response: response as never,
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: 'localhost',
    });
    expect(reg.verified).toBe(true);
    expect(reg.registrationInfo!.fmt).toBe('none');
    const stored = reg.registrationInfo!.credential;

    const verify = async (counter: number, challengeOverride?: string, origin = ORIGIN) => {
      const request = await generateAuthenticationOptions({ rpID: 'localhost', allowCredentials: [{ id: stored.id }] });
      const assertion = assertPasskey(credential, { ...request, challenge: challengeOverride ?? request.challenge }, origin);
      return verifyAuthenticationResponse({
        response: assertion as never,
        expectedChallenge: request.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: 'localhost',
        credential: { ...stored, counter },
      }).catch((err: Error) => ({ verified: false, error: err.message }));
    };
    const first = await verify(0);
    expect(first.verified).toBe(true);
    expect((first as { authenticationInfo: { newCounter: number } }).authenticationInfo.newCounter).toBe(1);
    expect((await verify(1)).verified).toBe(true);
    expect((await verify(2, 'd3JvbmctY2hhbGxlbmdl')).verified).toBe(false);
    expect((await verify(3, undefined, 'http://evil.example')).verified).toBe(false);
  });

  it('refuses options it cannot honour: no ES256, or a passkey the target does not allow', async () => {
    expect(() => createPasskey({ challenge: 'abc', pubKeyCredParams: [{ alg: -257 }] }, ORIGIN)).toThrow(/ES256/);
    const { credential } = createPasskey({ challenge: 'abc' }, ORIGIN);
    expect(() => assertPasskey(credential, { challenge: 'abc', allowCredentials: [{ id: 'other' }] }, ORIGIN)).toThrow(/do not allow/);
  });
});

describe('auditing Gatehouse with a passkey-only account', () => {
  const target = auditedGatehouse();

  it('provisions passkey accounts and blocks every check that applies; no error', async () => {
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        provision: true,
        accountSetup: {
          steps: [
            { path: '/api/auth/signup', body: { email: '{username}', password: '{password}' }, expect: { status: 201 } },
            { path: '/api/mfa/webauthn/register/options', passkeyOptions: true },
            {
              path: '/api/mfa/webauthn/register',
              body: { response: '{passkeyCredential}', label: 'audit' },
              recoveryCodes: 'recoveryCodes',
            },
          ],
        },
        sensitiveActions: [
          {
            name: 'create API token',
            kind: 'create_api_token',
            path: '/api/tokens',
            body: { name: 'audit-{nonce}', scopes: ['transactions:read'] },
            tokenField: 'token',
          },
          { name: 'change e-mail', kind: 'change_email', path: '/api/account/email', body: { email: 'audit-{nonce}@example.invalid' } },
          {
            name: 'remove passkey',
            kind: 'disable_mfa',
            method: 'DELETE',
            path: '/api/mfa/webauthn/{factorId}',
            params: { factorId: { path: '/api/mfa/webauthn', field: 'passkeys.0.id' } },
          },
        ],
        stepUp: { maxAgeSeconds: 2 },
        passwordReset: { token: { from: 'mailDir', dir: join(target.server.dataDir, 'mail') } },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      'passkey accounts',
    );
    const report = await runAudit({ target: target.server.url, profile });
    expect(report.aborted, digest(report)).toBeUndefined();
    // The routine logins really used the passkey.
    const verifies = report.preflight.filter((e) => e.request.url.endsWith('/api/auth/mfa/verify'));
    expect(verifies.map((e) => (JSON.parse(e.request.body ?? '{}') as { method?: string }).method)).toEqual(['webauthn']);
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
    // TOTP checks need a TOTP secret; the passkey accounts have recovery codes, so those run.
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual([...SECTION_CHECKS, 'otp-cross-account', 'totp-replay'].sort());
    expect(idsWith(report, 'blocked')).toHaveLength(13);
  });
});

// Keyway: an app whose only second factor is a passkey (verified by @simplewebauthn/server).
describe.concurrent('auditing a passkey-only app (Keyway)', () => {
  const profile = () =>
    parseProfile(
      {
        name: 'Keyway',
        login: { path: '/login', mfaRequired: { body: { path: 'next', equals: 'passkey' } } },
        secondFactor: {
          passkey: { options: { path: '/login/passkey/options' }, path: '/login/passkey', responseField: 'assertion' },
          accepted: { status: 200, body: { path: 'next', equals: 'done' } },
        },
        whoami: { path: '/me' },
        protectedEndpoints: [{ path: '/notes' }],
        provision: true,
        accountSetup: {
          steps: [
            { path: '/signup', body: { email: '{username}', password: '{password}' } },
            { path: '/passkeys/options', passkeyOptions: true },
            { path: '/passkeys', body: { credential: '{passkeyCredential}' } },
          ],
        },
        safety: { requestsPerSecond: 100 },
      },
      'keyway',
    );

  async function audit(flaws: Partial<KeywayFlaws>) {
    const app = await startKeyway(flaws);
    try {
      return await runAudit({ target: app.url, profile: profile() });
    } finally {
      await app.close();
    }
  }

  it('secure variant: every applicable check blocked, no error', async () => {
    const report = await audit({});
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
    expect(idsWith(report, 'blocked'), digest(report)).toEqual([
      'password-only-session',
      'pending-forced-browsing',
      'session-fixation-mfa',
    ]);
  });

  it('planted flaws found: password alone signs in; a pending session reads the notes', async () => {
    const ignores = await audit({ loginIgnoresPasskey: true });
    expect(idsWith(ignores, 'bypassed'), digest(ignores)).toEqual(['password-only-session']);
    expect(idsWith(ignores, 'error'), digest(ignores)).toEqual([]);
    const pending = await audit({ pendingReadsNotes: true });
    expect(idsWith(pending, 'bypassed'), digest(pending)).toEqual(['pending-forced-browsing']);
    expect(idsWith(pending, 'error'), digest(pending)).toEqual([]);
  });
});
