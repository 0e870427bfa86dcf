/**
 * Seed regression suite, part A: the classic MFA-bypass write-up, steps (1), (3)–(7).
 * Each test asserts that the attack fails against Gatehouse AND that the legitimate flow
 * still works. (Step (2), remember-me, is in part B.)
 */
import { describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { linkToken, serverWithMailSink } from '../helpers/smtp.js';
import { Client } from '../helpers/http-client.js';
import { login, loginFull, type MfaAccount, signupWithTotp, sleep, uniqueEmail } from '../helpers/accounts.js';

const MAX_AGE = 2;
const mailed = serverWithMailSink({ GATEHOUSE_STEP_UP_MAX_AGE: String(MAX_AGE), GATEHOUSE_TRANSFER_STEP_UP_CENTS: '100000' });
const { smtp } = mailed;

const stale = () => sleep(MAX_AGE * 1000 + 150);
/** A fresh step-up with a recovery code (TOTP steps are kept for the legitimate paths). */
async function fresh(client: Client, account: MfaAccount): Promise<void> {
  const r = await client.post('/api/auth/step-up', { method: 'recovery_code', code: account.recoveryCodes.pop() });
  expect(r.status).toBe(200);
}

describe('classic bypasses (A)', () => {
  it('(1) password-only login gives full access', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    // Attack: the password alone (phished or reused) must not reach anything.
    const { client, res } = await login(mailed.server.url, victim);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('mfa_required');
    for (const [method, path, body] of [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['GET', '/api/account/events'],
      ['GET', '/api/account/transactions'],
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 500 }],
      ['POST', '/api/tokens', { name: 'x', scopes: ['transfers:write'] }],
      ['POST', '/api/account/email', { email: uniqueEmail('mallory') }],
      ['POST', '/api/mfa/recovery-codes'],
      ['DELETE', `/api/mfa/totp/${victim.factorId}`],
    ] as const) {
      const r = await client.req(method, path, body === undefined ? {} : { json: body });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.body.error, `${method} ${path}`).toBe('mfa_required');
    }
    // Legitimate: the second factor completes the login.
    const verify = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(victim.secret, Date.now()) });
    expect(verify.status).toBe(200);
    const session = await client.get('/api/session');
    expect(session.status).toBe(200);
    expect(session.body.aal).toBe(2);
  });

  it('(3) an API token is created without step-up', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    const pending = (await login(mailed.server.url, victim)).client;
    const full = await loginFull(mailed.server.url, victim);
    await fresh(full, victim);
    const existing = await full.post('/api/tokens', { name: 'reader', scopes: ['transactions:read', 'transfers:write', 'account:read'] });
    expect(existing.status).toBe(201);
    const api = new Client(mailed.server.url);
    api.bearer = existing.body.token;
    await stale();

    // Attack: a hijacked but stale session, a password-only session, or a token minting more tokens.
    const r1 = await full.post('/api/tokens', { name: 'backdoor', scopes: ['transfers:write'] });
    expect(r1.status).toBe(403);
    expect(r1.body).toMatchObject({ error: 'step_up_required', maxAge: MAX_AGE });
    expect(r1.body.methods).toContain('totp');
    expect((await pending.post('/api/tokens', { name: 'backdoor', scopes: ['transfers:write'] })).body.error).toBe('mfa_required');
    expect((await api.post('/api/tokens', { name: 'backdoor', scopes: ['transfers:write'] })).body.error).toBe(
      'interactive_session_required',
    );
    // A fresh password is not the account's strongest factor.
    expect((await full.post('/api/auth/reauth', { password: victim.password })).status).toBe(200);
    expect((await full.post('/api/tokens', { name: 'backdoor', scopes: ['transfers:write'] })).body.error).toBe('step_up_required');
    expect((await full.get('/api/tokens')).body.tokens).toHaveLength(1);

    // Legitimate: step up with the second factor, then create; the owner is told.
    expect((await full.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(victim.secret, Date.now()) })).status).toBe(200);
    const created = await full.post('/api/tokens', { name: 'deploy', scopes: ['transactions:read'] });
    expect(created.status).toBe(201);
    await smtp.waitFor((m) => m.to.includes(victim.email) && m.event === 'token.created' && m.text.includes('"deploy"'));
  });

  it('(4) the recovery e-mail is changed without step-up, including with an old session', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    const oldSession = await loginFull(mailed.server.url, victim); // e.g. a forgotten laptop
    const current = await loginFull(mailed.server.url, victim);
    await fresh(current, victim);
    const api = new Client(mailed.server.url);
    api.bearer = (
      await current.post('/api/tokens', { name: 'all', scopes: ['account:read', 'transactions:read', 'transfers:write'] })
    ).body.token;
    await stale();
    const attackerAddress = uniqueEmail('mallory');

    // Attack: change the address with an old session, a stale one after a password re-entry, a pending one, a token.
    for (const client of [oldSession, current]) {
      const r = await client.post('/api/account/email', { email: attackerAddress });
      expect(r.status).toBe(403);
      expect(r.body.error).toBe('step_up_required');
    }
    await oldSession.post('/api/auth/reauth', { password: victim.password });
    expect((await oldSession.post('/api/account/email', { email: attackerAddress })).body.error).toBe('step_up_required');
    expect((await (await login(mailed.server.url, victim)).client.post('/api/account/email', { email: attackerAddress })).body.error).toBe(
      'mfa_required',
    );
    expect((await api.post('/api/account/email', { email: attackerAddress })).body.error).toBe('interactive_session_required');
    await sleep(200);
    expect(smtp.to(attackerAddress)).toHaveLength(0);
    expect((await current.get('/api/account')).body.email).toBe(victim.email);

    // Legitimate: step up, ask, confirm from the new mailbox; the old address is told.
    const next = uniqueEmail('victim-new');
    expect((await current.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(victim.secret, Date.now()) })).status).toBe(200);
    expect((await current.post('/api/account/email', { email: next })).status).toBe(202);
    const token = linkToken(await smtp.waitFor((m) => m.to.includes(next)));
    expect((await new Client(mailed.server.url).post('/api/account/email/confirm', { token })).status).toBe(200);
    expect((await current.get('/api/account')).body.email).toBe(next);
    await smtp.waitForEvent(victim.email, 'account.email_changed');
  });

  it('(5) the password-reset link logs the user in', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    const existing = await loginFull(mailed.server.url, victim);
    // Attack: whoever reads the victim's mail uses the reset link.
    const reader = new Client(mailed.server.url);
    expect((await reader.post('/api/auth/password/forgot', { email: victim.email })).status).toBe(202);
    const token = linkToken(await smtp.waitForEvent(victim.email, 'password_reset.requested'));
    const reset = await reader.post('/api/auth/password/reset', { token, password: 'attacker-chosen-phrase-31' });
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ status: 'password_changed' });
    expect(reset.setCookies).toEqual([]);
    expect(reader.cookies.size).toBe(0);
    expect((await reader.get('/api/session')).body.error).toBe('unauthenticated');
    // Every existing session is gone, and the new password alone still only gets a pending session.
    expect((await existing.get('/api/session')).status).toBe(401);
    const after = await login(mailed.server.url, { email: victim.email, password: 'attacker-chosen-phrase-31' });
    expect(after.res.status).toBe(202);
    expect((await after.client.get('/api/account')).body.error).toBe('mfa_required');
    await smtp.waitForEvent(victim.email, 'account.password_changed');

    // Legitimate: the owner with their second factor signs in with the new password.
    const verify = await after.client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(victim.secret, Date.now()) });
    expect(verify.status).toBe(200);
    expect((await after.client.get('/api/session')).body.aal).toBe(2);
  });

  it('(6) a mobile/token-transport login skips MFA', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    // Attack: the "mobile API" path with only the password.
    const mobile = await login(mailed.server.url, victim, { transport: 'token' });
    expect(mobile.res.status).toBe(202);
    expect(mobile.res.body.status).toBe('mfa_required');
    const pendingToken = mobile.res.body.sessionToken as string;
    expect(pendingToken).toBeTruthy();
    for (const [method, path, body] of [
      ['GET', '/api/session'],
      ['GET', '/api/account'],
      ['GET', '/api/account/transactions'],
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 500 }],
      ['POST', '/api/tokens', { name: 'x', scopes: ['transfers:write'] }],
    ] as const) {
      const r = await mobile.client.req(method, path, body === undefined ? {} : { json: body });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.body.error).toBe('mfa_required');
    }
    // Nor does the pending token work as a cookie.
    const asCookie = new Client(mailed.server.url);
    asCookie.cookies.set('gatehouse_session', pendingToken);
    expect((await asCookie.get('/api/session')).status).toBe(401);

    // Legitimate: the app completes the second factor over the same transport.
    const verify = await mobile.client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(victim.secret, Date.now()) });
    expect(verify.status).toBe(200);
    expect(verify.body.sessionToken).toBeTruthy();
    expect(verify.body.sessionToken).not.toBe(pendingToken);
    expect((await mobile.client.get('/api/session')).status).toBe(401); // the pending token was replaced
    mobile.client.bearer = verify.body.sessionToken;
    const session = await mobile.client.get('/api/session');
    expect(session.status).toBe(200);
    expect(session.body.aal).toBe(2);
  });

  it('(7) an API token performs a sensitive action', async () => {
    const victim = await signupWithTotp(mailed.server.url);
    const owner = await loginFull(mailed.server.url, victim);
    await fresh(owner, victim);
    const created = await owner.post('/api/tokens', { name: 'all', scopes: ['account:read', 'transactions:read', 'transfers:write'] });
    const api = new Client(mailed.server.url);
    api.bearer = created.body.token;

    // Attack: a leaked token tries every sensitive action.
    for (const [method, path, body] of [
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 100000 }],
      ['POST', '/api/transfers', { to: 'mallory', amountCents: 9_000_000 }],
      ['POST', '/api/tokens', { name: 'more', scopes: ['transfers:write'] }],
      ['POST', '/api/account/email', { email: uniqueEmail('mallory') }],
      ['POST', '/api/account/password', { currentPassword: victim.password, newPassword: 'attacker-chosen-phrase-32' }],
      ['POST', '/api/mfa/recovery-codes'],
      ['DELETE', `/api/mfa/totp/${victim.factorId}`],
      ['POST', '/api/mfa/totp/setup'],
      ['POST', '/api/auth/step-up', { method: 'recovery_code', code: victim.recoveryCodes[0] }],
    ] as const) {
      const r = await api.req(method, path, body === undefined ? {} : { json: body });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error, `${method} ${path}`).toBe('interactive_session_required');
    }
    // The token is not a session cookie either.
    const asCookie = new Client(mailed.server.url);
    asCookie.cookies.set('gatehouse_session', created.body.token);
    expect((await asCookie.post('/api/transfers', { to: 'mallory', amountCents: 5 })).status).toBe(401);

    // Legitimate: the token does what its scopes allow; the owner, freshly verified, does the big transfer.
    expect((await api.post('/api/transfers', { to: 'landlord', amountCents: 99_999 })).status).toBe(201);
    expect((await api.get('/api/account/transactions')).status).toBe(200);
    await fresh(owner, victim);
    expect((await owner.post('/api/transfers', { to: 'landlord', amountCents: 100000 })).status).toBe(201);
  });
});
