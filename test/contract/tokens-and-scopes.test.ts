import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Client, FAST, expectError, expectIso, mfaUser, signup, strongPassword, uniqueEmail, type User } from './client.js';

let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer({ ...FAST, GATEHOUSE_TRANSFER_STEP_UP_CENTS: '1000' });
});
afterAll(async () => {
  await srv?.close();
});

async function makeToken(u: User, scopes: string[], name = 'ci'): Promise<{ id: string; token: string }> {
  const r = await u.client.post('/api/tokens', { name, scopes });
  expect(r.status, r.text).toBe(201);
  return r.body;
}
const api = (token: string) => {
  const c = new Client(srv.url);
  c.bearer = token;
  return c;
};

describe.concurrent('personal API tokens', () => {
  it('POST /api/tokens → 201 {id, token, scopes}; GET lists without the secret', async () => {
    const u = await signup(srv.url, 'tk');
    const r = await u.client.post('/api/tokens', { name: 'ci', scopes: ['account:read', 'transactions:read'] });
    expect(r.status, r.text).toBe(201);
    expect(typeof r.body.id).toBe('string');
    expect(typeof r.body.token).toBe('string');
    expect([...r.body.scopes].sort()).toEqual(['account:read', 'transactions:read']);
    const l = await u.client.get('/api/tokens');
    expect(l.status).toBe(200);
    expect(l.body.tokens).toHaveLength(1);
    const t = l.body.tokens[0];
    expect(t).toMatchObject({ id: r.body.id, name: 'ci' });
    expect([...t.scopes].sort()).toEqual(['account:read', 'transactions:read']);
    expectIso(t.createdAt);
    expect(t.lastUsedAt).toBeNull();
    expect(l.text).not.toContain(r.body.token);
    // used → lastUsedAt set
    expect((await api(r.body.token).get('/api/account')).status).toBe(200);
    const l2 = await u.client.get('/api/tokens');
    expectIso(l2.body.tokens[0].lastUsedAt);
  });

  it('scopes outside the set, or wrong types, are 400 invalid_request', async () => {
    const u = await signup(srv.url, 'tkbad');
    for (const body of [
      { name: 'x', scopes: ['admin'] },
      { name: 'x', scopes: ['account:read', 'account:write'] },
      { name: 'x', scopes: 'account:read' },
      { name: 'x' },
      { scopes: ['account:read'] },
      { name: 5, scopes: [] },
      { name: 'x', scopes: ['account:read'], extra: 1 },
    ]) {
      expectError(await u.client.post('/api/tokens', body), 400, 'invalid_request');
    }
  });

  it('a token outside its scopes gets 403 insufficient_scope', async () => {
    const u = await signup(srv.url, 'tkscope');
    const ro = await makeToken(u, ['account:read']);
    expect((await api(ro.token).get('/api/account')).status).toBe(200);
    expectError(await api(ro.token).get('/api/account/transactions'), 403, 'insufficient_scope');
    expectError(await api(ro.token).post('/api/transfers', { to: 'bob', amountCents: 5 }), 403, 'insufficient_scope');
    const tx = await makeToken(u, ['transactions:read']);
    expect((await api(tx.token).get('/api/account/transactions')).status).toBe(200);
    expectError(await api(tx.token).get('/api/account'), 403, 'insufficient_scope');
    const none = await makeToken(u, []);
    expectError(await api(none.token).get('/api/account'), 403, 'insufficient_scope');
    const w = await makeToken(u, ['transfers:write']);
    const t = await api(w.token).post('/api/transfers', { to: 'bob', amountCents: 5 });
    expect(t.status, t.text).toBe(201);
  });

  it('a token can never perform a ★ action: 403 interactive_session_required', async () => {
    const u = await mfaUser(srv.url, 'tkstar');
    const all = await makeToken(u, ['account:read', 'transactions:read', 'transfers:write']);
    const c = api(all.token);
    const calls: [string, string, unknown?][] = [
      ['POST', '/api/tokens', { name: 'y', scopes: ['account:read'] }],
      ['POST', '/api/account/email', { email: uniqueEmail('tk') }],
      ['POST', '/api/account/password', { currentPassword: u.password, newPassword: strongPassword() }],
      ['POST', '/api/mfa/recovery-codes'],
      ['POST', '/api/mfa/totp/setup'],
      ['DELETE', `/api/mfa/totp/${u.factorId}`],
      ['POST', '/api/transfers', { to: 'bob', amountCents: 1000 }],
    ];
    for (const [m, p, b] of calls) expectError(await c.req(m, p, b), 403, 'interactive_session_required');
    // also not the interactive proofs
    const r = await c.post('/api/auth/step-up', { method: 'recovery_code', code: u.recovery[0] });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect((await u.client.get('/api/mfa')).body.factors).toHaveLength(1);
  });

  it('a token travelling with a foreign Origin is not a CSRF case', async () => {
    const u = await signup(srv.url, 'tkcsrf');
    const w = await makeToken(u, ['transfers:write']);
    const r = await api(w.token).post(
      '/api/transfers',
      { to: 'bob', amountCents: 5 },
      { headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } },
    );
    expect(r.status, r.text).toBe(201);
  });

  it("DELETE /api/tokens/:id → 204 and the token stops working; another account's id is 404", async () => {
    const u = await signup(srv.url, 'tkdel');
    const v = await signup(srv.url, 'tkdel2');
    const t = await makeToken(u, ['account:read']);
    const tv = await makeToken(v, ['account:read']);
    expectError(await u.client.del(`/api/tokens/${tv.id}`), 404, 'not_found');
    expectError(await u.client.del(`/api/tokens/nonexistent`), 404, 'not_found');
    expect((await api(tv.token).get('/api/account')).status).toBe(200);
    expect((await u.client.del(`/api/tokens/${t.id}`)).status).toBe(204);
    expectError(await api(t.token).get('/api/account'), 401, 'unauthenticated');
    expect((await u.client.get('/api/tokens')).body.tokens).toHaveLength(0);
  });

  it('a token sees only its own account', async () => {
    const u = await signup(srv.url, 'tkown');
    const t = await makeToken(u, ['account:read']);
    const a = await api(t.token).get('/api/account');
    expect(a.body.id).toBe(u.id);
    expect(a.body.email).toBe(u.email);
  });

  it('a token is not a session: it cannot list or end sessions', async () => {
    const u = await signup(srv.url, 'tksess');
    const t = await makeToken(u, ['account:read', 'transactions:read', 'transfers:write']);
    const r = await api(t.token).post('/api/auth/logout');
    expect(r.status).toBeLessThan(500);
    expect((await api(t.token).get('/api/account')).status).toBe(200);
  });

  it('GET /api/tokens requires authentication', async () => {
    expectError(await new Client(srv.url).get('/api/tokens'), 401, 'unauthenticated');
    expectError(await new Client(srv.url).get('/api/account', { bearer: 'gh_not_a_real_token' }), 401, 'unauthenticated');
  });
});
