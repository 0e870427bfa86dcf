/**
 * Red team: a login that checked the OLD password before a password change (or reset)
 * committed, and creates its session after, keeps that session. The attacker who knows
 * the old password keeps logging in in a loop (a correct login gives its per-address
 * attempt back, so the loop is unlimited); the owner changes the password to evict them;
 * one login that was in its argon2 check at the moment of the change comes out with a
 * session issued after the change: the eviction failed (contract: "all other sessions
 * are revoked"; security.md I5). For an account without a second factor it is a full
 * session; with one, a pending session (the factor is still owed).
 *
 * Fixed when every session that exists after the change was authenticated with the
 * password that is current (e.g. the login creates its session only while
 * users.password_hash / security_epoch is still the one it verified).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/http-client.js';
import { mailedLink } from '../helpers/mail-files.js';
import { signup } from '../helpers/accounts.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NEW_PASSWORD = 'amber-lantern-77-quarry';

describe('red team: a login in flight survives the password change meant to evict it', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The default argon2 cost: the window is one password check, as in production.
    server = await startTestServer({ GATEHOUSE_ARGON2_MEMORY_KIB: '19456', GATEHOUSE_ARGON2_ITERATIONS: '2' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('no session authenticated by the old password is alive after the change; the new password works', async () => {
    const owner = await signup(server.url);
    // The attacker: the old password, logging in continuously from 3 clients.
    const survivors: Client[] = [];
    let stop = false;
    const attacker = async () => {
      while (!stop) {
        const c = new Client(server.url);
        const r = await c.post('/api/auth/login', { email: owner.email, password: owner.password });
        if (r.status === 200) survivors.push(c);
        else break; // the password changed: stop before the account locks
      }
    };
    const loops = [attacker(), attacker(), attacker()];
    await new Promise((r) => setTimeout(r, 300));
    // The owner evicts: a password change (signup counts as a fresh password check).
    const change = await owner.client.post('/api/account/password', { currentPassword: owner.password, newPassword: NEW_PASSWORD });
    expect(change.status).toBe(200);
    stop = true;
    await Promise.all(loops);

    // Every session the attacker got must be dead now.
    const alive: number[] = [];
    for (const c of survivors) {
      const s = await c.get('/api/session');
      if (s.status === 200) alive.push(s.status);
    }
    expect(alive).toHaveLength(0);

    // Legitimate flow: the owner's session still works, the new password logs in, the old one does not.
    expect((await owner.client.get('/api/session')).status).toBe(200);
    expect((await new Client(server.url).post('/api/auth/login', { email: owner.email, password: NEW_PASSWORD })).status).toBe(200);
    expect((await new Client(server.url).post('/api/auth/login', { email: owner.email, password: owner.password })).status).toBe(401);
  });

  it('the same through a password reset ("every session revoked"): nothing of the old password lives on', async () => {
    const owner = await signup(server.url);
    expect((await new Client(server.url).post('/api/auth/password/forgot', { email: owner.email })).status).toBe(202);
    const link = await mailedLink(server.dataDir, { to: owner.email, event: 'password_reset.requested', linkPath: '/reset-password' });
    const token = link.searchParams.get('token')!;
    const survivors: Client[] = [];
    let stop = false;
    const attacker = async () => {
      while (!stop) {
        const c = new Client(server.url);
        const r = await c.post('/api/auth/login', { email: owner.email, password: owner.password });
        if (r.status === 200) survivors.push(c);
        else break;
      }
    };
    const loops = [attacker(), attacker(), attacker()];
    await new Promise((r) => setTimeout(r, 300));
    const reset = await new Client(server.url).post('/api/auth/password/reset', { token, password: NEW_PASSWORD });
    expect(reset.status).toBe(200);
    stop = true;
    await Promise.all(loops);

    const alive: number[] = [];
    for (const c of survivors) if ((await c.get('/api/session')).status === 200) alive.push(200);
    expect(alive).toHaveLength(0);
    expect((await new Client(server.url).post('/api/auth/login', { email: owner.email, password: NEW_PASSWORD })).status).toBe(200);
  });
});
