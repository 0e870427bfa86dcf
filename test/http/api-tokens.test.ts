/**
 * Personal API tokens over real HTTP: creation is ★ and notified, the secret is shown
 * once and stored only hashed, scopes bound what a token can do, it never performs a ★
 * action, another account's token is 404, and lastUsedAt is written at most once a minute.
 */
import { describe, expect, it } from 'vitest';
import { hashToken } from '../../src/services/keys.js';
import { serverWithMailSink } from '../helpers/smtp.js';
import { Client } from '../helpers/http-client.js';
import { signup, signupWithTotp, sleep } from '../helpers/accounts.js';

const mailed = serverWithMailSink({ GATEHOUSE_STEP_UP_MAX_AGE: '2', GATEHOUSE_TRANSFER_STEP_UP_CENTS: '1000' });
const { smtp } = mailed;

const TOKEN_SHAPE = /^gth_pat_[A-Za-z0-9_-]{43}$/;

describe('personal API tokens', () => {
  it('creates a prefixed token right after sign-in, stores only its hash, and mails token.created', async () => {
    const { client, email } = await signup(mailed.server.url);
    const res = await client.post('/api/tokens', { name: 'ci', scopes: ['transactions:read', 'account:read'] });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(TOKEN_SHAPE);
    expect(res.body.scopes.sort()).toEqual(['account:read', 'transactions:read']);
    expect(typeof res.body.id).toBe('string');

    const rows = await mailed.server.server.gatehouse.database.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('id', '=', res.body.id)
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(hashToken(res.body.token));
    expect(JSON.stringify(rows)).not.toContain(res.body.token.slice(8));

    const mail = await smtp.waitForEvent(email, 'token.created');
    expect(mail.headers['x-gatehouse-event']).toBe('token.created');
    expect(mail.text).toContain('"ci"');
    expect(mail.text).toMatch(/When: .*\nFrom IP: 127\.0\.0\.1\nBrowser: /);
    expect(mail.text).not.toContain(res.body.token);
    const events = await client.get('/api/account/events');
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('token.created');
  });

  it('refuses unknown scopes and malformed bodies with 400 invalid_request', async () => {
    const { client } = await signup(mailed.server.url);
    for (const body of [
      { name: 'x', scopes: ['admin'] },
      { name: 'x', scopes: ['transactions:read', 'transfers:write:all'] },
      { name: 'x', scopes: 'transactions:read' },
      { name: '', scopes: [] },
      { scopes: ['account:read'] },
      { name: 'x', scopes: ['account:read'], extra: 1 },
    ]) {
      const res = await client.post('/api/tokens', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    }
  });

  it('is a sensitive action: a stale session needs a fresh check first', async () => {
    const { client, password } = await signup(mailed.server.url);
    await sleep(2_100);
    const stale = await client.post('/api/tokens', { name: 'late', scopes: ['account:read'] });
    expect(stale.status).toBe(403);
    expect(stale.body).toMatchObject({ error: 'step_up_required', methods: ['password'], maxAge: 2 });
    expect((await client.post('/api/auth/reauth', { password })).status).toBe(200);
    expect((await client.post('/api/tokens', { name: 'late', scopes: ['account:read'] })).status).toBe(201);
  });

  it('lists tokens without secrets, tracks lastUsedAt at most once a minute, and revokes', async () => {
    const { client } = await signup(mailed.server.url);
    const created = await client.post('/api/tokens', { name: 'reader', scopes: ['transactions:read'] });
    let list = await client.get('/api/tokens');
    expect(list.status).toBe(200);
    expect(list.body.tokens).toEqual([
      { id: created.body.id, name: 'reader', scopes: ['transactions:read'], createdAt: expect.any(String), lastUsedAt: null },
    ]);
    expect(JSON.stringify(list.body)).not.toContain(created.body.token.slice(8));

    const api = new Client(mailed.server.url);
    api.bearer = created.body.token;
    expect((await api.get('/api/account/transactions')).status).toBe(200);
    list = await client.get('/api/tokens');
    const firstUse = list.body.tokens[0].lastUsedAt;
    expect(firstUse).not.toBeNull();
    await sleep(20);
    expect((await api.get('/api/account/transactions')).status).toBe(200);
    list = await client.get('/api/tokens');
    expect(list.body.tokens[0].lastUsedAt).toBe(firstUse);

    expect((await client.delete(`/api/tokens/${created.body.id}`)).status).toBe(204);
    const after = await api.get('/api/account/transactions');
    expect(after.status).toBe(401);
    expect(after.body.error).toBe('unauthenticated');
    expect((await client.delete(`/api/tokens/${created.body.id}`)).status).toBe(404);
  });

  it("answers 404 for another account's token and leaves it working", async () => {
    const alice = await signup(mailed.server.url);
    const mallory = await signup(mailed.server.url);
    const created = await alice.client.post('/api/tokens', { name: 'a', scopes: ['transactions:read'] });
    const res = await mallory.client.delete(`/api/tokens/${created.body.id}`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
    expect((await mallory.client.get('/api/tokens')).body.tokens).toEqual([]);
    const api = new Client(mailed.server.url);
    api.bearer = created.body.token;
    expect((await api.get('/api/account/transactions')).status).toBe(200);
  });

  it('keeps a token inside its scopes and away from every sensitive or token-management action', async () => {
    const account = await signupWithTotp(mailed.server.url);
    const read = await account.client.post('/api/tokens', { name: 'r', scopes: ['transactions:read'] });
    const write = await account.client.post('/api/tokens', { name: 'w', scopes: ['transfers:write', 'account:read'] });
    expect(read.status).toBe(201);
    expect(write.status).toBe(201);
    const reader = new Client(mailed.server.url);
    reader.bearer = read.body.token;
    const writer = new Client(mailed.server.url);
    writer.bearer = write.body.token;

    const outOfScope = await reader.post('/api/transfers', { to: 'bob', amountCents: 5 });
    expect(outOfScope.status).toBe(403);
    expect(outOfScope.body.error).toBe('insufficient_scope');
    expect((await reader.get('/api/account')).body.error).toBe('insufficient_scope');

    expect((await writer.post('/api/transfers', { to: 'bob', amountCents: 5 })).status).toBe(201);
    expect((await writer.get('/api/account')).status).toBe(200);
    const big = await writer.post('/api/transfers', { to: 'bob', amountCents: 1000 });
    expect(big.status).toBe(403);
    expect(big.body.error).toBe('interactive_session_required');

    for (const [method, path, body] of [
      ['POST', '/api/tokens', { name: 'more', scopes: ['transfers:write'] }],
      ['GET', '/api/tokens', undefined],
      ['DELETE', `/api/tokens/${read.body.id}`, undefined],
      ['POST', '/api/account/email', { email: 'attacker@example.com' }],
      ['POST', '/api/account/password', { currentPassword: account.password, newPassword: 'another-long-passphrase-7' }],
      ['POST', '/api/mfa/recovery-codes', undefined],
      ['DELETE', `/api/mfa/totp/${account.factorId}`, undefined],
      ['GET', '/api/sessions', undefined],
    ] as const) {
      const res = await writer.req(method, path, body === undefined ? {} : { json: body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error, `${method} ${path}`).toBe('interactive_session_required');
    }
  });

  it('treats a malformed or unknown gth_pat_ bearer as unauthenticated', async () => {
    const api = new Client(mailed.server.url);
    for (const bearer of ['gth_pat_', 'gth_pat_short', `gth_pat_${'A'.repeat(43)}`]) {
      api.bearer = bearer;
      const res = await api.get('/api/account/transactions');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('unauthenticated');
    }
  });
});
