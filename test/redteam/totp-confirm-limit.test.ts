/**
 * Red team: TOTP confirmation checks a code of the account's pending authenticator. Any
 * other session of the account (an old cookie, a remember-me session) that could confirm
 * it would guess the 6-digit code of an enrolment in progress, win the race against the
 * owner, and come out with a fresh session and the account's first recovery codes. A
 * set-up belongs to the session that began it (I3): other sessions cannot confirm it at
 * all, and the session's own wrong codes obey the account's second-factor limit.
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

  it('another session of the account cannot confirm an enrolment in progress at all, and its tries cost the owner nothing', async () => {
    const owner = await signup(server.url);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    const secret: string = setup.body.secret;

    // The attacker's session: any other full session of the account.
    const { client: attacker, res } = await login(server.url, owner);
    expect(res.status).toBe(200);
    for (const code of [...wrongTotpCodes(secret, 11), totpCodeAt(secret, Date.now())]) {
      const r = await attacker.post('/api/mfa/totp/confirm', { code });
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('no_pending_setup');
    }
    expect((await attacker.get('/api/mfa')).body.factors).toHaveLength(0);
    // The owner's set-up is untouched and not locked: the right code enrols.
    const ok = await owner.client.post('/api/mfa/totp/confirm', { code: totpCodeAt(secret, Date.now()) });
    expect(ok.status).toBe(200);
    expect(ok.body.recoveryCodes).toHaveLength(10);
  });

  it('the session that began the set-up cannot guess its code without bound', async () => {
    const owner = await signup(server.url);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    const secret: string = setup.body.secret;
    const attacker = owner.client;

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
