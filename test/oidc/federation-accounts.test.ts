/**
 * Accounts created from an upstream sign-in (`createAccounts`, off by default). The upstream
 * is the auditor's own small OpenID Provider (src/audit/upstream.ts), which signs in whatever
 * identity the test chooses, e-mail verified or not, with any acr. Each attack beside its
 * happy path:
 *
 * - off: a new verified address gets no account (only a pending link);
 * - on: a new verified address gets an account linked to the identity, with the upstream as
 *   first factor only (a trusted upstream acr is ignored at creation), never fresh; under a
 *   policy requiring MFA it must enrol;
 * - the address of an existing account (any spelling), or an unverified one: no account, no
 *   session, nothing linked;
 * - two parallel sign-ins of the same new identity: one account.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditUpstream } from '../../src/audit/upstream.js';
import { PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client, FormBrowser } from '../helpers/http-client.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { freePort } from '../audit/helpers.js';

const SECRET = 'jit-upstream-client-secret-0123456789abcdef';

interface Setup {
  server: TestServer;
  open: AuditUpstream;
  closed: AuditUpstream;
}

/** A downstream Gatehouse trusting two upstreams: "open" creates accounts (its acr urn:x:mfa trusted), "closed" does not. */
async function setUp(env: Record<string, string> = {}): Promise<Setup> {
  const openIssuer = `http://127.0.0.1:${await freePort()}`;
  const closedIssuer = `http://127.0.0.1:${await freePort()}`;
  const server = await startTestServer({
    ...FAST_ENV,
    ...env,
    GATEHOUSE_OIDC_UPSTREAMS: JSON.stringify([
      { name: 'open', issuer: openIssuer, clientId: 'gh', clientSecret: SECRET, createAccounts: true, trustedAcr: ['urn:x:mfa'] },
      { name: 'closed', issuer: closedIssuer, clientId: 'gh', clientSecret: SECRET },
    ]),
  });
  const upstream = (issuer: string, name: string) =>
    AuditUpstream.start(
      {
        issuer,
        clientId: 'gh',
        clientSecret: SECRET,
        clientAuth: 'client_secret_basic',
        startPath: `/sign-in/upstream/${name}`,
        callbackPath: `/sign-in/upstream/${name}/callback`,
      },
      server.url,
    );
  return { server, open: await upstream(openIssuer, 'open'), closed: await upstream(closedIssuer, 'closed') };
}
const tearDown = async (s: Setup | undefined) => {
  await s?.open.close();
  await s?.closed.close();
  await s?.server.close();
};

const identity = (email: string, extra: { emailVerified?: boolean; acr?: string } = {}) => ({
  sub: `u-${randomBytes(6).toString('hex')}`,
  email,
  emailVerified: extra.emailVerified ?? true,
  amr: ['pwd'],
  ...(extra.acr ? { acr: extra.acr } : {}),
});

/** Runs the upstream part; the callback's path on the downstream (not yet delivered). */
async function toCallback(s: Setup, b: FormBrowser, name: 'open' | 'closed'): Promise<string> {
  const start = await b.go('GET', `/sign-in/upstream/${name}`);
  expect(start.status).toBe(303);
  const at = await (name === 'open' ? s.open : s.closed).authorize(start.location!, []);
  if (!('callback' in at)) throw new Error(`the upstream did not return: ${at.stopped}`);
  return at.callback.pathname + at.callback.search;
}

const federate = async (s: Setup, b: FormBrowser, name: 'open' | 'closed') => b.go('GET', await toCallback(s, b, name));

/** The browser's downstream session: the /api/session body when full, else the gate's error code. */
async function stateOf(s: Setup, b: FormBrowser) {
  const c = new Client(s.server.url);
  c.cookies = new Map(b.cookies);
  const r = await c.get('/api/session');
  return r.status === 200 ? { state: 'full', ...r.body } : { state: r.body.error as string };
}

/** Whether any account has this address: a sign-up with it is refused as taken. */
async function accountExists(s: Setup, email: string) {
  const r = await new Client(s.server.url).post('/api/auth/signup', { email, password: PASSWORD });
  if (r.status !== 201 && r.status !== 409) throw new Error(`signup answered ${r.status}`);
  return r.status === 409;
}

describe('accounts created from an upstream sign-in (optional MFA policy)', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp();
  }, 60_000);
  afterAll(() => tearDown(s));

  it('off by default: a new verified address gets no account, only a pending link', async () => {
    const email = uniqueEmail('jit-off');
    s.closed.signInAs(identity(email));
    const b = new FormBrowser(s.server.url);
    expect((await federate(s, b, 'closed')).location).toBe('/sign-in/upstream/link');
    expect((await stateOf(s, b)).state).toBe('unauthenticated');
    expect(await accountExists(s, email)).toBe(false);
  });

  it('on: a new verified address gets an account linked to the identity, first factor only (a trusted acr ignored), never fresh', async () => {
    const email = uniqueEmail('jit-on');
    const who = identity(email, { acr: 'urn:x:mfa' });
    s.open.signInAs(who);
    const b = new FormBrowser(s.server.url);
    expect((await federate(s, b, 'open')).location).toBe('/settings?notice=account_created');
    expect((await b.go('GET', '/settings?notice=account_created')).text).toContain('Your account was created with this sign-in');
    const session = await stateOf(s, b);
    expect(session).toMatchObject({ state: 'full', aal: 1, user: { email } });
    expect(session.amr).toEqual(['fed']);
    const c = new Client(s.server.url);
    c.cookies = new Map(b.cookies);
    expect((await c.get('/api/account/upstreams')).body.upstreams).toMatchObject([{ upstream: 'open', email }]);
    // Never fresh: a ★ action asks for a step-up.
    const token = await c.post('/api/tokens', { name: 't', scopes: [] });
    expect(token.status).toBe(403);
    expect(token.body.error).toBe('step_up_required');
    // The created account has no password anyone knows.
    expect((await new Client(s.server.url).post('/api/auth/login', { email, password: PASSWORD })).status).toBe(401);
    // The same identity signs in to the same account next time (linked); no second account.
    s.open.signInAs(who);
    const again = new FormBrowser(s.server.url);
    await federate(s, again, 'open');
    expect(await stateOf(s, again)).toMatchObject({ user: { id: session.user.id } });
    expect(await accountExists(s, email)).toBe(true);
  });

  it('the verified address of an existing account, in any spelling: no new account, no session, nothing linked', async () => {
    const local = await signupWithTotp(s.server.url, { email: uniqueEmail('jit-taken') });
    for (const spelling of [local.email, local.email.toUpperCase()]) {
      s.open.signInAs(identity(spelling));
      const attacker = new FormBrowser(s.server.url);
      expect((await federate(s, attacker, 'open')).location).toBe('/sign-in/upstream/link');
      expect((await stateOf(s, attacker)).state).toBe('unauthenticated');
    }
    expect((await local.client.get('/api/account/upstreams')).body.upstreams).toEqual([]);
    // The owner still signs in as before (password, then the second factor).
    const login = await new Client(s.server.url).post('/api/auth/login', { email: local.email, password: PASSWORD });
    expect(login.status).toBe(202);
  });

  it('an address the upstream did not verify: no account', async () => {
    const email = uniqueEmail('jit-unverified');
    s.open.signInAs(identity(email, { emailVerified: false }));
    const b = new FormBrowser(s.server.url);
    expect((await federate(s, b, 'open')).location).toBe('/sign-in/upstream/link');
    expect((await stateOf(s, b)).state).toBe('unauthenticated');
    expect(await accountExists(s, email)).toBe(false);
  });
});

describe('accounts created from an upstream sign-in: a race', () => {
  let s: Setup;
  beforeAll(async () => {
    // Real argon2 cost: the password hash between the decision and the insert gives every
    // parallel sign-in the time to decide "create" before the first one commits.
    s = await setUp({ GATEHOUSE_ARGON2_MEMORY_KIB: '19456', GATEHOUSE_ARGON2_ITERATIONS: '2' });
  }, 60_000);
  afterAll(() => tearDown(s));

  it('two parallel sign-ins of the same new identity create one account', async () => {
    const email = uniqueEmail('jit-race');
    const who = identity(email);
    s.open.signInAs(who);
    const browsers = [new FormBrowser(s.server.url), new FormBrowser(s.server.url), new FormBrowser(s.server.url)];
    const callbacks: string[] = [];
    for (const b of browsers) callbacks.push(await toCallback(s, b, 'open'));
    const answers = await Promise.all(browsers.map((b, i) => b.go('GET', callbacks[i]!)));
    for (const a of answers) expect([303, 400]).toContain(a.status);
    const signedIn: string[] = [];
    let anyFull: FormBrowser | undefined;
    for (const b of browsers) {
      const st = await stateOf(s, b);
      if (st.state === 'full') {
        signedIn.push(st.user.id);
        anyFull = b;
      }
    }
    // Which ones: the creating sign-in, and any that found the identity already linked; the
    // others that lost the race became a pending link (or a "sign in again").
    expect(answers.filter((a) => a.location === '/settings?notice=account_created')).toHaveLength(1);
    expect(signedIn.length).toBeGreaterThanOrEqual(1);
    expect(new Set(signedIn).size).toBe(1);
    expect(await accountExists(s, email)).toBe(true);
    // The identity is linked once, to that account.
    const c = new Client(s.server.url);
    c.cookies = new Map(anyFull!.cookies);
    expect((await c.get('/api/account/upstreams')).body.upstreams).toHaveLength(1);
  });
});

describe('accounts created from an upstream sign-in under GATEHOUSE_MFA_REQUIRED=all', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp({ GATEHOUSE_MFA_REQUIRED: 'all' });
  }, 60_000);
  afterAll(() => tearDown(s));

  it('the new account must enrol a second factor before anything else', async () => {
    const email = uniqueEmail('jit-enrol');
    s.open.signInAs(identity(email, { acr: 'urn:x:mfa' }));
    const b = new FormBrowser(s.server.url);
    expect((await federate(s, b, 'open')).location).toBe('/enrol');
    expect((await stateOf(s, b)).state).toBe('enrollment_required');
    expect((await b.go('GET', '/settings')).location).toBe('/enrol');
    // An account made by sign-up is held to the same rule (the legitimate comparison).
    const other = await signup(s.server.url);
    expect((await other.client.get('/api/session')).body.error).toBe('enrollment_required');
  });
});
