/**
 * MFA by role over real HTTP and SQLite (docs/policy.md): a role's `required` with a
 * grace period (sign-in works with a reminder; after it every page and API answers
 * enrollment_required until a factor is set up), allowed factor kinds enforced at
 * sign-in and step-up, the strictest role winning, and the settings page saying why.
 */
import { describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { mailOf } from '../helpers/mail-files.js';
import { serverWithRoles } from '../helpers/server.js';

const DAY = 86_400_000;
const ROLES = {
  staff: { mfa: 'required' },
  keys: { mfa: 'optional', factors: ['webauthn'] },
  apps: { mfa: 'optional', factors: ['totp'] },
  quick: { mfa: 'optional', stepUpMaxAgeSeconds: 120 },
};

const deployment = serverWithRoles(ROLES);
const clock = deployment.clock;

const facade = () => deployment.server.server.facade;

describe('MFA required by role, with a grace period', () => {
  it('during grace sign-in works and the user is reminded; after it every API and page answers enrollment_required until a factor is set up', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('staff') });
    const set = await facade().admin.setRoles(user.userId, ['staff']);
    expect(set.roles).toEqual(['staff']);
    expect(set.enrolmentDueAt!.getTime()).toBeGreaterThan(Date.now() + 6 * DAY);
    expect(await facade().admin.rolesOf(user.userId)).toEqual(['staff']);
    expect(await mailOf(deployment.server.dataDir, { to: user.email, event: 'account.enrolment_reminder' })).toContain('Set one up before');

    const b = new Client(deployment.server.url);
    const during = await b.post('/api/auth/login', { email: user.email, password: PASSWORD });
    expect(during.status).toBe(200);
    expect((await b.get('/api/session')).status).toBe(200);
    const page = await b.get('/settings');
    expect(page.text).toContain('role staff: a second factor is required');
    expect(page.text).toContain('id="enrolment-due"');

    clock.offsetMs = 8 * DAY;
    try {
      // The session from before the deadline: refused everywhere but enrolment.
      const api = await b.get('/api/session');
      expect(api.status).toBe(403);
      expect(api.body.error).toBe('enrollment_required');
      expect((await b.get('/api/account')).body.error).toBe('enrollment_required');
      expect((await b.get('/settings')).status).not.toBe(200);
      // A new sign-in after the deadline is an enrolling one.
      const c = new Client(deployment.server.url);
      const after = await c.post('/api/auth/login', { email: user.email, password: PASSWORD });
      expect(after.status).toBe(202);
      expect(after.body.status).toBe('enrollment_required');
      // Setting up a factor is what the account may do, and then it works again.
      const setup = await c.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const confirm = await c.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now() + clock.offsetMs) });
      expect(confirm.status).toBe(200);
      expect((await c.get('/api/session')).status).toBe(200);
      // Enrolled: no more reminders at sign-in.
      const reminders = async () =>
        (await c.get('/api/account/events')).body.events.filter((e: { type: string }) => e.type === 'account.enrolment_reminder').length;
      const before = await reminders();
      const d = new Client(deployment.server.url);
      expect((await d.post('/api/auth/login', { email: user.email, password: PASSWORD })).status).toBe(202);
      expect(await reminders()).toBe(before);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('an account with no role is not subject: no due time, no reminder, sign-in works whenever', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('norole') });
    clock.offsetMs = 30 * DAY;
    try {
      expect((await new Client(deployment.server.url).post('/api/auth/login', { email: user.email, password: PASSWORD })).status).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describe('allowed factor kinds and strictest wins', () => {
  it('a role that counts only TOTP refuses a recovery code at sign-in; TOTP works', async () => {
    const user = await signupWithTotp(deployment.server.url, { email: uniqueEmail('apps') });
    await facade().admin.setRoles(user.userId, ['apps']);
    const b = new Client(deployment.server.url);
    const login = await b.post('/api/auth/login', { email: user.email, password: PASSWORD });
    expect(login.status).toBe(202);
    expect(login.body.methods).toEqual(['totp']);
    const code = await b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: user.recoveryCodes[0] });
    expect(code.status).toBe(400);
    expect((await b.get('/api/session')).body.error).toBe('mfa_required');
    expect((await b.post('/api/auth/mfa/verify', { method: 'totp', code: user.totp.next() })).status).toBe(200);
    // Step-up too: a recovery code does not make the session fresh.
    const step = await b.post('/api/auth/step-up', { method: 'recovery_code', code: user.recoveryCodes[1] });
    expect(step.status).toBe(400);
  });

  it('a passkeys-only role: a TOTP does not satisfy; the account may only use it to enrol a passkey once the policy is required', async () => {
    const user = await signupWithTotp(deployment.server.url, { email: uniqueEmail('keys') });
    // keys + staff: required (staff) and passkeys only (keys): the strictest of both.
    await facade().admin.setRoles(user.userId, ['keys', 'staff']);
    clock.offsetMs = 8 * DAY;
    try {
      const b = new Client(deployment.server.url);
      expect((await b.post('/api/auth/login', { email: user.email, password: PASSWORD })).status).toBe(202);
      expect((await b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: user.recoveryCodes[0] })).status).toBe(200);
      const api = await b.get('/api/session');
      expect(api.status).toBe(403);
      expect(api.body.error).toBe('enrollment_required');
      // Passkey registration (what the account may still do) is reachable.
      const options = await b.post('/api/mfa/webauthn/register/options', {});
      expect(options.status).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('a role’s shorter step-up window applies to its accounts only', async () => {
    const quick = await signupWithTotp(deployment.server.url, { email: uniqueEmail('quick') });
    const plain = await signupWithTotp(deployment.server.url, { email: uniqueEmail('plain') });
    await facade().admin.setRoles(quick.userId, ['quick']);
    const sign = async (u: typeof quick) => {
      const b = new Client(deployment.server.url);
      expect((await b.post('/api/auth/login', { email: u.email, password: PASSWORD })).status).toBe(202);
      expect((await b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: u.recoveryCodes.pop() })).status).toBe(200);
      return b;
    };
    const q = await sign(quick);
    const p = await sign(plain);
    clock.offsetMs = 200_000;
    try {
      const stale = await q.post('/api/mfa/recovery-codes');
      expect(stale.status).toBe(403);
      expect(stale.body).toMatchObject({ error: 'step_up_required', maxAge: 120 });
      expect((await p.post('/api/mfa/recovery-codes')).status).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('roles are validated', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('badrole') });
    await expect(facade().admin.setRoles(user.userId, ['Admin Role!'])).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
