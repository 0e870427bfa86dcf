/**
 * examples/oidc-rp against a real Gatehouse over loopback: a user signs in to the example
 * through Gatehouse with password and second factor, the example asked for
 * acr_values=urn:gatehouse:aal2 and gets it; its API accepts the access token where aal2
 * is enough and answers an RFC 9470 step-up challenge where it is not. An account without
 * a second factor cannot reach aal2: the example gets unmet_authentication_requirements.
 */
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRp } from '../../examples/oidc-rp/app.js';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { PASSWORD, signup, signupWithTotp } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import type { TestServer } from '../helpers/server.js';
import { API, continuation, follow, startOidcServer } from '../oidc/rp.js';

let gatehouse: TestServer;
let rp: FastifyInstance;
let rpUrl: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

beforeAll(async () => {
  gatehouse = await startOidcServer();
  const port = await freePort();
  rpUrl = `http://127.0.0.1:${port}`;
  const g = gatehouse.server.gatehouse;
  const { clientSecret } = await new ClientRegistry(g.database.db, g.keys.box, gatehouse.dataDir).add(
    { client_id: 'example-rp', redirect_uris: [`${rpUrl}/callback`] },
    Date.now(),
  );
  rp = await createRp({ issuer: `${gatehouse.url}/oidc`, clientId: 'example-rp', clientSecret: clientSecret!, baseUrl: rpUrl, api: API });
  await rp.listen({ port, host: '127.0.0.1' });
}, 60_000);
afterAll(async () => {
  await rp?.close();
  await gatehouse?.close();
});

/** The user's browser: one cookie jar per site (the example and Gatehouse). */
async function signInThroughExample(account: { email: string; recoveryCodes?: string[] }, query = '') {
  const atRp = new FormBrowser(rpUrl);
  const atGatehouse = new FormBrowser(gatehouse.url);
  const login = await atRp.go('GET', `/login${query}`);
  expect(login.status).toBe(302);
  const first = await follow(atGatehouse, login.location!);
  expect(first).toMatchObject({ page: { path: '/sign-in' } });
  let next = continuation(await atGatehouse.go('POST', '/sign-in', { email: account.email, password: PASSWORD }))!;
  if (next === '/sign-in/verify') {
    const challenge = await atGatehouse.go('GET', next);
    next = continuation(
      await atGatehouse.go('POST', next, { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes!.pop()! }),
    )!;
  }
  const back = await follow(atGatehouse, next);
  if (!('landed' in back)) throw new Error(JSON.stringify(back).slice(0, 300));
  expect(back.landed.origin).toBe(rpUrl);
  const callback = await atRp.go('GET', back.landed.pathname + back.landed.search);
  return { status: callback.status, body: JSON.parse(callback.text) as Record<string, any> };
}

const api = (method: 'GET' | 'POST', path: string, token?: string) =>
  request(`${rpUrl}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('examples/oidc-rp', () => {
  it('signs in with MFA (acr aal2 asked and given); its API accepts aal2 and challenges for phr (RFC 9470)', async () => {
    const account = await signupWithTotp(gatehouse.url);
    const { status, body } = await signInThroughExample(account);
    expect(status).toBe(200);
    expect(body.acr).toBe('urn:gatehouse:aal2');
    expect(body.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));

    const balance = await api('GET', '/api/balance', body.access_token);
    expect(balance.statusCode).toBe(200);
    expect(await balance.body.json()).toEqual({ balance: 1234 });

    const payees = await api('POST', '/api/payees', body.access_token);
    expect(payees.statusCode).toBe(401);
    await payees.body.dump();
    expect(payees.headers['www-authenticate']).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A stronger authentication is required.", acr_values="urn:gatehouse:phr", max_age=300',
    );

    // The client answers the challenge by signing in again with what it names; Gatehouse
    // treats the acr as essential: this account has no passkey, so it cannot be met.
    const asked = /acr_values="([^"]+)", max_age=(\d+)/.exec(payees.headers['www-authenticate'] as string)!;
    const stepUp = await signInThroughExample(account, `?acr_values=${encodeURIComponent(asked[1]!)}&max_age=${asked[2]}`);
    expect(stepUp).toEqual({ status: 403, body: { error: 'unmet_authentication_requirements' } });
  });

  it('no token or a tampered one: invalid_token', async () => {
    const none = await api('GET', '/api/balance');
    expect(none.statusCode).toBe(401);
    await none.body.dump();
    const bad = await api('GET', '/api/balance', 'eyJhbGciOiJub25lIn0.e30.');
    expect(bad.headers['www-authenticate']).toContain('error="invalid_token"');
    await bad.body.dump();
  });

  it('an account without a second factor cannot reach aal2: the example gets unmet_authentication_requirements, no token', async () => {
    const account = await signup(gatehouse.url);
    const { status, body } = await signInThroughExample(account);
    expect(status).toBe(403);
    expect(body).toEqual({ error: 'unmet_authentication_requirements' });
  });
});
