/**
 * Single use under parallel attack: ≥20 concurrent requests racing for one recovery code or
 * one TOTP step succeed exactly once, and parallel wrong guesses are all counted. Runs on
 * SQLite (one instance) and on two instances sharing PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginPending, signupWithTotp } from '../helpers/accounts.js';
import type { Client } from '../helpers/http-client.js';
import { FAST_ENV, startPostgresPair, startTestServer, type TestServer } from '../helpers/server.js';
import { totpAt, wrongTotp } from '../helpers/totp.js';

const PARALLEL = 24;

const setups = [
  {
    name: 'SQLite',
    async start() {
      const s = await startTestServer({ ...FAST_ENV });
      return { servers: [s], cleanup: () => s.close() };
    },
  },
  {
    name: 'two instances on PostgreSQL',
    async start() {
      return startPostgresPair('races', { ...FAST_ENV, GATEHOUSE_SECRET_KEY: 'races-test-key-0000000000000000000000000000' });
    },
  },
];

async function countEvents(server: TestServer, userId: string, type: string): Promise<number> {
  const rows = await server.server.gatehouse.database.db
    .selectFrom('events')
    .select('id')
    .where('user_id', '=', userId)
    .where('type', '=', type)
    .execute();
  return rows.length;
}

describe.each(setups)('races: $name', (setup) => {
  let servers: TestServer[] = [];
  let cleanup = async () => {};
  const url = (i: number) => servers[i % servers.length]!.url;
  beforeAll(async () => {
    ({ servers, cleanup } = await setup.start());
  }, 60_000);
  afterAll(async () => cleanup());

  async function sessions(email: string, n: number): Promise<Client[]> {
    const out: Client[] = [];
    // Logins in small batches (each is a password hash), then the race itself all at once.
    for (let i = 0; i < n; i += 6)
      out.push(...(await Promise.all(Array.from({ length: Math.min(6, n - i) }, (_, j) => loginPending(url(i + j), email)))));
    return out;
  }

  it(`one recovery code raced by ${PARALLEL} pending sessions succeeds exactly once`, async () => {
    const acct = await signupWithTotp(url(0), { confirmStep: 0 });
    const racers = await sessions(acct.email, PARALLEL);
    const code = acct.recoveryCodes[0]!;
    const replies = await Promise.all(
      racers.map((c, i) => c.withBase(url(i)).post('/api/auth/mfa/verify', { method: 'recovery_code', code })),
    );
    const ok = replies.filter((r) => r.status === 200);
    expect(ok.length).toBe(1);
    for (const r of replies) expect([200, 401, 429], r.text).toContain(r.status);
    expect(await countEvents(servers[0]!, acct.userId, 'mfa.recovery_code_used')).toBe(1);
    // And it stays used.
    const again = await loginPending(url(1), acct.email);
    expect((await again.post('/api/auth/mfa/verify', { method: 'recovery_code', code: code.toLowerCase() })).status).not.toBe(200);
  });

  it(`one TOTP step raced by ${PARALLEL} pending sessions succeeds exactly once, and no earlier step works after it`, async () => {
    const acct = await signupWithTotp(url(0), { confirmStep: 0 });
    const racers = await sessions(acct.email, PARALLEL);
    const code = totpAt(acct.secret, 1);
    const replies = await Promise.all(racers.map((c, i) => c.withBase(url(i)).post('/api/auth/mfa/verify', { method: 'totp', code })));
    expect(replies.filter((r) => r.status === 200).length).toBe(1);
    for (const r of replies) expect([200, 401, 429], r.text).toContain(r.status);
    const late = await loginPending(url(1), acct.email);
    expect((await late.post('/api/auth/mfa/verify', { method: 'totp', code: totpAt(acct.secret, 0) })).status).not.toBe(200);
  });

  it(`one recovery code raced by 32 step-ups and verifications at once succeeds exactly once`, async () => {
    const acct = await signupWithTotp(url(0), { confirmStep: 0 });
    const racers = await sessions(acct.email, PARALLEL);
    // 8 sessions become full with recovery codes 1..8; then the last code is raced by two
    // step-ups from each full session and by the 16 remaining pending sessions at once.
    const full = racers.slice(0, 8);
    for (let i = 0; i < full.length; i++) {
      const r = await full[i]!.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[i + 1] });
      expect(r.status).toBe(200);
    }
    const code = acct.recoveryCodes[9]!;
    const replies = await Promise.all([
      ...full.flatMap((c, i) => [0, 1].map((j) => c.withBase(url(i + j)).post('/api/auth/step-up', { method: 'recovery_code', code }))),
      ...racers.slice(8).map((c, i) => c.withBase(url(i)).post('/api/auth/mfa/verify', { method: 'recovery_code', code })),
    ]);
    expect(replies.length).toBeGreaterThanOrEqual(20);
    expect(replies.filter((r) => r.status === 200).length).toBe(1);
    for (const r of replies) expect([200, 401, 429], r.text).toContain(r.status);
  });

  it(`${PARALLEL} parallel wrong codes in one pending session: exactly 5 are checked, the session is revoked`, async () => {
    const acct = await signupWithTotp(url(0), { confirmStep: 0 });
    const [c] = await sessions(acct.email, 1);
    const replies = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        c!.withBase(url(i)).post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(acct.secret) }),
      ),
    );
    expect(replies.filter((r) => r.status === 401 && r.body.error === 'invalid_code').length).toBeLessThanOrEqual(4);
    expect(await countEvents(servers[0]!, acct.userId, 'mfa.failed')).toBe(5);
    expect(replies.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(1);
    const after = await c!.post('/api/auth/mfa/verify', { method: 'recovery_code', code: acct.recoveryCodes[0] });
    expect(after.status).toBe(401);
  });
});
