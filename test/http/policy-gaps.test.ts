/**
 * Two gaps of the role policy closed (docs/policy.md), over real HTTP and SQLite:
 * - API tokens of an account whose enrolment is due (a role requires a factor, the grace
 *   ended, none set up) answer `403 enrollment_required` like its sessions, and work
 *   again once a factor is set up;
 * - freshness judged again under the account lock (AccountChanges) uses the gate's window
 *   (the roles as they are under the lock, the session's risk), never the deployment's
 *   longer one.
 */
import { describe, expect, it } from 'vitest';
import type { SessionRisk } from '../../src/core/risk.js';
import { totpCodeAt } from '../../src/services/totp.js';
import { PASSWORD, signup, signupWithTotp, uniqueEmail, type MfaAccount } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { serverWithRoles } from '../helpers/server.js';

const DAY = 86_400_000;
const ROLES = {
  staff: { mfa: 'required' },
  brisk: { mfa: 'optional', stepUpMaxAgeSeconds: 60 },
};

const deployment = serverWithRoles(ROLES, { GATEHOUSE_STEP_UP_MAX_AGE: '900' });
const clock = deployment.clock;

const facade = () => deployment.server.server.facade;
const gatehouse = () => deployment.server.server.gatehouse;

async function tokenOf(client: Client, scopes = ['account:read']): Promise<Client> {
  const made = await client.post('/api/tokens', { name: 'ci', scopes });
  expect(made.status, made.text).toBe(201);
  const holder = new Client(deployment.server.url);
  holder.bearer = made.body.token;
  return holder;
}

describe('API tokens of an account whose enrolment is due', () => {
  it('work during the grace period, answer enrollment_required after it, and work again once a factor is set up', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('tokstaff') });
    await facade().admin.setRoles(user.userId, ['staff']);
    const token = await tokenOf(user.client);
    expect((await token.get('/api/account')).status).toBe(200);

    // Legitimate accounts whose tokens must keep working after the deadline.
    const plain = await signup(deployment.server.url, { email: uniqueEmail('tokplain') });
    const plainToken = await tokenOf(plain.client);
    const enrolled = await signupWithTotp(deployment.server.url, { email: uniqueEmail('tokenrolled') });
    await facade().admin.setRoles(enrolled.userId, ['staff']);
    const enrolledToken = await tokenOf(enrolled.client);

    clock.offsetMs = 8 * DAY;
    try {
      const refused = await token.get('/api/account');
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ error: 'enrollment_required' });
      // Its sessions are refused the same way (the shape the contract gives).
      expect((await user.client.get('/api/account')).body.error).toBe('enrollment_required');
      expect((await plainToken.get('/api/account')).status).toBe(200);
      expect((await enrolledToken.get('/api/account')).status).toBe(200);

      // The owner enrols (a new sign-in is an enrolling one); the token works again.
      const c = new Client(deployment.server.url);
      const login = await c.post('/api/auth/login', { email: user.email, password: PASSWORD });
      expect(login.status).toBe(202);
      expect(login.body.status).toBe('enrollment_required');
      const setup = await c.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const confirm = await c.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now() + clock.offsetMs) });
      expect(confirm.status, confirm.text).toBe(200);
      expect((await token.get('/api/account')).status).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describe('a role’s short step-up window', () => {
  async function signedIn(u: MfaAccount): Promise<Client> {
    const b = new Client(deployment.server.url);
    expect((await b.post('/api/auth/login', { email: u.email, password: PASSWORD })).status).toBe(202);
    expect((await b.post('/api/auth/mfa/verify', { method: 'recovery_code', code: u.recoveryCodes.pop() })).status).toBe(200);
    return b;
  }

  it('the gate refuses a ★ action 120 s after the factor check under a 60 s role window; a step-up makes it work', async () => {
    const brisk = await signupWithTotp(deployment.server.url, { email: uniqueEmail('brisk') });
    const plain = await signupWithTotp(deployment.server.url, { email: uniqueEmail('unhurried') });
    await facade().admin.setRoles(brisk.userId, ['brisk']);
    const b = await signedIn(brisk);
    const p = await signedIn(plain);
    clock.offsetMs = 120_000;
    try {
      const stale = await b.post('/api/mfa/recovery-codes');
      expect(stale.status).toBe(403);
      expect(stale.body).toMatchObject({ error: 'step_up_required', maxAge: 60 });
      // The deployment's 900 s still applies to an account without the role.
      expect((await p.post('/api/mfa/recovery-codes')).status).toBe(200);
      const step = await b.post('/api/auth/step-up', { method: 'totp', code: totpCodeAt(brisk.secret, Date.now() + clock.offsetMs) });
      expect(step.status, step.text).toBe(200);
      expect((await b.post('/api/mfa/recovery-codes')).status).toBe(200);
    } finally {
      clock.offsetMs = 0;
    }
  });

  it('under the account lock, freshness is judged with the role window as the roles are then (a role given after the gate admitted)', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('lockwin'), transport: 'token' });
    const admittedAt = Date.now();
    // The session as the gate resolved it, before the role was given.
    const session = await gatehouse().sessions.resolve(user.client.bearer!, 'token', admittedAt);
    expect(session).not.toBeNull();
    expect(session!.roles).toEqual([]);
    const at = admittedAt + 120_000;
    const change = () =>
      gatehouse().accountChanges.apply(user.userId, at, {
        voidsSetups: false,
        fresh: { session: session!.facts, risk: session!.risk },
        run: async () => 'ran',
      });
    // The password was entered 120 s ago: fresh for the deployment's 900 s.
    expect(await change()).toBe('ran');
    await facade().admin.setRoles(user.userId, ['brisk']);
    await expect(change()).rejects.toMatchObject({ code: 'step_up_required', maxAge: 60 });
    // Within the role's window the same change runs.
    const soon = await gatehouse().accountChanges.apply(user.userId, admittedAt + 30_000, {
      voidsSetups: false,
      fresh: { session: session!.facts, risk: session!.risk },
      run: async () => 'ran',
    });
    expect(soon).toBe('ran');
  });

  it('under the account lock, the session’s risk window applies too', async () => {
    const user = await signup(deployment.server.url, { email: uniqueEmail('lockrisk'), transport: 'token' });
    const admittedAt = Date.now();
    const session = await gatehouse().sessions.resolve(user.client.bearer!, 'token', admittedAt);
    const change = (risk: SessionRisk | null) =>
      gatehouse().accountChanges.apply(user.userId, admittedAt + 400_000, {
        voidsSetups: false,
        fresh: { session: session!.facts, risk },
        run: async () => 'ran',
      });
    expect(await change(null)).toBe('ran');
    await expect(change({ signals: ['new_network'], refuseDeviceTrust: false, stepUpMaxAgeSeconds: 300 })).rejects.toMatchObject({
      code: 'step_up_required',
      maxAge: 300,
    });
  });
});
