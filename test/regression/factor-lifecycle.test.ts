/**
 * Regression tests for the factor-lifecycle defects found from outside (issues 9 and 17),
 * by name, on SQLite and on PostgreSQL with two instances (each session of a pair on its
 * own instance, concurrent requests on different instances). Each asserts that the attack
 * fails and that the legitimate flow still works. Invariants: docs/security.md, I1–I5.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/http-client.js';
import { login, PASSWORD, signup, signupWithTotp, uniqueEmail, type Account } from '../helpers/accounts.js';
import { mailedToken } from '../helpers/mail-files.js';
import { FAST_ENV, startFastServer, startPostgresPair } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';
import { SoftAuthenticator } from '../http/webauthn-soft-authenticator.js';

interface Deployment {
  /** Two instances' URLs (SQLite: the same server twice). */
  urls: [string, string];
  /** Where each instance writes its mail. */
  dataDirs: string[];
  close(): Promise<void>;
}

const BACKENDS: Array<[string, (env: Record<string, string>) => Promise<Deployment>]> = [
  [
    'SQLite',
    async (env) => {
      const s = await startFastServer(env);
      return { urls: [s.url, s.url], dataDirs: [s.dataDir], close: () => s.close() };
    },
  ],
  [
    'PostgreSQL, two instances',
    async (env) => {
      const pair = await startPostgresPair('lifecycle', {
        ...FAST_ENV,
        GATEHOUSE_SECRET_KEY: 'factor-lifecycle-regression-key-0123456789-',
        ...env,
      });
      return { urls: [pair.servers[0].url, pair.servers[1].url], dataDirs: pair.servers.map((s) => s.dataDir), close: pair.cleanup };
    },
  ],
];

/** Registers a passkey in the client's session: options, then the response, on the client's server. */
async function registerPasskey(client: Client, options?: { challenge: string; rp: { id?: string } }) {
  const opts = options ?? (await client.post('/api/mfa/webauthn/register/options')).body;
  return client.post('/api/mfa/webauthn/register', { response: new SoftAuthenticator({ origin: client.base }).register(opts) });
}

/** A second full session of a password-only account, on another instance. */
async function secondSession(base: string, account: Account): Promise<Client> {
  const { client, res } = await login(base, account);
  if (res.status !== 200 && res.status !== 202) throw new Error(`login ${res.status}`);
  return client;
}

describe.each(BACKENDS)('factor lifecycle regressions (%s)', (_name, deploy) => {
  let plain: Deployment;
  let required: Deployment;
  beforeAll(async () => {
    plain = await deploy({});
    required = await deploy({ GATEHOUSE_MFA_REQUIRED: 'all' });
  });
  afterAll(async () => {
    await plain?.close();
    await required?.close();
  });

  it('issue 9 (1): a session cannot confirm a TOTP set-up left over from before the owner added a passkey', async () => {
    const owner = await signup(plain.urls[0]);
    const attacker = await secondSession(plain.urls[1], owner);
    const setup = await attacker.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);

    // The owner adds a passkey: the account's first factor, so the owner gets recovery codes.
    const passkey = await registerPasskey(owner.client);
    expect(passkey.status).toBe(201);
    expect(passkey.body.recoveryCodes).toHaveLength(10);

    // Attack: adding a factor to an account that has one needs a fresh existing factor
    // (I2; were it fresh, the set-up would still be void, I3); the session stays stale.
    const confirm = await attacker.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) });
    expect(confirm.status).toBe(403);
    expect(confirm.body.error).toBe('step_up_required');
    expect(confirm.body.methods).not.toContain('totp');
    expect((await attacker.post('/api/tokens', { name: 'x', scopes: ['account:read'] })).body.error).toBe('step_up_required');
    expect((await attacker.delete(`/api/mfa/webauthn/${passkey.body.factorId}`)).body.error).toBe('step_up_required');
    expect((await owner.client.get('/api/mfa')).body.factors.map((f: { type: string }) => f.type)).toEqual(['webauthn']);

    // Legitimate: the owner, fresh from the passkey, adds TOTP as an additional factor; the
    // confirmation neither issues codes nor renews the session's freshness (I2).
    const before = (await owner.client.get('/api/session')).body.mfaAt;
    const own = await owner.client.post('/api/mfa/totp/setup');
    const added = await owner.client.post('/api/mfa/totp/confirm', { code: totpAt(own.body.secret) });
    expect(added.status).toBe(200);
    expect(added.body.recoveryCodes).toBeUndefined();
    expect((await owner.client.get('/api/session')).body.mfaAt).toBe(before);
    expect((await login(plain.urls[1], owner)).res.status).toBe(202);
  });

  it('issue 9 (1), passkey variant: registration options fetched before the owner enrolled TOTP are void', async () => {
    const owner = await signup(plain.urls[0]);
    const attacker = await secondSession(plain.urls[1], owner);
    const options = await attacker.post('/api/mfa/webauthn/register/options');
    expect(options.status).toBe(200);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    expect((await owner.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) })).status).toBe(200);

    const reg = await registerPasskey(attacker, options.body);
    expect(reg.status).toBe(403);
    expect(reg.body.error).toBe('step_up_required');
    expect((await attacker.get('/api/session')).body).toMatchObject({ aal: 1, mfaAt: null });
    expect((await owner.client.get('/api/mfa')).body.factors.map((f: { type: string }) => f.type)).toEqual(['totp']);
  });

  it('a set-up is void after its own session changes the password (any security change moves the epoch)', async () => {
    const owner = await signup(plain.urls[0]);
    const setup = await owner.client.post('/api/mfa/totp/setup');
    const changed = await owner.client.post('/api/account/password', {
      currentPassword: PASSWORD,
      newPassword: 'a brand new passphrase 77',
    });
    expect(changed.status).toBe(200);
    const confirm = await owner.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) });
    expect(confirm.body.error).toBe('no_pending_setup');
    // Legitimate: a new set-up after the change confirms.
    const again = await owner.client.post('/api/mfa/totp/setup');
    expect((await owner.client.post('/api/mfa/totp/confirm', { code: totpAt(again.body.secret) })).status).toBe(200);
  });

  it('issue 17 (1): an enrolling session cannot confirm a TOTP set-up begun before the owner enrolled a passkey', async () => {
    const owner = await signup(required.urls[0]);
    expect(owner.status).toBe('enrollment_required');
    const { client: enrolling, res } = await login(required.urls[1], owner);
    expect(res.body.status).toBe('enrollment_required');
    const setup = await enrolling.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);

    const passkey = await registerPasskey(owner.client);
    expect(passkey.status).toBe(201);
    expect(passkey.body.recoveryCodes).toHaveLength(10);

    const confirm = await enrolling.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) });
    expect(confirm.status).toBe(403);
    expect(confirm.body.error).toBe('step_up_required');
    expect((await enrolling.get('/api/session')).status).toBe(403);
    expect((await enrolling.post('/api/tokens', { name: 'x', scopes: ['account:read'] })).status).toBe(403);
    expect((await enrolling.get('/api/account')).body.error).toBe('enrollment_required');
    // Legitimate: the owner's session is full.
    expect((await owner.client.get('/api/account')).status).toBe(200);
  });

  it('issue 17 (2): of two concurrent password changes from two sessions, at most one answers 200, and its password is in force', async () => {
    for (let round = 0; round < 6; round++) {
      const owner = await signup(plain.urls[0]);
      const other = await secondSession(plain.urls[1], owner);
      const [a, b] = await Promise.all([
        owner.client.post('/api/account/password', { currentPassword: PASSWORD, newPassword: `first new passphrase ${round}` }),
        other.post('/api/account/password', { currentPassword: PASSWORD, newPassword: `second new passphrase ${round}` }),
      ]);
      expect([a.status, b.status].sort()).toEqual([200, 401]);
      const winner = a.status === 200 ? `first new passphrase ${round}` : `second new passphrase ${round}`;
      const loser = a.status === 200 ? `second new passphrase ${round}` : `first new passphrase ${round}`;
      expect((await login(plain.urls[0], { email: owner.email, password: winner })).res.status).toBe(200);
      expect((await login(plain.urls[1], { email: owner.email, password: loser })).res.status).toBe(401);
      // The winning session lives on; the losing one was revoked first.
      const [winnerClient, loserClient] = a.status === 200 ? [owner.client, other] : [other, owner.client];
      expect((await winnerClient.get('/api/account')).status).toBe(200);
      expect((await loserClient.get('/api/account')).status).toBe(401);
    }
  });

  it('issue 17 (3): of two concurrent first-factor enrolments exactly one gets recovery codes, and they work', async () => {
    for (let round = 0; round < 5; round++) {
      const owner = await signup(required.urls[0]);
      const { client: second } = await login(required.urls[1], owner);
      const [optsA, optsB] = await Promise.all([
        owner.client.post('/api/mfa/webauthn/register/options'),
        second.post('/api/mfa/webauthn/register/options'),
      ]);
      const [a, b] = await Promise.all([registerPasskey(owner.client, optsA.body), registerPasskey(second, optsB.body)]);
      const withCodes = [a, b].filter((r) => r.status === 201 && Array.isArray(r.body.recoveryCodes));
      expect(withCodes).toHaveLength(1);
      const other = withCodes[0] === a ? b : a;
      // The other is refused, never a second set of codes: its set-up was voided by the first
      // factor (400), or the gate already saw the factor and asked for a step-up (403).
      expect([400, 403]).toContain(other.status);
      expect(other.body.recoveryCodes).toBeUndefined();
      const { client: pending, res } = await login(required.urls[round % 2]!, owner);
      expect(res.status).toBe(202);
      const verify = await pending.post('/api/auth/mfa/verify', { method: 'recovery_code', code: withCodes[0]!.body.recoveryCodes[0] });
      expect(verify.status).toBe(200);
      expect((await owner.client.get('/api/mfa')).status).toBe(withCodes[0] === a ? 200 : 403);
    }
  });

  it('issue 9 (2): concurrent TOTP removal and passkey registration keep the login factor list equal to the confirmed factors', async () => {
    for (let round = 0; round < 8; round++) {
      const owner = await signupWithTotp(plain.urls[0]);
      // A second fresh session on the other instance, ready to register a passkey.
      const { client: second } = await login(plain.urls[1], owner);
      expect((await second.post('/api/auth/mfa/verify', { method: 'recovery_code', code: owner.recoveryCodes[0] })).status).toBe(200);
      const options = await second.post('/api/mfa/webauthn/register/options');
      expect(options.status).toBe(200);
      const [removed, registered] = await Promise.all([
        owner.client.delete(`/api/mfa/totp/${owner.factorId}`),
        registerPasskey(second, options.body),
      ]);
      expect(removed.status).toBe(204);
      expect([201, 400]).toContain(registered.status);
      const mfa = (await second.get('/api/mfa')).body;
      const types = mfa.factors.map((f: { type: string }) => f.type);
      expect(types).toEqual(registered.status === 201 ? ['webauthn'] : []);
      // The login factor list follows the confirmed factors, on both instances.
      for (const url of plain.urls) expect((await login(url, owner)).res.status).toBe(types.length ? 202 : 200);
      // Codes exist exactly while a factor does.
      expect(mfa.recoveryCodesRemaining > 0).toBe(types.length > 0);
    }
  });
  // Found by the model-based search (test/model/): PostgreSQL, two instances.
  it('model search: a factor set-up sent at the same moment as a logout of its session answers 401, never 500', async () => {
    for (let round = 0; round < 8; round++) {
      const owner = await signup(plain.urls[0]);
      const path = round % 2 ? '/api/mfa/webauthn/register/options' : '/api/mfa/totp/setup';
      const [setup, logout] = await Promise.all([owner.client.post(path), owner.client.withBase(plain.urls[1]).post('/api/auth/logout')]);
      expect(logout.status).toBe(204);
      expect([200, 401]).toContain(setup.status);
      expect((await owner.client.get('/api/session')).status).toBe(401);
      // Legitimate: the account signs in again (no factor: full) and sets up a factor.
      const { client, res } = await login(plain.urls[1], owner);
      expect(res.status).toBe(200);
      expect((await client.post(path)).status).toBe(200);
    }
  });

  // Found by the model-based search: a confirmation that lost the race with its session's
  // logout answered 401 but left the factor confirmed (login then asked for it).
  it('model search: a TOTP confirmation racing the logout of its session either succeeds or leaves no factor', async () => {
    for (let round = 0; round < 8; round++) {
      const owner = await signup(plain.urls[0]);
      const setup = await owner.client.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const [confirm, logout] = await Promise.all([
        owner.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) }),
        owner.client.withBase(plain.urls[1]).post('/api/auth/logout'),
      ]);
      expect(logout.status).toBe(204);
      // 400 no_pending_setup: the logout voided the set-up first (I3).
      expect([200, 400, 401]).toContain(confirm.status);
      // The factor exists exactly when the confirmation said so, on both instances.
      for (const url of plain.urls) {
        const { res } = await login(url, owner);
        expect(res.status).toBe(confirm.status === 200 ? 202 : 200);
      }
    }
  });

  // Found by the long model search (PostgreSQL, GATEHOUSE_MFA_REQUIRED=all, seed 30025, on
  // the branch before main's 7c969de): the enrolling session's first-factor confirmation
  // (which replaces its token) and its logout on the other instance at once: the logout
  // answered 500. 7c969de (the acting-session check locks the session row, no deadlock) is
  // the fix this holds; the race is narrow (10 rounds here did not hit it before the fix).
  it('model search: an enrolling session confirming its first factor while it logs out on the other instance: no 5xx, and the answers agree', async () => {
    for (let round = 0; round < 10; round++) {
      const owner = await signup(required.urls[0]);
      expect(owner.status).toBe('enrollment_required');
      const setup = await owner.client.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const [confirm, logout] = await Promise.all([
        owner.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) }),
        owner.client.withBase(required.urls[1]).post('/api/auth/logout'),
      ]);
      expect(logout.status).toBe(204);
      expect([200, 400, 401]).toContain(confirm.status);
      // Legitimate: the account signs in again, asked for the factor exactly when it was confirmed.
      for (const url of required.urls) {
        const { res } = await login(url, owner);
        expect(res.status).toBe(202);
        expect(res.body.status).toBe(confirm.status === 200 ? 'mfa_required' : 'enrollment_required');
      }
    }
  });

  // Found by the long model search (PostgreSQL, seeds 700000 and 700001): a session ending
  // (logout, or deleting itself) while it starts a new set-up that replaces its earlier one
  // answered 503: the set-up's transaction locked the old set-up row, then waited for the
  // session row the ending transaction held while its cascade waited for that set-up row (a
  // deadlock, read as an outage). The set-up now takes the session row first. Before the
  // fix these 40 rounds failed 3 runs of 3 on PostgreSQL.
  it('model search: a session replacing its set-up while it ends on the other instance: no 5xx, and the answers agree', async () => {
    for (let round = 0; round < 40; round++) {
      const owner = await signup(plain.urls[0]);
      const kind = round % 2 === 0 ? 'totp' : 'webauthn';
      const setupPath = kind === 'totp' ? '/api/mfa/totp/setup' : '/api/mfa/webauthn/register/options';
      expect((await owner.client.post(setupPath)).status).toBe(200);
      const mine = (await owner.client.get('/api/sessions')).body.sessions.find((s: { current: boolean }) => s.current);
      const ending = kind === 'totp' ? owner.client.post('/api/auth/logout') : owner.client.delete(`/api/sessions/${mine.id}`);
      const [end, setup] = await Promise.all([ending, owner.client.withBase(plain.urls[1]).post(setupPath)]);
      expect(end.status).toBe(204);
      expect([200, 401]).toContain(setup.status);
      // Legitimate: the account signs in again and starts a set-up.
      const { client, res } = await login(plain.urls[1], owner);
      expect(res.status).toBe(200);
      expect((await client.post(setupPath)).status).toBe(200);
    }
  });

  // Found by the long model search (PostgreSQL, seed 741089): an e-mail change confirmed
  // while another session of the account started a passkey set-up answered the set-up 503.
  // The set-up locked its session row, then its new row's foreign key waited for the account
  // row, which the e-mail change held (it changes the address) while it waited to end that
  // session: a deadlock. Set-ups now lock the account row first, as account changes do.
  it('model search: an e-mail change confirmed while another session starts a set-up: no 5xx, and the answers agree', async () => {
    for (let round = 0; round < 30; round++) {
      const owner = await signup(plain.urls[0]);
      const other = await secondSession(plain.urls[1], owner);
      const kind = round % 2 === 0 ? '/api/mfa/webauthn/register/options' : '/api/mfa/totp/setup';
      expect((await other.post(kind)).status).toBe(200);
      const next = uniqueEmail('moved');
      expect((await owner.client.post('/api/account/email', { email: next })).status).toBe(202);
      let token: string | null = null;
      for (let i = 0; i < 100 && !token; i++) {
        for (const dir of plain.dataDirs)
          token ??= await mailedToken(dir, { to: next, link: /confirm-email\?token=([A-Za-z0-9_-]+)/, timeoutMs: 50 });
      }
      expect(token).toBeTruthy();
      const [confirmed, setup] = await Promise.all([
        new Client(plain.urls[0]).post('/api/account/email/confirm', { token }),
        other.post(kind),
      ]);
      expect(confirmed.status).toBe(200);
      expect([200, 401]).toContain(setup.status);
    }
    // Legitimate: a set-up of a live session.
    const owner = await signup(plain.urls[0]);
    expect((await owner.client.post('/api/mfa/totp/setup')).status).toBe(200);
  });

  // Found by the long model search (PostgreSQL, seed 720015): a passkey step-up's options
  // (which replace the session's earlier challenge) racing the session's logout answered the
  // logout 503. The options' transaction locked the old challenge, then needed the session
  // row (foreign key) that the logout held while its cascade waited for that challenge: a
  // deadlock. The session row is now taken first, as for set-ups.
  it('model search: passkey step-up options racing the logout of their session: no 5xx, and the answers agree', async () => {
    for (let round = 0; round < 25; round++) {
      const owner = await signup(plain.urls[0]);
      expect((await registerPasskey(owner.client)).status).toBe(201);
      expect((await owner.client.post('/api/auth/step-up/webauthn/options')).status).toBe(200);
      const [options, logout] = await Promise.all([
        owner.client.post('/api/auth/step-up/webauthn/options'),
        owner.client.withBase(plain.urls[1]).post('/api/auth/logout'),
      ]);
      expect(logout.status).toBe(204);
      expect([200, 401]).toContain(options.status);
      expect((await owner.client.get('/api/account')).status).toBe(401);
    }
    // Legitimate: step-up options for a live session.
    const owner = await signup(plain.urls[0]);
    expect((await registerPasskey(owner.client)).status).toBe(201);
    const options = await owner.client.post('/api/auth/step-up/webauthn/options');
    expect(options.status).toBe(200);
    expect(typeof options.body.challenge).toBe('string');
  });

  // Found by the long model search (SQLite, GATEHOUSE_MFA_REQUIRED=all, seed 520001): an
  // enrolling session that asked to be remembered confirms its first factor while it logs
  // out; the confirmation's remember-me chain was started after the logout had revoked the
  // session's chains, so the logged-out browser's token still restored a (pending) session.
  // The chain now starts only for a live session, locked first (RememberTokenStore). In
  // the other order the logout presented the token the confirmation had just replaced and
  // ended nothing; a replaced token now still ends its session at logout (briefly).
  it('model search: a remember-me chain started by a first-factor confirmation racing its logout never restores', async () => {
    for (let round = 0; round < 30; round++) {
      const owner = await signup(required.urls[0]);
      await owner.client.post('/api/auth/logout');
      const { client, res } = await login(required.urls[0], owner, { remember: true });
      expect(res.body.status).toBe('enrollment_required');
      const setup = await client.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const [confirm, logout] = await Promise.all([
        client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) }),
        client.withBase(required.urls[1]).post('/api/auth/logout'),
      ]);
      expect(logout.status).toBe(204);
      // 400 no_pending_setup: the logout ended the session (and its set-up) between the gate and the confirmation.
      expect([200, 400, 401]).toContain(confirm.status);
      const issued = confirm.setCookies.find((c) => c.startsWith('gatehouse_remember='));
      // Whichever order: the session the confirmation renewed is over (a logout that came
      // after the confirmation presented the replaced token, which still ends its session)...
      const sessionCookie = confirm.setCookies.find((c) => c.startsWith('gatehouse_session='));
      if (sessionCookie) {
        const renewed = new Client(required.urls[0]);
        renewed.cookies.set('gatehouse_session', sessionCookie.split(';')[0]!.slice('gatehouse_session='.length));
        expect((await renewed.get('/api/account')).status).toBe(401);
      }
      if (!issued) continue;
      // ...and its remember-me token restores nothing.
      const copy = new Client(required.urls[0]);
      copy.cookies.set('gatehouse_remember', issued.split(';')[0]!.slice('gatehouse_remember='.length));
      const restored = await copy.get('/api/session');
      expect(restored.status).toBe(401);
      expect(restored.body.error).toBe('unauthenticated');
    }
    // Legitimate: without a logout, the remembered browser restores a pending session.
    const owner = await signup(required.urls[0]);
    await owner.client.post('/api/auth/logout');
    const { client } = await login(required.urls[0], owner, { remember: true });
    const setup = await client.post('/api/mfa/totp/setup');
    const confirm = await client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) });
    expect(confirm.status).toBe(200);
    const kept = new Client(required.urls[0]);
    kept.cookies.set('gatehouse_remember', client.cookies.get('gatehouse_remember')!);
    const restored = await kept.get('/api/session');
    expect(restored.status).toBe(401);
    expect(restored.body.error).toBe('mfa_required');
  });

  // Found by the model-based search: the gate judged the password change's freshness with
  // the factors the account had when the request arrived; another session's first factor,
  // confirmed meanwhile, made the change a ★ action needing that factor. No serial order
  // explains both succeeding (confirm first: the change needs a fresh factor check; change
  // first: the confirming session is revoked).
  // Noticed in session 3: an enrolling session of an account that gained its first factor in
  // another session stayed enrolling; it could neither verify that factor nor (I2) add one,
  // so its user was stuck until signing out. It may now verify the factor as if pending; all
  // else answers it as the contract says for an enrolling session.
  it('an enrolling session of an account that gained a factor elsewhere may verify that factor, and gains nothing else', async () => {
    const owner = await signup(required.urls[0]);
    const laptop = await login(required.urls[1], owner);
    expect(laptop.res.body.status).toBe('enrollment_required');
    const setup = await owner.client.post('/api/mfa/totp/setup');
    const confirm = await owner.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret, -1) });
    expect(confirm.status).toBe(200);
    const codes: string[] = confirm.body.recoveryCodes;
    // Attack: the laptop session opens nothing and cannot add a factor of its own.
    const account = await laptop.client.get('/api/account');
    expect(account.status).toBe(403);
    expect(account.body.error).toBe('enrollment_required');
    const own = await laptop.client.post('/api/mfa/totp/setup');
    expect(own.status).toBe(403);
    expect(own.body.error).toBe('step_up_required');
    // The enrolment page sends it to the second-factor step.
    const page = await laptop.client.get('/enrol');
    expect(page.status).toBe(303);
    expect(page.headers.location).toMatch(/\/sign-in\/verify$/);
    // A wrong code is refused.
    const wrong = await laptop.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: 'AAAA-BBBB-CCCC' });
    expect(wrong.status).toBe(401);
    // Legitimate: it verifies the account's factor and is full.
    const verified = await laptop.client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: codes[0] });
    expect(verified.status).toBe(200);
    expect((await laptop.client.get('/api/account')).status).toBe(200);
    expect((await laptop.client.get('/api/session')).body.aal).toBe(2);
  });

  // The deterministic half of the above: a logout that presents a token replaced moments
  // ago (here by a re-authentication) ends the session; the old token opens nothing else.
  it.each(['cookie', 'token'] as const)(
    'a logout presenting the token a parallel request just replaced still ends the session (%s)',
    async (transport) => {
      const owner = await signup(plain.urls[0], { transport });
      const stale = owner.client.withBase(plain.urls[1]);
      const reauth = await owner.client.post('/api/auth/reauth', { password: PASSWORD });
      expect(reauth.status).toBe(200);
      if (transport === 'token') owner.client.bearer = reauth.body.sessionToken;
      expect(stale.bearer ?? stale.cookies.get('gatehouse_session')).not.toBe(
        owner.client.bearer ?? owner.client.cookies.get('gatehouse_session'),
      );
      // Attack: the replaced token is no session anywhere else.
      expect((await stale.get('/api/account')).status).toBe(401);
      expect((await stale.post('/api/auth/reauth', { password: PASSWORD })).status).toBe(401);
      expect((await owner.client.get('/api/account')).status).toBe(200);
      // The logout that carried it ends the session the browser now holds.
      expect((await stale.post('/api/auth/logout')).status).toBe(204);
      expect((await owner.client.get('/api/account')).status).toBe(401);
      // Legitimate: signing in again works, and a logout with the current token ends that session.
      const again = await login(plain.urls[1], owner, { transport });
      expect(again.res.status).toBe(200);
      expect((await again.client.post('/api/auth/logout')).status).toBe(204);
      expect((await again.client.get('/api/account')).status).toBe(401);
    },
  );

  it('model search: a password change racing another session confirming the first factor: never both succeed', async () => {
    for (let round = 0; round < 8; round++) {
      const owner = await signup(plain.urls[0]);
      const other = await secondSession(plain.urls[1], owner);
      const setup = await other.post('/api/mfa/totp/setup');
      expect(setup.status).toBe(200);
      const next = `another new passphrase ${round}`;
      const [changed, confirmed] = await Promise.all([
        owner.client.post('/api/account/password', { currentPassword: PASSWORD, newPassword: next }),
        other.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) }),
      ]);
      expect([changed.status, confirmed.status]).not.toEqual([200, 200]);
      if (changed.status === 200) {
        expect(confirmed.status).toBe(401);
        expect((await login(plain.urls[1], { email: owner.email, password: next })).res.status).toBe(200);
      } else {
        expect(confirmed.status).toBe(200);
        expect(changed.status).toBe(403);
        expect(changed.body.error).toBe('step_up_required');
        expect((await login(plain.urls[1], owner)).res.status).toBe(202);
      }
    }
  });
});
