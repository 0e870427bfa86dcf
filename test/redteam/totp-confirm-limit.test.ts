/**
 * Red team: TOTP confirmation checks a code of the account's pending authenticator, so it
 * must obey the account's second-factor limit. Without it, any other session of the
 * account (an old cookie, a remember-me session) can guess the 6-digit code of an
 * enrolment in progress without bound, win the race against the owner, and come out with
 * a fresh session (mfaAt = now, so ★ actions) and the account's first recovery codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { login, signup } from '../helpers/accounts.js';
import { wrongTotpCodes } from '../helpers/totp.js';

describe('red team: TOTP confirmation under the account limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('another session of the account cannot guess an enrolment in progress without bound', async () => {
    const owner = await signup(server.url);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    const secret: string = setup.body.secret;

    // The attacker's session: any other full session of the account.
    const { client: attacker, res } = await login(server.url, owner);
    expect(res.status).toBe(200);

    let locked = false;
    for (const code of wrongTotpCodes(secret, 12)) {
      const r = await attacker.post('/api/mfa/totp/confirm', { code });
      if (r.status === 429) {
        locked = true;
        expect(r.body.error).toBe('too_many_attempts');
        expect(r.headers['retry-after']).toBeDefined();
        break;
      }
      expect(r.status).toBe(401);
    }
    expect(locked, 'wrong confirmation codes must hit the account lockout').toBe(true);
    // Locked means locked: even the right code is refused now, so guessing gains nothing.
    const right = await attacker.post('/api/mfa/totp/confirm', { code: totpCodeAt(secret, Date.now()) });
    expect(right.status).toBe(429);
    expect((await owner.client.get('/api/mfa')).body.factors).toHaveLength(0);
  });

  it('legitimate: a mistyped code, then the right one, enrols and returns recovery codes', async () => {
    const owner = await signup(server.url);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    const secret: string = setup.body.secret;
    expect((await owner.client.post('/api/mfa/totp/confirm', { code: wrongTotpCodes(secret, 1)[0] })).status).toBe(401);
    const ok = await owner.client.post('/api/mfa/totp/confirm', { code: totpCodeAt(secret, Date.now()) });
    expect(ok.status).toBe(200);
    expect(ok.body.recoveryCodes).toHaveLength(10);
    // A success clears the run of failures: a later login verification works normally.
    const { client } = await login(server.url, owner);
    const v = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(secret, Date.now() + 30_000) });
    expect(v.status).toBe(200);
  });
});
