/**
 * Sensitive actions (★) need a fresh check of the account's strongest factor, with a
 * small GATEHOUSE_STEP_UP_MAX_AGE so staleness is reached quickly; the demo bank's
 * transfer threshold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client } from '../helpers/http-client.js';
import { login, loginFull, signup, signupWithTotp, sleep } from '../helpers/accounts.js';

const MAX_AGE = 2;
const THRESHOLD = 5000;
let server: TestServer;
let base: string;

beforeAll(async () => {
  server = await startFastServer({ GATEHOUSE_STEP_UP_MAX_AGE: String(MAX_AGE), GATEHOUSE_TRANSFER_STEP_UP_CENTS: String(THRESHOLD) });
  base = server.url;
});
afterAll(() => server?.close());

const stale = () => sleep(MAX_AGE * 1000 + 300);

function expectStepUp(res: { status: number; body: any }, methods: string[]) {
  expect(res.status).toBe(403);
  expect(res.body.error).toBe('step_up_required');
  expect(res.body.maxAge).toBe(MAX_AGE);
  expect([...res.body.methods].sort()).toEqual([...methods].sort());
}

describe.concurrent('★ with a second factor', () => {
  it('stale sessions get 403 step_up_required on every ★ endpoint; after step-up they work', async () => {
    const account = await signupWithTotp(base);
    const client = account.client;
    // Fresh right after confirming the factor.
    expect((await client.post('/api/transfers', { to: 'a', amountCents: THRESHOLD })).status).toBe(201);
    await stale();
    const methods = ['totp', 'recovery_code'];
    expectStepUp(await client.post('/api/mfa/totp/setup'), methods);
    expectStepUp(await client.post('/api/mfa/recovery-codes'), methods);
    expectStepUp(await client.delete(`/api/mfa/totp/${account.factorId}`), methods);
    expectStepUp(await client.post('/api/transfers', { to: 'a', amountCents: THRESHOLD }), methods);
    // Not ★: still fine.
    expect((await client.get('/api/session')).status).toBe(200);
    expect((await client.post('/api/transfers', { to: 'a', amountCents: THRESHOLD - 1 })).status).toBe(201);
    // Reauth with the password does not make an MFA account fresh.
    expect((await client.post('/api/auth/reauth', { password: account.password })).status).toBe(200);
    expectStepUp(await client.post('/api/mfa/recovery-codes'), methods);

    const before = client.sessionCookie;
    const step = await client.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) });
    expect(step.status).toBe(200);
    expect(step.body.aal).toBe(2);
    expect(Math.abs(Date.parse(step.body.mfaAt) - Date.now())).toBeLessThan(5_000);
    expect(client.sessionCookie).not.toBe(before);
    const codes = await client.post('/api/mfa/recovery-codes');
    expect(codes.status).toBe(200);
    expect((await client.post('/api/transfers', { to: 'a', amountCents: THRESHOLD * 10 })).status).toBe(201);
    expect((await client.delete(`/api/mfa/totp/${account.factorId}`)).status).toBe(204);
  });

  it('a wrong step-up code → 401 invalid_code, the session stays stale but alive', async () => {
    const account = await signupWithTotp(base);
    await stale();
    const res = await account.client.post('/api/auth/step-up', { method: 'recovery_code', code: 'AAAA-AAAA-AAAA-AAAA' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_code');
    expect((await account.client.get('/api/session')).status).toBe(200);
    expectStepUp(await account.client.post('/api/mfa/recovery-codes'), ['totp', 'recovery_code']);
    expect((await account.client.post('/api/auth/step-up', { method: 'recovery_code', code: account.recoveryCodes[0]! })).status).toBe(200);
    expect((await account.client.post('/api/mfa/recovery-codes')).status).toBe(200);
  });

  it('a login completed with a factor is fresh; it goes stale after maxAge', async () => {
    const account = await signupWithTotp(base);
    const client = await loginFull(base, account);
    expect((await client.post('/api/transfers', { to: 'b', amountCents: THRESHOLD })).status).toBe(201);
    await stale();
    expectStepUp(await client.post('/api/transfers', { to: 'b', amountCents: THRESHOLD }), ['totp', 'recovery_code']);
  });

  it('step-up over Bearer works the same and rotates the token', async () => {
    const account = await signupWithTotp(base);
    const { client, res } = await login(base, account, { transport: 'token' });
    const v = await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes[0]! });
    client.bearer = v.body.sessionToken;
    await stale();
    expectStepUp(await client.post('/api/mfa/recovery-codes'), ['totp', 'recovery_code']);
    const step = await client.post('/api/auth/step-up', { method: 'recovery_code', code: account.recoveryCodes[1]! });
    expect(step.status).toBe(200);
    expect(step.body.sessionToken).toBeDefined();
    expect(step.body.sessionToken).not.toBe(v.body.sessionToken);
    const old = new Client(base);
    old.bearer = v.body.sessionToken;
    expect((await old.get('/api/session')).status).toBe(401);
    client.bearer = step.body.sessionToken;
    expect((await client.post('/api/mfa/recovery-codes')).status).toBe(200);
    expect(res.status).toBe(202);
  });

  it('CSRF comes before freshness: a cross-site ★ request is csrf, not step_up_required', async () => {
    const account = await signupWithTotp(base);
    await stale();
    const res = await account.client.post('/api/mfa/recovery-codes', undefined, { headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('csrf');
  });
});

describe.concurrent('★ without a second factor: the password counts', () => {
  it('fresh after signup; stale → step_up_required with methods ["password"]; reauth makes it fresh', async () => {
    const account = await signup(base);
    expect((await account.client.post('/api/transfers', { to: 'c', amountCents: THRESHOLD })).status).toBe(201);
    await stale();
    expectStepUp(await account.client.post('/api/transfers', { to: 'c', amountCents: THRESHOLD }), ['password']);
    expectStepUp(await account.client.post('/api/mfa/totp/setup'), ['password']);
    const reauth = await account.client.post('/api/auth/reauth', { password: account.password });
    expect(reauth.status).toBe(200);
    expect((await account.client.post('/api/transfers', { to: 'c', amountCents: THRESHOLD })).status).toBe(201);
    expect((await account.client.post('/api/mfa/totp/setup')).status).toBe(200);
  });

  it('a login counts as entering the password', async () => {
    const account = await signup(base);
    await stale();
    const { client } = await login(base, account);
    expect((await client.post('/api/transfers', { to: 'd', amountCents: THRESHOLD })).status).toBe(201);
  });

  it('an account that gained a factor in another session needs that factor, not the old password time', async () => {
    const account = await signup(base);
    const other = (await login(base, account)).client;
    const setup = await other.post('/api/mfa/totp/setup');
    expect((await other.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now()) })).status).toBe(200);
    // The first session entered the password moments ago, but the account now has a factor.
    expectStepUp(await account.client.post('/api/transfers', { to: 'e', amountCents: THRESHOLD }), ['totp', 'recovery_code']);
  });
});

describe.concurrent('demo bank threshold', () => {
  it('below the threshold no freshness is needed; at and above it, it is', async () => {
    const account = await signup(base);
    await stale();
    expect((await account.client.post('/api/transfers', { to: 'f', amountCents: THRESHOLD - 1 })).status).toBe(201);
    expectStepUp(await account.client.post('/api/transfers', { to: 'f', amountCents: THRESHOLD }), ['password']);
    expectStepUp(await account.client.post('/api/transfers', { to: 'f', amountCents: THRESHOLD + 1 }), ['password']);
    const txs = (await account.client.get('/api/account/transactions')).body.transactions;
    expect(txs).toHaveLength(1);
  });
});
