/**
 * Risk signals over real HTTP and SQLite (docs/policy.md): each signal raises what a
 * sign-in must prove (the second factor even on a trusted device, a shorter step-up
 * window, no device trust) and the reason is in the security log; a quiet sign-in on a
 * trusted device still skips the prompt. The server trusts X-Forwarded-For from
 * 127.0.0.1, so a test picks the client's network per request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MfaAccount, PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client, cookieNamed } from '../helpers/http-client.js';
import { totpCodeAt } from '../../src/services/totp.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';

const DEVICE = 'gatehouse_device';
const HOME = { 'x-forwarded-for': '203.0.113.10' };
const HOME_NEIGHBOUR = { 'x-forwarded-for': '203.0.113.77' };
const ELSEWHERE = { 'x-forwarded-for': '198.51.100.20' };
const STEP_UP_MAX_AGE = 900;
const RISKY_MAX_AGE = 300;

let server: TestServer;
let offsetMs = 0;
beforeAll(async () => {
  server = await startTestServer(
    {
      ...FAST_ENV,
      GATEHOUSE_TRUSTED_DEVICE_DAYS: '30',
      GATEHOUSE_TRUST_PROXY: '127.0.0.1',
      GATEHOUSE_STEP_UP_MAX_AGE: String(STEP_UP_MAX_AGE),
      GATEHOUSE_RISK_STEP_UP_MAX_AGE: String(RISKY_MAX_AGE),
    },
    { now: () => Date.now() + offsetMs },
  );
});
afterAll(async () => {
  await server?.close();
});

/** An account signed up from HOME, with a browser at HOME that verified with `trustDevice` and holds the device cookie. */
async function trustedAtHome(label: string): Promise<{ account: MfaAccount; browser: Client }> {
  const account = await signupWithTotp(server.url, { email: uniqueEmail(label), headers: HOME });
  const browser = new Client(server.url, HOME);
  expect((await browser.post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
  const v = await browser.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes.pop(), trustDevice: true });
  expect(v.status).toBe(200);
  expect(cookieNamed(v.setCookies, DEVICE)).toBeDefined();
  return { account, browser };
}

/** The same browser (cookies) seen from another network. */
function from(browser: Client, headers: Record<string, string>): Client {
  const moved = new Client(server.url, headers);
  moved.cookies = new Map(browser.cookies);
  moved.cookies.delete('gatehouse_session');
  return moved;
}

async function passwordLogin(b: Client, email: string) {
  b.cookies.delete('gatehouse_session');
  return b.post('/api/auth/login', { email, password: PASSWORD });
}

/** The risk reasons of the account's latest event of `type`, read by a full session of the account. */
async function latestRisk(full: Client, type: string): Promise<string[] | undefined> {
  const events = await full.get('/api/account/events');
  expect(events.status).toBe(200);
  const list = events.body.events as Array<{ type: string; risk?: string[] }>;
  return list.find((e) => e.type === type)?.risk;
}

async function verify(b: Client, account: MfaAccount, extra: Record<string, unknown> = {}) {
  return b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: account.recoveryCodes.pop(), ...extra });
}

describe('risk signals at sign-in', () => {
  it('legitimate: a trusted browser on a known network (same /24) still skips the prompt', async () => {
    const { account, browser } = await trustedAtHome('risk-quiet');
    const login = await passwordLogin(from(browser, HOME_NEIGHBOUR), account.email);
    expect(login.status).toBe(200);
    expect(login.body.amr).toContain('trusted_device');
  });

  it('new network: a trusted browser is asked for the code; the reason is logged and shown; the window is shorter', async () => {
    const { account, browser } = await trustedAtHome('risk-net');
    const away = from(browser, ELSEWHERE);
    const login = await passwordLogin(away, account.email);
    expect(login.status).toBe(202);
    expect(login.body.status).toBe('mfa_required');
    expect((await away.get('/api/session')).body.error).toBe('mfa_required');
    expect((await verify(away, account)).status).toBe(200);
    expect(await latestRisk(away, 'login.challenged')).toEqual(['new_network']);
    // The activity list says why.
    const page = await away.get('/settings');
    expect(page.text).toContain('asked for your code because: new network');

    // Fresh within the shortened window, stale after it (still inside the deployment's).
    expect((await away.post('/api/mfa/recovery-codes')).status).toBe(200);
    offsetMs += (RISKY_MAX_AGE + 5) * 1000;
    try {
      const stale = await away.post('/api/mfa/recovery-codes');
      expect(stale.status).toBe(403);
      expect(stale.body).toMatchObject({ error: 'step_up_required', maxAge: RISKY_MAX_AGE });
      // A quiet session of the same account at the same moment is still fresh (deployment window).
      const home = from(browser, HOME);
      const quiet = await passwordLogin(home, account.email);
      expect(quiet.status).toBe(200); // trusted device at home: no prompt, but never fresh
      expect(
        (await home.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(account.secret, Date.now() + offsetMs) })).status,
      ).toBe(200);
      offsetMs += (RISKY_MAX_AGE + 5) * 1000;
      expect((await home.post('/api/mfa/recovery-codes')).status).toBe(200);
    } finally {
      offsetMs = 0;
    }
  });

  it('many recent failures: a trusted browser is asked for the code, and that sign-in may not trust the device', async () => {
    const { account, browser } = await trustedAtHome('risk-fail');
    const attacker = new Client(server.url, ELSEWHERE);
    for (let i = 0; i < 3; i++) {
      expect((await attacker.post('/api/auth/login', { email: account.email, password: 'not-the-password-at-all' })).status).toBe(401);
    }
    const home = from(browser, HOME);
    const login = await passwordLogin(home, account.email);
    expect(login.status).toBe(202);
    const v = await verify(home, account, { trustDevice: true });
    expect(v.status).toBe(200);
    expect(cookieNamed(v.setCookies, DEVICE)).toBeUndefined();
    expect(await latestRisk(home, 'login.challenged')).toEqual(['recent_failures']);
  });

  it('password changed recently: the session’s step-up window is the short one', async () => {
    const account = await signupWithTotp(server.url, { email: uniqueEmail('risk-pw'), headers: HOME });
    // Before any change: a sign-in at home keeps the deployment's window.
    const before = new Client(server.url, HOME);
    expect((await before.post('/api/auth/login', { email: account.email, password: PASSWORD })).status).toBe(202);
    expect((await verify(before, account)).status).toBe(200);
    const changed = await before.post('/api/account/password', { currentPassword: PASSWORD, newPassword: `${PASSWORD}-2` });
    expect(changed.status).toBe(200);
    const after = new Client(server.url, HOME);
    expect((await after.post('/api/auth/login', { email: account.email, password: `${PASSWORD}-2` })).status).toBe(202);
    expect((await verify(after, account)).status).toBe(200);
    expect(await latestRisk(after, 'login.challenged')).toEqual(expect.arrayContaining(['recent_password_change']));
    offsetMs += (RISKY_MAX_AGE + 5) * 1000;
    try {
      expect((await after.post('/api/mfa/recovery-codes')).body.error).toBe('step_up_required');
    } finally {
      offsetMs = 0;
    }
  });

  it('a session restored from remember-me may not trust its device', async () => {
    const account = await signupWithTotp(server.url, { email: uniqueEmail('risk-rm'), headers: HOME });
    const b = new Client(server.url, HOME);
    expect((await b.post('/api/auth/login', { email: account.email, password: PASSWORD, remember: true })).status).toBe(202);
    expect((await verify(b, account)).status).toBe(200);
    b.cookies.delete('gatehouse_session');
    const restored = await b.get('/api/session');
    expect(restored.status).toBe(401);
    expect(restored.body.error).toBe('mfa_required');
    const v = await verify(b, account, { trustDevice: true });
    expect(v.status).toBe(200);
    expect(cookieNamed(v.setCookies, DEVICE)).toBeUndefined();
    expect(await latestRisk(b, 'login.challenged')).toEqual(['remember_me_restore']);
  });

  it('no signal lowers a requirement: with every signal at once, an account with a factor is still asked for it and a wrong code still fails', async () => {
    const { account, browser } = await trustedAtHome('risk-all');
    const attacker = new Client(server.url, ELSEWHERE);
    for (let i = 0; i < 3; i++) await attacker.post('/api/auth/login', { email: account.email, password: 'wrong-wrong-wrong-1' });
    const b = new Client(server.url, { 'x-forwarded-for': '192.0.2.1' });
    const login = await b.post('/api/auth/login', { email: account.email, password: PASSWORD });
    expect(login.status).toBe(202);
    expect((await b.get('/api/session')).status).toBe(401);
    const wrong = await b.post('/api/auth/mfa/verify', { method: 'totp', code: '000000' });
    expect(wrong.status).toBe(401);
    // The trusted browser elsewhere too.
    expect((await passwordLogin(from(browser, ELSEWHERE), account.email)).status).toBe(202);
  });
});
