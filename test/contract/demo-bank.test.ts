import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, loginFull, mfaUser, signup, sleep, takeRecovery } from './client.js';

let srv: TestServer;
let dflt: TestServer;
let val: TestServer;

beforeAll(async () => {
  [srv, dflt, val] = await Promise.all([
    startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '2', GATEHOUSE_TRANSFER_STEP_UP_CENTS: '5000' }),
    startTestServer({ ...FAST, GATEHOUSE_STEP_UP_MAX_AGE: '1' }),
    // validation without freshness timing in the way (an amount of 1e400 parses as Infinity: ★ before fields)
    startTestServer({ ...FAST, GATEHOUSE_TRANSFER_STEP_UP_CENTS: '5000' }),
  ]);
});
afterAll(async () => {
  await Promise.all([srv?.close(), dflt?.close(), val?.close()]);
});

describe.concurrent('demo bank', () => {
  it('GET /api/account/transactions → {transactions:[...]}; POST /api/transfers → 201 {id}', async () => {
    const u = await signup(srv.url, 'bank');
    const t = await u.client.get('/api/account/transactions');
    expect(t.status).toBe(200);
    expect(Array.isArray(t.body.transactions)).toBe(true);
    const r = await u.client.post('/api/transfers', { to: 'bob', amountCents: 1234 });
    expect(r.status, r.text).toBe(201);
    expect(r.body.id).toBeDefined();
    expectError(await new Client(srv.url).get('/api/account/transactions'), 401, 'unauthenticated');
    expectError(await new Client(srv.url).post('/api/transfers', { to: 'bob', amountCents: 1 }), 401, 'unauthenticated');
  });

  it('validates to (non-empty, ≤ 64 chars) and amountCents (positive integer)', async () => {
    const u = await signup(val.url, 'bankval');
    const bad: unknown[] = [
      { to: '', amountCents: 1 },
      { to: 'x'.repeat(65), amountCents: 1 },
      { to: 5, amountCents: 1 },
      { amountCents: 1 },
      { to: 'bob' },
      { to: 'bob', amountCents: 0 },
      { to: 'bob', amountCents: -1 },
      { to: 'bob', amountCents: 1.5 },
      { to: 'bob', amountCents: '100' },
      { to: 'bob', amountCents: null },
      { to: 'bob', amountCents: 1, currency: 'EUR' }, // (Gatehouse accepts an optional, undocumented `memo`: an extension)
    ];
    for (const b of bad) {
      const r = await u.client.post('/api/transfers', b);
      expect(r.status, JSON.stringify(b).slice(0, 80)).toBe(400);
      expectError(r, 400, 'invalid_request');
    }
    for (const raw of ['{"to":"bob","amountCents":1e400}', '{"to":"bob","amountCents":NaN}', '{"to":"bob","amountCents":Infinity}']) {
      expectError(await u.client.post('/api/transfers', undefined, { raw }), 400, 'invalid_request');
    }
    expect((await u.client.post('/api/transfers', { to: 'x'.repeat(64), amountCents: 1 })).status).toBe(201);
    expect((await u.client.post('/api/transfers', { to: 'b', amountCents: 1 })).status).toBe(201);
  });

  it('unsafe integers are not accepted as amounts', async () => {
    const u = await signup(val.url, 'bankbig');
    await u.client.post('/api/auth/reauth', { password: u.password });
    const r = await u.client.post('/api/transfers', undefined, { raw: '{"to":"bob","amountCents":9007199254740993}' });
    expectError(r, 400, 'invalid_request');
  });

  it('at or above GATEHOUSE_TRANSFER_STEP_UP_CENTS the transfer is ★', async () => {
    const u = await mfaUser(srv.url, 'bankstar');
    const c = await loginFull(srv.url, u);
    await sleep(2200);
    expect((await c.post('/api/transfers', { to: 'bob', amountCents: 4999 })).status).toBe(201);
    const r = await c.post('/api/transfers', { to: 'bob', amountCents: 5000 });
    expectError(r, 403, 'step_up_required');
    expect(r.body.maxAge).toBe(2);
    expectError(await c.post('/api/transfers', { to: 'bob', amountCents: 1_000_000 }), 403, 'step_up_required');
    expect((await c.post('/api/auth/step-up', { method: 'recovery_code', code: takeRecovery(u) })).status).toBe(200);
    expect((await c.post('/api/transfers', { to: 'bob', amountCents: 5000 })).status).toBe(201);
  });

  it('the default threshold is 100000 cents', async () => {
    const u = await signup(dflt.url, 'bankdef');
    await sleep(1200);
    expect((await u.client.post('/api/transfers', { to: 'bob', amountCents: 99_999 })).status).toBe(201);
    expectError(await u.client.post('/api/transfers', { to: 'bob', amountCents: 100_000 }), 403, 'step_up_required');
  });

  it('transfers made show up in the transactions of that account only', async () => {
    const u = await signup(srv.url, 'banktx');
    const v = await signup(srv.url, 'banktx2');
    const before = (await u.client.get('/api/account/transactions')).body.transactions.length;
    expect((await u.client.post('/api/transfers', { to: 'carol', amountCents: 77 })).status).toBe(201);
    const after = (await u.client.get('/api/account/transactions')).body.transactions;
    expect(after.length).toBe(before + 1);
    const vt = (await v.client.get('/api/account/transactions')).body.transactions;
    expect(JSON.stringify(vt)).not.toContain('carol');
  });
});
