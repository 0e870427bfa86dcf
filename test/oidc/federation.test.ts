/**
 * Federated login with a SECOND Gatehouse as the upstream OpenID Provider, in-process over
 * loopback: the downstream Gatehouse is a real relying party (openid-client) of the
 * upstream's /oidc. Each path has its happy path beside the attack:
 *
 * - an upstream sign-in is a first factor: the downstream session is pending until the
 *   account's own second factor; only an acr/amr configured as trusted MFA gives full,
 *   and an untrusted `mfa` claim is ignored;
 * - an upstream identity whose e-mail matches a local account is not linked without that
 *   account's own second factor (full, fresh session); unlinking is ★;
 * - state, PKCE and single use of the flow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientSecretContext } from '../../src/oidc/clients.js';
import { withOidcTables } from '../../src/oidc/schema.js';
import { PASSWORD, signup, signupWithTotp, uniqueEmail, type MfaAccount } from '../helpers/accounts.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { follow, startOidcServer } from './rp.js';

const SECRET = 'downstream-client-secret-0123456789abcdef';
let upstream: TestServer;
let downstream: TestServer;

/** A confidential client on the upstream with a known secret (the downstream's configuration holds it). */
async function registerDownstream(clientId: string, redirectUris: string[]) {
  const g = upstream.server.gatehouse;
  const metadata = {
    client_id: clientId,
    redirect_uris: redirectUris,
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
  };
  await withOidcTables(g.database.db)
    .insertInto('oidc_clients')
    .values({
      client_id: clientId,
      secret_enc: g.keys.box.encrypt(SECRET, clientSecretContext(clientId)),
      metadata: JSON.stringify(metadata),
      created_at: Date.now(),
    })
    .execute();
}

beforeAll(async () => {
  upstream = await startOidcServer();
  const issuer = `${upstream.url}/oidc`;
  const entry = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    issuer,
    clientId: `gh-${name}`,
    clientSecret: SECRET,
    ...extra,
  });
  downstream = await startTestServer({
    ...FAST_ENV,
    GATEHOUSE_OIDC_UPSTREAMS: JSON.stringify([
      entry('corp', { label: 'Corp SSO' }),
      // The upstream's aal2 is trusted as MFA here.
      entry('corp-mfa', { trustedAcr: ['urn:gatehouse:aal2', 'urn:gatehouse:phr'] }),
      // Only a hardware key would be trusted: the upstream's "mfa"/"otp" claims are not.
      entry('corp-hwk', { trustedAmr: ['hwk'] }),
      // Nothing listens there.
      { name: 'down', issuer: 'http://127.0.0.1:1/oidc', clientId: 'gh-down' },
    ]),
  });
  for (const name of ['corp', 'corp-mfa', 'corp-hwk'])
    await registerDownstream(`gh-${name}`, [`${downstream.url}/sign-in/upstream/${name}/callback`]);
}, 60_000);
afterAll(async () => {
  await downstream?.close();
  await upstream?.close();
});

/** A browser signed in to the upstream Gatehouse: password only (aal1) or with its second factor (aal2). */
async function upstreamBrowser(account: { email: string; recoveryCodes?: string[] }, withFactor: boolean) {
  const b = new FormBrowser(upstream.url);
  const login = await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
  if (withFactor) {
    expect(login.location).toBe('/sign-in/verify');
    const challenge = await b.go('GET', '/sign-in/verify');
    const v = await b.go('POST', '/sign-in/verify', {
      _csrf: csrfIn(challenge.text),
      method: 'recovery_code',
      code: account.recoveryCodes!.pop()!,
    });
    expect(v.location).toBe('/settings');
  }
  return b;
}

/** Starts the upstream sign-in on the downstream and runs the upstream part; returns the callback's path. */
async function toCallback(down: FormBrowser, up: FormBrowser, name: string): Promise<string> {
  const start = await down.go('GET', `/sign-in/upstream/${name}`);
  expect(start.status).toBe(303);
  expect(start.location!.startsWith(`${upstream.url}/oidc/auth?`)).toBe(true);
  const done = await follow(up, start.location!);
  if (!('landed' in done)) throw new Error(`the upstream did not return: ${JSON.stringify(done).slice(0, 300)}`);
  expect(done.landed.origin).toBe(downstream.url);
  return done.landed.pathname + done.landed.search;
}

/** The whole upstream sign-in; the downstream's answer to the callback. */
async function federate(down: FormBrowser, up: FormBrowser, name: string) {
  return down.go('GET', await toCallback(down, up, name));
}

/** The browser's downstream session: `full` (with /api/session's body), or the gate's refusal (`mfa_required`, `unauthenticated`). */
async function state(down: FormBrowser): Promise<{ state: string; aal?: number; amr?: string[] }> {
  const c = new Client(downstream.url);
  c.cookies = new Map(down.cookies);
  const r = await c.get('/api/session');
  return r.status === 200 ? { state: 'full', ...r.body } : { state: r.body.error };
}

/** Links the upstream identity of `up` to the downstream account (full session in `down` from password + factor). */
async function linkAccounts(down: FormBrowser, up: FormBrowser, local: MfaAccount) {
  const cb = await federate(down, up, 'corp');
  expect(cb.location).toBe('/sign-in/upstream/link');
  const login = await down.go('POST', '/sign-in', { email: local.email, password: PASSWORD });
  expect(login.location).toBe('/sign-in/verify');
  const challenge = await down.go('GET', '/sign-in/verify');
  const v = await down.go('POST', '/sign-in/verify', {
    _csrf: csrfIn(challenge.text),
    method: 'recovery_code',
    code: local.recoveryCodes.pop()!,
  });
  // The sign-in returns to the link page.
  expect(v.location).toBe('/sign-in/upstream/link');
  const page = await down.go('GET', '/sign-in/upstream/link');
  expect(page.text).toContain('Link');
  const linked = await down.go('POST', '/sign-in/upstream/link', { _csrf: csrfIn(page.text) });
  expect(linked.location).toBe('/settings');
}

/** The same person on both: an MFA account on the downstream and one with the same e-mail upstream. */
async function twins() {
  const email = uniqueEmail('fed');
  const local = await signupWithTotp(downstream.url, { email });
  const remote = await signupWithTotp(upstream.url, { email });
  return { local, remote };
}

describe('sign-in with a linked upstream identity', () => {
  it('counts as the first factor only: pending until the local second factor, then full (aal2)', async () => {
    const { local, remote } = await twins();
    await linkAccounts(new FormBrowser(downstream.url), await upstreamBrowser(remote, true), local);

    // Attack: the upstream sign-in, even the upstream's own aal2, is no second factor here.
    const down = new FormBrowser(downstream.url);
    const cb = await federate(down, await upstreamBrowser(remote, true), 'corp');
    expect(cb.location).toBe('/sign-in/verify');
    expect((await state(down)).state).toBe('mfa_required');
    expect((await down.go('GET', '/settings')).location).toBe('/sign-in/verify');

    // Legitimate: the account's own second factor completes it.
    const challenge = await down.go('GET', '/sign-in/verify');
    const v = await down.go('POST', '/sign-in/verify', {
      _csrf: csrfIn(challenge.text),
      method: 'recovery_code',
      code: local.recoveryCodes.pop()!,
    });
    expect(v.location).toBe('/settings');
    const full = await state(down);
    expect(full).toMatchObject({ state: 'full', aal: 2 });
    expect(full.amr).toEqual(expect.arrayContaining(['fed', 'otp', 'mfa']));
  });

  it('upstream password-only sign-in through an upstream whose aal2 is trusted: still pending', async () => {
    const { local, remote } = await twins();
    await linkAccounts(new FormBrowser(downstream.url), await upstreamBrowser(remote, true), local);
    const down = new FormBrowser(downstream.url);
    // The upstream account's password only: acr aal1 upstream.
    const upOnlyPassword = new FormBrowser(upstream.url);
    await upOnlyPassword.go('POST', '/sign-in', { email: remote.email, password: PASSWORD });
    // Pending upstream: the upstream itself sends the browser to its second step, no code.
    const start = await down.go('GET', '/sign-in/upstream/corp-mfa');
    const stuck = await follow(upOnlyPassword, start.location!);
    expect(stuck).toMatchObject({ page: { path: '/sign-in/verify' } });

    // An upstream account without a second factor (full at aal1 upstream) linked to an MFA account.
    const email = uniqueEmail('fed1');
    const local1 = await signupWithTotp(downstream.url, { email });
    const remote1 = await signup(upstream.url, { email });
    const up1 = new FormBrowser(upstream.url);
    await up1.go('POST', '/sign-in', { email: remote1.email, password: PASSWORD });
    await linkAccounts(new FormBrowser(downstream.url), up1, local1);
    const down1 = new FormBrowser(downstream.url);
    const cb = await federate(down1, up1, 'corp-mfa');
    expect(cb.location).toBe('/sign-in/verify');
    expect((await state(down1)).state).toBe('mfa_required');
  });

  it('the upstream aal2 configured as trusted MFA gives a full session (aal 2, never fresh)', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    await linkAccounts(new FormBrowser(downstream.url), up, local);
    const down = new FormBrowser(downstream.url);
    const cb = await federate(down, up, 'corp-mfa');
    expect(cb.location).toBe('/settings');
    const s = await state(down);
    expect(s).toMatchObject({ state: 'full', aal: 2 });
    expect(s.amr).toEqual(expect.arrayContaining(['fed', 'fed_mfa', 'mfa']));
    // ★ still needs Gatehouse's own factor: unlinking asks for a step-up.
    const c = new Client(downstream.url);
    c.cookies = new Map(down.cookies);
    const links = await c.get('/api/account/upstreams');
    expect(links.body.upstreams).toHaveLength(1);
    const unlink = await c.delete(`/api/account/upstreams/${links.body.upstreams[0].id}`);
    expect(unlink.status).toBe(403);
    expect(unlink.body.error).toBe('step_up_required');
  });

  it('an untrusted amr claim is ignored: the upstream says mfa/otp, only hwk is trusted → pending', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    await linkAccounts(new FormBrowser(downstream.url), up, local);
    const down = new FormBrowser(downstream.url);
    const cb = await federate(down, up, 'corp-hwk');
    expect(cb.location).toBe('/sign-in/verify');
    expect((await state(down)).state).toBe('mfa_required');
  });
});

describe('linking', () => {
  it('an upstream identity with the e-mail of a local account is not linked without that account’s second factor', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    const attacker = new FormBrowser(downstream.url);
    const cb = await federate(attacker, up, 'corp');
    // No session from the e-mail match: only a pending link.
    expect(cb.location).toBe('/sign-in/upstream/link');
    expect((await state(attacker)).state).toBe('unauthenticated');
    const page = await attacker.go('GET', '/sign-in/upstream/link');
    expect(page.text).toContain('Sign in to link');

    // With the account's password but not its second factor: the confirmation is refused.
    await attacker.go('POST', '/sign-in', { email: local.email, password: PASSWORD });
    expect((await state(attacker)).state).toBe('mfa_required');
    const tryLink = await attacker.go('POST', '/sign-in/upstream/link', { _csrf: 'x' });
    expect(tryLink.location).toBe('/sign-in/verify');
    // Still not linked: the next upstream sign-in is again only a pending link.
    const again = await federate(new FormBrowser(downstream.url), up, 'corp');
    expect(again.location).toBe('/sign-in/upstream/link');

    // Legitimate: the account's owner, with password and second factor, links it.
    await linkAccounts(new FormBrowser(downstream.url), up, local);
    const now = await federate(new FormBrowser(downstream.url), up, 'corp');
    expect(now.location).toBe('/sign-in/verify');
  });

  it('a pending link made in a signed-in browser cannot be confirmed by another account', async () => {
    const { local, remote } = await twins();
    const other = await twins();
    const up = await upstreamBrowser(remote, true);
    // The owner is signed in on the downstream (full) and starts the link there.
    const owner = new FormBrowser(downstream.url);
    await owner.go('POST', '/sign-in', { email: local.email, password: PASSWORD });
    const ch = await owner.go('GET', '/sign-in/verify');
    await owner.go('POST', '/sign-in/verify', { _csrf: csrfIn(ch.text), method: 'recovery_code', code: local.recoveryCodes.pop()! });
    expect((await federate(owner, up, 'corp')).location).toBe('/sign-in/upstream/link');
    const linkCookie = owner.cookies.get('gatehouse_upstream_link')!;
    expect(linkCookie).toBeTruthy();

    // Another account's full, fresh session presents the same link handle: refused.
    const thief = new FormBrowser(downstream.url);
    await thief.go('POST', '/sign-in', { email: other.local.email, password: PASSWORD });
    const ch2 = await thief.go('GET', '/sign-in/verify');
    await thief.go('POST', '/sign-in/verify', { _csrf: csrfIn(ch2.text), method: 'recovery_code', code: other.local.recoveryCodes.pop()! });
    thief.cookies.set('gatehouse_upstream_link', linkCookie);
    const page = await thief.go('GET', '/sign-in/upstream/link');
    const stolen = await thief.go('POST', '/sign-in/upstream/link', { _csrf: csrfIn(page.text) });
    expect(stolen.status).toBe(400);
    expect(stolen.text).toContain('another account');

    // The owner confirms it.
    const ownPage = await owner.go('GET', '/sign-in/upstream/link');
    expect((await owner.go('POST', '/sign-in/upstream/link', { _csrf: csrfIn(ownPage.text) })).location).toBe('/settings');
    const c = new Client(downstream.url);
    c.cookies = new Map(owner.cookies);
    expect((await c.get('/api/account/upstreams')).body.upstreams).toHaveLength(1);
  });

  it('unlinking is ★: refused without a fresh factor, done with one; afterwards the upstream no longer signs in', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    await linkAccounts(new FormBrowser(downstream.url), up, local);
    // A session from the upstream plus the local factor is fresh: unlinking works.
    const down = new FormBrowser(downstream.url);
    await federate(down, up, 'corp');
    const ch = await down.go('GET', '/sign-in/verify');
    await down.go('POST', '/sign-in/verify', { _csrf: csrfIn(ch.text), method: 'recovery_code', code: local.recoveryCodes.pop()! });
    const c = new Client(downstream.url);
    c.cookies = new Map(down.cookies);
    const id = (await c.get('/api/account/upstreams')).body.upstreams[0].id;
    // Another account cannot unlink it.
    const other = await signup(downstream.url);
    expect((await other.client.delete(`/api/account/upstreams/${id}`)).status).toBe(404);
    expect((await c.delete(`/api/account/upstreams/${id}`)).status).toBe(204);
    expect((await federate(new FormBrowser(downstream.url), up, 'corp')).location).toBe('/sign-in/upstream/link');
  });
});

describe('the relying party checks (state, PKCE, single use)', () => {
  it('a callback with another flow’s state is refused; a code delivered into another browser fails PKCE', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    await linkAccounts(new FormBrowser(downstream.url), up, local);

    // The attacker's own upstream sign-in (code + state of the attacker's flow)...
    const attackerDown = new FormBrowser(downstream.url);
    const attackerCallback = await toCallback(attackerDown, up, 'corp');
    // ... delivered into the victim's browser, which started its own flow.
    const victim = new FormBrowser(downstream.url);
    const victimStart = await victim.go('GET', '/sign-in/upstream/corp');
    const victimState = new URL(victimStart.location!).searchParams.get('state')!;
    const injected = await victim.go('GET', attackerCallback);
    expect(injected.status).toBe(400);
    expect(injected.text).toMatch(/state/);
    expect((await state(victim)).state).toBe('unauthenticated');

    // The same code with the victim's state: the state check passes, PKCE does not.
    const victim2 = new FormBrowser(downstream.url);
    const start2 = await victim2.go('GET', '/sign-in/upstream/corp');
    const state2 = new URL(start2.location!).searchParams.get('state')!;
    const attacker2 = new FormBrowser(downstream.url);
    const cb2 = new URL(await toCallback(attacker2, up, 'corp'), downstream.url);
    cb2.searchParams.set('state', state2);
    const swapped = await victim2.go('GET', cb2.pathname + cb2.search);
    expect(swapped.status).toBe(400);
    expect(swapped.text).toContain('invalid_grant');
    expect((await state(victim2)).state).toBe('unauthenticated');
    void victimState;

    // The flow is single use: the attacker's browser cannot replay its own callback.
    const legit = new FormBrowser(downstream.url);
    const path = await toCallback(legit, up, 'corp');
    const replay = new FormBrowser(downstream.url);
    replay.cookies = new Map(legit.cookies); // the flow cookie too
    expect((await legit.go('GET', path)).location).toBe('/sign-in/verify');
    const replayed = await replay.go('GET', path);
    expect(replayed.status).toBe(400);
    expect(replayed.text).toContain('already used');
  });

  it('a callback without the flow cookie, or for an unknown upstream, is refused', async () => {
    const b = new FormBrowser(downstream.url);
    expect((await b.go('GET', '/sign-in/upstream/corp/callback?code=x&state=y')).status).toBe(400);
    expect((await b.go('GET', '/sign-in/upstream/nope')).status).toBe(404);
    // An upstream that cannot be reached: 503 with Retry-After, no flow.
    const down = await b.go('GET', '/sign-in/upstream/down');
    expect(down.status).toBe(503);
    expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
    // The sign-in page offers the configured upstreams.
    expect((await b.go('GET', '/sign-in')).text).toContain('Sign in with Corp SSO');
  });
});

describe('linked sign-ins on the settings page', () => {
  /** The hidden fields of the step-up prompt's form for `method`, as a browser would post them. */
  function promptForm(prompt: string, method: string): Record<string, string> {
    const form = [...prompt.matchAll(/<form class="card" method="post" action="\/settings\/step-up">([\s\S]*?)<\/form>/g)]
      .map((m) => m[1]!)
      .find((f) => f.includes(`name="stepup_method" value="${method}"`));
    if (!form) throw new Error(`no ${method} form in the prompt`);
    return Object.fromEntries(
      [...form.matchAll(/<input\s+type="hidden"\s+name="([^"]+)"\s+value="([^"]*)"\s*\/?>/g)].map((m) => [m[1]!, m[2]!]),
    );
  }

  it('lists the link; unlinking is ★ (step-up prompt in place for a session that is not fresh), then done; another account cannot unlink it', async () => {
    const { local, remote } = await twins();
    const up = await upstreamBrowser(remote, true);
    await linkAccounts(new FormBrowser(downstream.url), up, local);
    // Signed in through the upstream whose aal2 is trusted: full, but never fresh (F2).
    const down = new FormBrowser(downstream.url);
    expect((await federate(down, up, 'corp-mfa')).location).toBe('/settings');
    const settings = await down.go('GET', '/settings');
    expect(settings.text).toContain('Linked sign-ins');
    expect(settings.text).toContain('aria-label="Unlink Corp SSO"');
    expect(settings.text).toContain(remote.email);
    const linkId = /name="linkId" value="([^"]+)"/.exec(settings.text)![1]!;
    const linkedNow = async () => {
      const c = new Client(downstream.url);
      c.cookies = new Map(down.cookies);
      return (await c.get('/api/account/upstreams')).body.upstreams as unknown[];
    };

    // Attack: another account (fresh: just signed up) posts this link's id: not found, nothing removed.
    const other = await signup(downstream.url);
    const otherBrowser = new FormBrowser(downstream.url);
    otherBrowser.cookies = new Map(other.client.cookies);
    const otherSettings = await otherBrowser.go('GET', '/settings');
    expect(otherSettings.text).not.toContain('name="linkId"');
    const foreign = await otherBrowser.go('POST', '/settings/upstreams/unlink', { _csrf: csrfIn(otherSettings.text), linkId });
    expect(foreign.status).toBe(404);
    expect(foreign.text).toContain('No such linked sign-in');
    expect(await linkedNow()).toHaveLength(1);

    // Attack: the session that is not fresh: the step-up prompt, nothing unlinked.
    const prompt = await down.go('POST', '/settings/upstreams/unlink', { _csrf: csrfIn(settings.text), linkId });
    expect(prompt.status).toBe(403);
    expect(prompt.text).toContain('To unlink a sign-in with another provider, confirm');
    expect(await linkedNow()).toHaveLength(1);

    // Legitimate: the account's own factor, then the post is repeated and the link goes.
    const body = { ...promptForm(prompt.text, 'recovery_code'), stepup_code: local.recoveryCodes.pop()! };
    const confirmed = await down.go('POST', '/settings/step-up', body);
    expect(confirmed.status).toBe(307);
    expect(confirmed.location).toBe('/settings/upstreams/unlink');
    const done = await down.go('POST', '/settings/upstreams/unlink', body);
    expect(done.location).toBe('/settings?notice=upstream_unlinked');
    expect(await linkedNow()).toEqual([]);
    const after = await down.go('GET', '/settings?notice=upstream_unlinked');
    expect(after.text).toContain('Sign-in unlinked');
    expect(after.text).toContain('No sign-in with another provider is linked.');
    // The upstream no longer signs in to the account: only a pending link again.
    expect((await federate(new FormBrowser(downstream.url), up, 'corp')).location).toBe('/sign-in/upstream/link');
  });
});
