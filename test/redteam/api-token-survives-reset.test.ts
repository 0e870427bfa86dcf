/**
 * Red team: a personal API token created by a request that passed the gate just before a
 * password reset committed outlives the reset. The reset promises "every session … is
 * revoked" and revokes API tokens (after its locked transaction), but token creation is
 * not an account change: it neither takes the account lock nor re-checks that the acting
 * session is still current when it writes. An attacker holding a (fresh) session keeps
 * creating tokens; the owner resets the password; a token written after the reset's
 * revocation keeps working: `account:read`, `transactions:read` and `transfers:write`
 * below the step-up threshold, for as long as nobody deletes it by hand.
 *
 * Fixed when the token is written inside AccountChanges.apply with `actingSession`
 * (401 when the session was revoked or replaced meanwhile) and the reset revokes API
 * tokens inside its locked transaction (services/api-tokens.ts create, password-reset.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/http-client.js';
import { signup } from '../helpers/accounts.js';
import { mailedLink } from '../helpers/mail-files.js';
import { FAST_ENV, startPostgresPair, type TestServer } from '../helpers/server.js';

describe('red team: an API token created during a password reset survives it', () => {
  // Two instances sharing PostgreSQL (a real connection pool: requests truly interleave).
  let pair: Awaited<ReturnType<typeof startPostgresPair>>;
  let server: TestServer;
  let other: TestServer;
  beforeAll(async () => {
    pair = await startPostgresPair('rt_token_reset', { ...FAST_ENV, GATEHOUSE_SECRET_KEY: 'rt-token-reset-shared-key-0123456789abcdef-' });
    [server, other] = pair.servers;
  });
  afterAll(async () => {
    await pair?.cleanup();
  });

  it('no token created by a session the reset revoked works afterwards; the owner can still create tokens', async () => {
    const owner = await signup(server.url);
    // The attacker holds a copy of the owner's (fresh) session.
    const attacker = owner.client.withBase(other.url);
    expect((await new Client(server.url).post('/api/auth/password/forgot', { email: owner.email })).status).toBe(202);
    const link = await mailedLink(server.dataDir, { to: owner.email, event: 'password_reset.requested', linkPath: '/reset-password' });

    const tokens: string[] = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const r = await attacker.post('/api/tokens', { name: 't', scopes: ['account:read'] });
        if (r.status === 201) tokens.push(r.body.token);
        else break;
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 50));
    const reset = await new Client(server.url).post('/api/auth/password/reset', {
      token: link.searchParams.get('token'),
      password: 'amber-lantern-77-quarry',
    });
    expect(reset.status).toBe(200);
    stop = true;
    await Promise.all(loops);
    expect(tokens.length).toBeGreaterThan(0);

    const working: string[] = [];
    for (const t of tokens) {
      const r = await new Client(server.url).get('/api/account', { headers: { authorization: `Bearer ${t}` } });
      if (r.status === 200) working.push(t);
    }
    expect(working).toHaveLength(0);

    // Legitimate flow: the owner signs in with the new password and creates a token that works.
    const fresh = new Client(server.url);
    expect((await fresh.post('/api/auth/login', { email: owner.email, password: 'amber-lantern-77-quarry' })).status).toBe(200);
    const mine = await fresh.post('/api/tokens', { name: 'mine', scopes: ['account:read'] });
    expect(mine.status).toBe(201);
    expect((await new Client(server.url).get('/api/account', { headers: { authorization: `Bearer ${mine.body.token}` } })).status).toBe(
      200,
    );
  });
});
