/**
 * Trusted devices over real HTTP and SQLite: `trustDevice` at verification lets a later
 * password login from that browser skip the prompt, such sessions are never fresh, users
 * list and revoke devices, and password change / factor removal revoke them all. With
 * GATEHOUSE_TRUSTED_DEVICE_DAYS=0 the flag is ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { type MfaAccount, PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client, cookieNamed } from '../helpers/http-client.js';

const DEVICE = 'gatehouse_device';

let on: TestServer;
let off: TestServer;
beforeAll(async () => {
  [on, off] = await Promise.all([
    startTestServer({ ...FAST_ENV, GATEHOUSE_TRUSTED_DEVICE_DAYS: '30' }),
    startTestServer({ ...FAST_ENV, GATEHOUSE_TRUSTED_DEVICE_DAYS: '0' }),
  ]);
});
afterAll(async () => {
  await on?.close();
  await off?.close();
});

/** Password + recovery code with trustDevice:true in a new browser; returns that browser. */
async function trustedBrowser(base: string, account: MfaAccount): Promise<Client> {
  const b = new Client(base);
  expect((await b.post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
  const v = await b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes.shift(), trustDevice: true });
  expect(v.status).toBe(200);
  return b;
}

/** Logs in with the password only, keeping whatever device cookie the browser holds. */
async function passwordLogin(b: Client, address: string, password = PASSWORD) {
  b.cookies.delete('gatehouse_session');
  return b.post('/api/auth/login', { email: address, password });
}

describe('trusted devices', () => {
  it('a trusted browser skips the prompt; amr shows it; the session is never fresh', async () => {
    const account = await signupWithTotp(on.url, { email: uniqueEmail('td-skip') });
    const b = new Client(on.url);
    expect((await b.post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
    const v = await b.post('/api/auth/mfa/verify', { method: 'totp', code: account.totp.next(), trustDevice: true });
    expect(v.status).toBe(200);
    const cookie = cookieNamed(v.setCookies, DEVICE)!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Max-Age=2592000/);

    const login = await passwordLogin(b, account.email);
    expect(login.status).toBe(200);
    expect(login.body.status).toBe('authenticated');
    expect(login.body.amr).toContain('trusted_device');
    const s = await b.get('/api/session');
    expect(s.status).toBe(200);
    expect(s.body.amr).toEqual(expect.arrayContaining(['pwd', 'trusted_device']));
    expect(s.body.mfaAt).toBeNull();
    // ★ actions still need a real second factor, within this very login.
    const star = await b.post('/api/mfa/recovery-codes');
    expect(star.status).toBe(403);
    expect(star.body.error).toBe('step_up_required');
    const step = await b.post('/api/auth/step-up', { method: 'totp', code: account.totp.next() });
    expect(step.status).toBe(200);
    expect((await b.post('/api/mfa/recovery-codes')).status).toBe(200);

    // The device cookie needs the password: alone, or with a wrong password, it is nothing.
    expect((await b.only(DEVICE).get('/api/session')).status).toBe(401);
    expect((await passwordLogin(b.only(DEVICE), account.email, 'wrong password entirely')).status).toBe(401);
    // Another browser is still asked for the factor.
    expect((await new Client(on.url).post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
  });

  it('a device is bound to its account', async () => {
    const alice = await signupWithTotp(on.url, { email: uniqueEmail('td-alice') });
    const bob = await signupWithTotp(on.url, { email: uniqueEmail('td-bob') });
    const b = await trustedBrowser(on.url, alice);
    // Same browser, other account: the device cookie does not stand in for Bob's factor.
    expect((await passwordLogin(b, bob.email)).status).toBe(202);
  });

  it('lists and revokes devices; another account’s device id is 404', async () => {
    const alice = await signupWithTotp(on.url, { email: uniqueEmail('td-list') });
    const mallory = await signupWithTotp(on.url, { email: uniqueEmail('td-mallory') });
    const b = await trustedBrowser(on.url, alice);
    const list = await b.get('/api/devices');
    expect(list.status).toBe(200);
    expect(list.body.devices).toHaveLength(1);
    const device = list.body.devices[0];
    expect(Object.keys(device).sort()).toEqual(['createdAt', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent']);
    expect(device.lastUsedAt).toBeNull();
    expect((await passwordLogin(b, alice.email)).status).toBe(200);
    expect((await b.get('/api/devices')).body.devices[0].lastUsedAt).not.toBeNull();

    const m = await trustedBrowser(on.url, mallory);
    const other = await m.delete(`/api/devices/${device.id}`);
    expect(other.status).toBe(404);
    expect(other.body.error).toBe('not_found');
    expect((await b.delete(`/api/devices/${device.id}`)).status).toBe(204);
    expect((await b.get('/api/devices')).body.devices).toHaveLength(0);
    expect((await passwordLogin(b, alice.email)).status).toBe(202);
  });

  it('a password change revokes every trusted device', async () => {
    const account = await signupWithTotp(on.url, { email: uniqueEmail('td-pw') });
    const b = await trustedBrowser(on.url, account);
    // A fresh factor check, then the change.
    const step = await b.post('/api/auth/step-up', { method: 'totp', code: account.totp.next() });
    expect(step.status).toBe(200);
    const newPassword = 'a completely new passphrase 55';
    expect((await b.post('/api/account/password', { currentPassword: PASSWORD, newPassword })).status).toBe(200);
    expect((await b.get('/api/devices')).body.devices).toHaveLength(0);
    expect((await passwordLogin(b, account.email, newPassword)).status).toBe(202);
  });

  it('removing a factor revokes every trusted device', async () => {
    const account = await signupWithTotp(on.url, { email: uniqueEmail('td-factor') });
    const b = await trustedBrowser(on.url, account);
    expect((await b.get('/api/devices')).body.devices).toHaveLength(1);
    expect((await b.post('/api/auth/step-up', { method: 'totp', code: account.totp.next() })).status).toBe(200);
    const factors = await b.get('/api/mfa');
    const id = factors.body.factors.find((f: { type: string }) => f.type === 'totp').id;
    expect((await b.delete(`/api/mfa/totp/${id}`)).status).toBe(204);
    expect((await b.get('/api/devices')).body.devices).toHaveLength(0);
    const user = await on.server.gatehouse.database.db
      .selectFrom('users')
      .select('id')
      .where('email', '=', account.email)
      .executeTakeFirstOrThrow();
    const rows = await on.server.gatehouse.database.db.selectFrom('trusted_devices').select('id').where('user_id', '=', user.id).execute();
    expect(rows).toHaveLength(0);
  });

  it('with GATEHOUSE_TRUSTED_DEVICE_DAYS=0, trustDevice is ignored', async () => {
    const account = await signupWithTotp(off.url, { email: uniqueEmail('td-off') });
    const b = new Client(off.url);
    expect((await b.post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
    const v = await b.post('/api/auth/mfa/verify', { method: 'totp', code: account.totp.next(), trustDevice: true });
    expect(v.status).toBe(200);
    expect(cookieNamed(v.setCookies, DEVICE)).toBeUndefined();
    expect((await b.get('/api/devices')).body.devices).toHaveLength(0);
    const again = await passwordLogin(b, account.email);
    expect(again.status).toBe(202);
    expect(again.body.status).toBe('mfa_required');
  });
});
