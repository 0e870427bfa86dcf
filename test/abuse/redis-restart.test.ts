/**
 * Redis restarted without persistence (a test-started redis-server, --save "" --appendonly
 * no) forgets everything it held. Account lockouts and consecutive-failure counts live in
 * the database, so they survive: a locked account stays locked on every instance, no guess
 * is granted again, and once the lock ends the owner signs in.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { login, loginPending, PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import { startPostgresPair } from '../helpers/server.js';
import { throwawayRedis } from '../helpers/throwaway.js';
import { totpAt, wrongTotp } from '../helpers/totp.js';
import { expect429 } from './helpers.js';

const LOCKOUT = 6;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('Redis restarted without persistence', () => {
  it('forgets no lockout and no failure count: locked accounts stay locked, partial counts keep counting', async () => {
    const redis = await throwawayRedis();
    cleanups.push(() => redis.stop());
    const pair = await startPostgresPair('redisrestart', {
      GATEHOUSE_REDIS_URL: redis.url,
      GATEHOUSE_LOCKOUT_SECONDS: String(LOCKOUT),
      GATEHOUSE_ARGON2_MEMORY_KIB: '64',
      GATEHOUSE_ARGON2_ITERATIONS: '1',
    });
    cleanups.push(() => pair.cleanup());
    const [a, b] = pair.servers;

    // Account 1: ten wrong second-factor codes (two pending sessions) lock it.
    const locked = await signupWithTotp(a.url);
    for (let i = 0; i < 10; i++) {
      const pending = await loginPending(i % 2 ? a.url : b.url, locked.email);
      const r = await pending.post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(locked.secret, i) });
      expect([401, 429]).toContain(r.status);
    }
    // Account 2: seven wrong passwords, three short of the lock.
    const partial = await signupWithTotp(a.url);
    for (let i = 0; i < 7; i++) {
      expect((await login(i % 2 ? a.url : b.url, { email: partial.email, password: `${PASSWORD}-wrong-${i}` })).res.status).toBe(401);
    }

    await redis.kill();
    await redis.start();
    // Both instances reconnect by themselves.
    const t0 = Date.now();
    while (
      (await loginPending(a.url, partial.email).then(
        () => true,
        () => false,
      )) === false
    ) {
      if (Date.now() - t0 > 20_000) throw new Error('no recovery after the Redis restart');
      await new Promise((r) => setTimeout(r, 200));
    }
    // (That correct password forgave the seven failures, as a success does: count again from here.)
    for (let i = 0; i < 9; i++) {
      expect((await login(i % 2 ? a.url : b.url, { email: partial.email, password: `${PASSWORD}-again-${i}` })).res.status).toBe(401);
    }
    await redis.kill();
    await redis.start();
    await new Promise((r) => setTimeout(r, 1_000));
    // The tenth wrong password after the second restart locks: nine were remembered.
    const tenth = await login(b.url, { email: partial.email, password: `${PASSWORD}-tenth` });
    expect([401, 429]).toContain(tenth.res.status);
    expect429((await login(a.url, partial)).res);

    // The locked account is still locked on both instances: even the right code is refused.
    for (const server of [a, b]) {
      const pending = await loginPending(server.url, locked.email).catch(() => null);
      if (!pending) continue; // the password step may itself be limited: also refused
      expect429(await pending.post('/api/auth/mfa/verify', { method: 'totp', code: totpAt(locked.secret) }));
    }

    // After the lock, the owner gets in.
    await new Promise((r) => setTimeout(r, LOCKOUT * 1000 + 500));
    const pending = await loginPending(a.url, locked.email);
    expect((await pending.post('/api/auth/mfa/verify', { method: 'recovery_code', code: locked.recoveryCodes[0] })).status).toBe(200);
  }, 120_000);
});
