/**
 * Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when the browser's session
 * ends at the provider, the relying party's backchannel_logout_uri receives a logout_token
 * (a JWT signed by the provider, naming the user and the session) that it verifies. And
 * maintenance purges the provider's expired codes, tokens and sessions.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withOidcTables } from '../../src/oidc/schema.js';
import { PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import type { TestServer } from '../helpers/server.js';
import { authorize, authPath, follow, registerRp, REDIRECT_URI, startOidcServer, type Rp } from './rp.js';

let server: TestServer;
let rp: Rp;
let receiver: http.Server;
const received: string[] = [];

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/bcl') received.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  server = await startOidcServer();
  rp = await registerRp(server, { backchannelLogoutUri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/bcl` });
}, 60_000);
afterAll(async () => {
  await server?.close();
  await new Promise((r) => receiver?.close(r));
});

async function mfaBrowser() {
  const account = await signupWithTotp(server.url);
  const b = new FormBrowser(server.url);
  await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
  const challenge = await b.go('GET', '/sign-in/verify');
  await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
  return { account, b };
}

const waitFor = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('back-channel logout', () => {
  it('the RP receives a signed logout_token for the user and session when the session ends; none before', async () => {
    const { account, b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b);
    const idClaims = tokens.claims()!;
    expect(typeof idClaims.sid).toBe('string');
    const before = received.length;

    const end = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${REDIRECT_URI}/bye` });
    const page = await b.go('GET', authPath(server, end));
    // Not yet: only the confirmation page.
    expect(received.length).toBe(before);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)![1]!;
    expect((await b.go('POST', '/oidc/session/end/confirm', { xsrf, logout: 'yes' })).status).toBe(303);

    await waitFor(() => received.length > before);
    const logoutToken = new URLSearchParams(received[received.length - 1]).get('logout_token')!;
    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/oidc/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(logoutToken, jwks, { issuer: `${server.url}/oidc`, audience: rp.clientId });
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(payload.sub).toBe(account.userId);
    expect(payload.sid).toBe(idClaims.sid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload.nonce).toBeUndefined();
  });

  it('"no, stay signed in" ends only this RP\'s part (its logout_token) and keeps the Gatehouse session', async () => {
    const { b } = await mfaBrowser();
    const tokens = await authorize(server, rp, b);
    const before = received.length;
    const end = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token! });
    const page = await b.go('GET', authPath(server, end));
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)![1]!;
    await b.go('POST', '/oidc/session/end/confirm', { xsrf });
    await waitFor(() => received.length > before);
    expect(received.length).toBe(before + 1);
    expect((await b.go('GET', '/settings')).status).toBe(200);
  });
});

describe('maintenance', () => {
  it('purges expired provider payloads and keeps live ones', async () => {
    const { b } = await mfaBrowser();
    await authorize(server, rp, b);
    const db = withOidcTables(server.server.gatehouse.database.db);
    const now = Date.now();
    await db
      .insertInto('oidc_payloads')
      .values([
        {
          model: 'AuthorizationCode',
          id: `old-${now}`,
          payload: '{}',
          grant_id: null,
          uid: null,
          user_code: null,
          account_id: null,
          expires_at: now - 1,
          consumed_at: null,
        },
        {
          model: 'AuthorizationCode',
          id: `live-${now}`,
          payload: '{}',
          grant_id: null,
          uid: null,
          user_code: null,
          account_id: null,
          expires_at: now + 60_000,
          consumed_at: null,
        },
      ])
      .execute();
    const counts = await server.server.gatehouse.maintenance.purgeExpired(now);
    expect(counts.oidcPayloads).toBeGreaterThanOrEqual(1);
    const ids = (await db.selectFrom('oidc_payloads').select('id').where('id', 'like', `%-${now}`).execute()).map((r) => r.id);
    expect(ids).toEqual([`live-${now}`]);
    // The grant and session from the sign-in above are live and stay.
    expect(
      Number(
        (await db
          .selectFrom('oidc_payloads')
          .select((e) => e.fn.countAll().as('n'))
          .where('model', '=', 'Grant')
          .executeTakeFirst())!.n,
      ),
    ).toBeGreaterThan(0);
    // Later than every expiry: everything with an expiry goes.
    await server.server.gatehouse.maintenance.purgeExpired(now + 365 * 24 * 3600_000);
    const left = await db.selectFrom('oidc_payloads').select('id').where('expires_at', 'is not', null).execute();
    expect(left).toEqual([]);
  });
});

describe('Gatehouse’s own sign-out', () => {
  /** Another browser of the same account, full (password and a recovery code). */
  async function anotherBrowser(account: { email: string; recoveryCodes: string[] }) {
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const challenge = await b.go('GET', '/sign-in/verify');
    await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
    return b;
  }
  const jwks = () => jose.createRemoteJWKSet(new URL(`${server.url}/oidc/jwks`));
  /** The logout tokens received since `from`, verified (signature, issuer, audience, type): their claims. */
  const logoutTokensSince = async (from: number) =>
    Promise.all(
      received.slice(from).map(async (body) => {
        const token = new URLSearchParams(body).get('logout_token')!;
        const { payload, protectedHeader } = await jose.jwtVerify(token, jwks(), {
          issuer: `${server.url}/oidc`,
          audience: rp.clientId,
          typ: 'logout+jwt',
        });
        expect(protectedHeader.typ).toBe('logout+jwt');
        expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
        expect(payload.nonce).toBeUndefined();
        return payload;
      }),
    );
  const providerSessionStored = async (id: string) =>
    (await withOidcTables(server.server.gatehouse.database.db)
      .selectFrom('oidc_payloads')
      .select('id')
      .where('model', '=', 'Session')
      .where('id', '=', id)
      .executeTakeFirst()) !== undefined;
  /** A silent authorization (prompt=none) in `b`: a code when the provider session and Gatehouse session still stand. */
  const silently = async (b: FormBrowser) => {
    const done = await follow(b, authPath(server, (await rp.start({ prompt: 'none' })).url));
    return 'landed' in done ? (done.landed.searchParams.get('code') ? 'code' : done.landed.searchParams.get('error')) : 'page';
  };

  it('the sign-out page ends this browser’s provider session: its RP gets a signed logout_token; another browser of the account keeps its own', async () => {
    const { account, b } = await mfaBrowser();
    const mine = (await authorize(server, rp, b)).claims()!;
    const other = await anotherBrowser(account);
    const theirs = (await authorize(server, rp, other)).claims()!;
    expect(mine.sid).not.toBe(theirs.sid);
    const providerSession = b.cookies.get('_session')!;
    expect(await providerSessionStored(providerSession)).toBe(true);
    expect(await silently(b)).toBe('code');

    const before = received.length;
    const settings = await b.go('GET', '/settings');
    expect((await b.go('POST', '/sign-out', { _csrf: csrfIn(settings.text) })).location).toBe('/sign-in?notice=signed_out');
    // Delivered before the sign-out answered: exactly one, for this browser's session.
    const tokens = await logoutTokensSince(before);
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ sub: account.userId, sid: mine.sid });
    expect(await providerSessionStored(providerSession)).toBe(false);
    expect(await silently(b)).toBe('login_required');
    // The account's other browser is untouched: its provider session still answers silently.
    expect(await silently(other)).toBe('code');
    expect(received.length).toBe(before + 1);
  });

  it('signing out this session from the settings page does the same (and DELETE /api/sessions/:id with its own id)', async () => {
    const { account, b } = await mfaBrowser();
    const claims = (await authorize(server, rp, b)).claims()!;
    const other = await anotherBrowser(account);
    const otherClaims = (await authorize(server, rp, other)).claims()!;
    const before = received.length;
    const settings = await b.go('GET', '/settings');
    const ownItem = settings.text.split('<li>').find((li) => li.includes('aria-label="Sign out this session"'))!;
    const ownSession = /name="sessionId" value="([^"]+)"/.exec(ownItem)![1]!;
    const out = await b.go('POST', '/settings/sessions/revoke', { _csrf: csrfIn(settings.text), sessionId: ownSession });
    expect(out.location).toBe('/sign-in?notice=signed_out');
    expect(await logoutTokensSince(before)).toMatchObject([{ sub: account.userId, sid: claims.sid }]);

    const api = new Client(server.url);
    api.cookies = new Map(other.cookies);
    const own = (await api.get('/api/sessions')).body.sessions.find((x: { current: boolean }) => x.current).id;
    expect((await api.delete(`/api/sessions/${own}`)).status).toBe(204);
    expect(await logoutTokensSince(before + 1)).toMatchObject([{ sub: account.userId, sid: otherClaims.sid }]);
  });

  it('POST /api/auth/logout does the same; a forged provider cookie presented at a logout ends nobody else’s session', async () => {
    const { account, b: victim } = await mfaBrowser();
    const victimClaims = (await authorize(server, rp, victim)).claims()!;
    const victimSession = victim.cookies.get('_session')!;

    // Attack: another account signs out presenting the victim's provider session id, with
    // a signature of its own (or none): nothing of the victim's ends.
    const { b: attacker } = await mfaBrowser();
    await authorize(server, rp, attacker);
    const before = received.length;
    const forged = new Client(server.url);
    forged.cookies = new Map(attacker.cookies);
    forged.cookies.set('_session', victimSession);
    expect((await forged.post('/api/auth/logout')).status).toBe(204);
    forged.cookies.delete('_session.sig');
    expect((await forged.post('/api/auth/logout')).status).toBe(204);
    expect(received.length).toBe(before);
    expect(await providerSessionStored(victimSession)).toBe(true);
    expect(await silently(victim)).toBe('code');

    // Legitimate: the victim's own logout over the API ends its provider session.
    const own = new Client(server.url);
    own.cookies = new Map(victim.cookies);
    expect((await own.post('/api/auth/logout')).status).toBe(204);
    const tokens = await logoutTokensSince(before);
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ sub: account.userId, sid: victimClaims.sid });
    expect(await providerSessionStored(victimSession)).toBe(false);
  });
});
