/**
 * The attacks on the second factor the contract rules out, each next to the legitimate
 * flow: TOTP replay, cross-account codes, recovery-code reuse (also 20 in parallel), and
 * guessing within one pending session and across sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client } from '../helpers/http-client.js';
import { login, type MfaAccount, signupWithTotp, sleep } from '../helpers/accounts.js';
import { wrongTotp } from '../helpers/totp.js';

const LOCKOUT = 4;
let server: TestServer;
let base: string;

beforeAll(async () => {
  server = await startFastServer({ GATEHOUSE_LOCKOUT_SECONDS: String(LOCKOUT) });
  base = server.url;
});
afterAll(() => server?.close());

const verify = (c: Client, method: 'totp' | 'recovery_code', code: string) => c.post('/api/auth/mfa/verify', { method, code });

function expect429(res: { status: number; body: any; headers: Record<string, unknown> }) {
  expect(res.status).toBe(429);
  expect(res.body.error).toBe('too_many_attempts');
  expect(res.body.retryAfter).toBeGreaterThanOrEqual(1);
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
}

describe('TOTP replay', () => {
  it('the same code twice: accepted once, refused the second time', async () => {
    const account = await signupWithTotp(base);
    const code = totpCodeAt(account.secret, Date.now());
    const first = await login(base, account);
    expect((await verify(first.client, 'totp', code)).status).toBe(200);
    const second = await login(base, account);
    const replay = await verify(second.client, 'totp', code);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_code');
    expect((await second.client.get('/api/session')).body.error).toBe('mfa_required');
    // The legitimate user still gets in with the next code.
    expect((await verify(second.client, 'totp', totpCodeAt(account.secret, Date.now() + 30_000))).status).toBe(200);
  });

  it('an earlier step’s code is refused after a later step’s code was accepted', async () => {
    const account = await signupWithTotp(base);
    const later = totpCodeAt(account.secret, Date.now() + 30_000);
    const earlier = totpCodeAt(account.secret, Date.now());
    const first = await login(base, account);
    expect((await verify(first.client, 'totp', later)).status).toBe(200);
    const second = await login(base, account);
    if (earlier !== later) {
      const res = await verify(second.client, 'totp', earlier);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_code');
    }
    // Recovery codes still work for the legitimate user.
    expect((await verify(second.client, 'recovery_code', account.recoveryCodes[0]!)).status).toBe(200);
  });

  it('a code used at step-up cannot be replayed at login, nor the reverse', async () => {
    const account = await signupWithTotp(base);
    const code = totpCodeAt(account.secret, Date.now());
    const step = await account.client.post('/api/auth/step-up', { method: 'totp', code });
    expect(step.status).toBe(200);
    const { client } = await login(base, account);
    expect((await verify(client, 'totp', code)).body.error).toBe('invalid_code');
    const next = totpCodeAt(account.secret, Date.now() + 30_000);
    expect((await verify(client, 'totp', next)).status).toBe(200);
    const again = await client.post('/api/auth/step-up', { method: 'totp', code: next });
    expect(again.status).toBe(401);
    expect(again.body.error).toBe('invalid_code');
  });

  it('parallel submissions of one code: exactly one succeeds', async () => {
    const account = await signupWithTotp(base);
    const code = totpCodeAt(account.secret, Date.now());
    const clients = await Promise.all(Array.from({ length: 8 }, async () => (await login(base, account)).client));
    const results = await Promise.all(clients.map((c) => verify(c, 'totp', code)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results) expect([200, 401]).toContain(r.status);
  });
});

describe('cross-account codes', () => {
  it('another account’s TOTP code and recovery code are refused; the own ones work', async () => {
    const alice = await signupWithTotp(base);
    const bob = await signupWithTotp(base);
    const { client } = await login(base, bob);
    const aliceTotp = totpCodeAt(alice.secret, Date.now());
    if (aliceTotp !== totpCodeAt(bob.secret, Date.now())) {
      expect((await verify(client, 'totp', aliceTotp)).body.error).toBe('invalid_code');
    }
    expect((await verify(client, 'recovery_code', alice.recoveryCodes[0]!)).body.error).toBe('invalid_code');
    expect((await client.get('/api/session')).body.error).toBe('mfa_required');
    // Alice's code was not spent by Bob's attempt.
    const aliceLogin = await login(base, alice);
    expect((await verify(aliceLogin.client, 'recovery_code', alice.recoveryCodes[0]!)).status).toBe(200);
    expect((await verify(client, 'recovery_code', bob.recoveryCodes[0]!)).status).toBe(200);
  });
});

describe('recovery codes', () => {
  it('accepted in any case and without separators, once; reuse is refused', async () => {
    const account = await signupWithTotp(base);
    const code = account.recoveryCodes[0]!;
    const typed = code.replace(/-/g, '').toLowerCase();
    const first = await login(base, account);
    const ok = await verify(first.client, 'recovery_code', typed);
    expect(ok.status).toBe(200);
    expect(ok.body.aal).toBe(2);
    expect((await first.client.get('/api/mfa')).body.recoveryCodesRemaining).toBe(9);

    const second = await login(base, account);
    for (const variant of [code, typed, code.toLowerCase(), code.replace(/-/g, ' ')]) {
      const res = await verify(second.client, 'recovery_code', variant);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_code');
    }
    expect((await verify(second.client, 'recovery_code', ` ${account.recoveryCodes[1]!.replace(/-/g, '_')} `)).status).toBe(200);
  });

  it('20 parallel uses of one code (20 pending sessions): exactly one success', async () => {
    const account = await signupWithTotp(base);
    const code = account.recoveryCodes[0]!;
    const clients = await Promise.all(Array.from({ length: 20 }, async () => (await login(base, account)).client));
    const results = await Promise.all(clients.map((c) => verify(c, 'recovery_code', code)));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    // The others are wrong codes now (or, once ten failures pile up, the account lockout).
    for (const r of results) expect([200, 401, 429]).toContain(r.status);
    const sessions = await Promise.all(clients.map((c) => c.get('/api/session')));
    expect(sessions.filter((r) => r.status === 200)).toHaveLength(1);
    expect((await clients[results.indexOf(ok[0]!)]!.get('/api/mfa')).body.recoveryCodesRemaining).toBe(9);

    // The legitimate flow still works with another code (after any lockout the failures caused).
    await sleep(LOCKOUT * 1000 + 200);
    const { client } = await login(base, account);
    expect((await verify(client, 'recovery_code', account.recoveryCodes[1]!)).status).toBe(200);
  });

  it('20 parallel uses of one code in one pending session: exactly one success', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const token = client.sessionCookie!;
    const clones = Array.from({ length: 20 }, () => {
      const c = new Client(base);
      c.cookies.set('gatehouse_session', token);
      return c;
    });
    const results = await Promise.all(clones.map((c) => verify(c, 'recovery_code', account.recoveryCodes[2]!)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results) expect(r.status).toBeLessThan(500);
    // The winner's (new) session is full and stays usable.
    const winner = clones[results.findIndex((r) => r.status === 200)]!;
    expect((await winner.get('/api/session')).body.aal).toBe(2);
    expect((await login(base, account)).res.status).toBe(202);
  });
});

describe('guessing within one pending session', () => {
  it('wrong codes 1–4 → 401; the 5th → 429 and the pending session is revoked', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    for (let i = 0; i < 4; i++) {
      const res = await verify(client, 'totp', wrongTotp(account.secret, i));
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_code');
    }
    expect429(await verify(client, 'totp', wrongTotp(account.secret, 4)));
    // The session is gone: even the right code no longer completes it.
    const after = await verify(client, 'recovery_code', account.recoveryCodes[0]!);
    expect(after.status).toBe(401);
    expect(after.body.error).toBe('no_pending_authentication');
    expect((await client.get('/api/session')).status).toBe(401);

    // The legitimate user signs in again and succeeds (and the code above was not spent).
    const again = await login(base, account);
    expect((await verify(again.client, 'recovery_code', account.recoveryCodes[0]!)).status).toBe(200);
  });

  it('recovery-code guesses count the same way', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    for (let i = 0; i < 4; i++) expect((await verify(client, 'recovery_code', `AAAA-BBBB-CCCC-DDD${i}`)).status).toBe(401);
    expect429(await verify(client, 'recovery_code', 'AAAA-BBBB-CCCC-DDD9'));
    expect((await verify(client, 'recovery_code', account.recoveryCodes[0]!)).body.error).toBe('no_pending_authentication');
  });

  it('parallel guesses in one session cannot exceed five', async () => {
    const account = await signupWithTotp(base);
    const { client } = await login(base, account);
    const token = client.sessionCookie!;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const c = new Client(base);
        c.cookies.set('gatehouse_session', token);
        return verify(c, 'recovery_code', `AAAA-BBBB-CCCC-DD${String(i).padStart(2, '0')}`);
      }),
    );
    expect(results.filter((r) => r.status === 401 && r.body.error === 'invalid_code').length).toBeLessThanOrEqual(4);
    for (const r of results) expect([401, 429]).toContain(r.status);
    expect((await verify(client, 'recovery_code', account.recoveryCodes[0]!)).body.error).toBe('no_pending_authentication');
  });
});

describe('guessing across sessions (account lockout)', () => {
  async function wrongAcrossSessions(account: MfaAccount, n: number): Promise<void> {
    let client = (await login(base, account)).client;
    let inSession = 0;
    for (let i = 0; i < n; i++) {
      if (inSession === 4) {
        client = (await login(base, account)).client;
        inSession = 0;
      }
      const res = await verify(client, 'recovery_code', `ZZZZ-ZZZZ-ZZZZ-ZZ${String(i).padStart(2, '0')}`);
      inSession++;
      if (i < n - 1) expect(res.status, `guess ${i + 1}`).toBe(401);
    }
  }

  it('10 consecutive wrong codes lock the account: even the right code gets 429 with Retry-After; it unlocks after the lockout', async () => {
    const account = await signupWithTotp(base);
    await wrongAcrossSessions(account, 10);
    const { client } = await login(base, account);
    const locked = await verify(client, 'recovery_code', account.recoveryCodes[0]!);
    expect429(locked);
    expect(locked.body.retryAfter).toBeLessThanOrEqual(LOCKOUT);
    // Step-up obeys the same lockout.
    const full = await signupWithTotp(base);
    await wrongAcrossSessions(full, 10);
    expect429(await full.client.post('/api/auth/step-up', { method: 'recovery_code', code: full.recoveryCodes[0]! }));

    // The legitimate user waits out the lockout and gets in; the code was not spent.
    await sleep(LOCKOUT * 1000 + 200);
    const again = await login(base, account);
    expect((await verify(again.client, 'recovery_code', account.recoveryCodes[0]!)).status).toBe(200);
    const events = (await again.client.get('/api/account/events')).body.events.map((e: { type: string }) => e.type);
    expect(events.filter((t: string) => t === 'account.locked')).toHaveLength(1);
    expect(events).toContain('mfa.failed');
  });

  it('a correct code resets the count', async () => {
    const account = await signupWithTotp(base);
    await wrongAcrossSessions(account, 9);
    const ok = await login(base, account);
    expect((await verify(ok.client, 'recovery_code', account.recoveryCodes[0]!)).status).toBe(200);
    await wrongAcrossSessions(account, 9);
    const still = await login(base, account);
    expect((await verify(still.client, 'recovery_code', account.recoveryCodes[1]!)).status).toBe(200);
  });

  it('another account is not affected by the lockout', async () => {
    const victim = await signupWithTotp(base);
    const bystander = await signupWithTotp(base);
    await wrongAcrossSessions(victim, 10);
    const { client } = await login(base, bystander);
    expect((await verify(client, 'recovery_code', bystander.recoveryCodes[0]!)).status).toBe(200);
  });
});

describe('password guessing (account lockout)', () => {
  it('10 consecutive wrong passwords lock the account, across letter case of the email; the right one then gets 429 until the lockout ends', async () => {
    const account = await signupWithTotp(base);
    for (let i = 0; i < 10; i++) {
      const email = i % 2 ? account.email.toUpperCase() : ` ${account.email} `;
      const res = await new Client(base).post('/api/auth/login', { email, password: `wrong-password-${i}` });
      expect(res.status, `attempt ${i + 1}`).toBe(401);
      expect(res.body.error).toBe('invalid_credentials');
    }
    const locked = await login(base, account);
    expect429(locked.res);
    expect(locked.client.sessionCookie).toBeUndefined();
    // Reauth in an existing session obeys the same lockout.
    const reauth = await account.client.post('/api/auth/reauth', { password: account.password });
    expect429(reauth);

    await sleep(LOCKOUT * 1000 + 200);
    const again = await login(base, account);
    expect(again.res.status).toBe(202);
  });

  it('a correct password resets the count', async () => {
    const account = await signupWithTotp(base);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 9; i++) expect((await login(base, { email: account.email, password: `nope-nope-${i}` })).res.status).toBe(401);
      expect((await login(base, account)).res.status).toBe(202);
    }
  });
});
