/**
 * Hostile values in what the pages read from the request: a `?notice=` naming an
 * Object.prototype key, and a form token of the right length in characters but not in
 * bytes (timingSafeEqual throws on unequal byte lengths: that was a 500, now a 403).
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ GATEHOUSE_ARGON2_MEMORY_KIB: '1024', GATEHOUSE_ARGON2_ITERATIONS: '1' });
});
afterAll(() => server?.close());

describe('page input', () => {
  it('shows only its own notices', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await request(`${server.url}/sign-in?notice=${name}`);
      const text = await res.body.text();
      expect(res.statusCode).toBe(200);
      expect(text).not.toContain('role="status"');
      expect(text).not.toContain('function');
    }
    expect(await (await request(`${server.url}/sign-in?notice=signed_out`)).body.text()).toContain('You are signed out.');
  });

  it('refuses a multi-byte form token of the right length with 403, not 500', async () => {
    const signup = await request(`${server.url}/api/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `u-${Date.now()}@example.test`, password: 'violet-kettle-29-harbour' }),
    });
    expect(signup.statusCode).toBe(201);
    await signup.body.dump();
    const setCookie = signup.headers['set-cookie'];
    const cookie = (Array.isArray(setCookie) ? setCookie : [setCookie!]).map((c) => c.split(';')[0]).join('; ');
    const settings = await request(`${server.url}/settings`, { headers: { cookie } });
    const token = /name="_csrf" value="([^"]+)"/.exec(await settings.body.text())![1]!;
    const post = (csrf: string) =>
      request(`${server.url}/settings/tokens/revoke`, {
        method: 'POST',
        headers: { cookie, origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, tokenId: 'x' }).toString(),
      });
    const forged = await post('é'.repeat(token.length));
    expect(forged.statusCode).toBe(403);
    await forged.body.dump();
    // The real token still gets through to the handler (no such API token: the settings page says so).
    const real = await post(token);
    expect(real.statusCode).toBe(404);
    await real.body.dump();
  });
});
