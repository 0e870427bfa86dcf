/**
 * Hostile values in what the pages read from the request: a `?notice=` naming an
 * Object.prototype key, and a form token of the right length in characters but not in
 * bytes (timingSafeEqual throws on unequal byte lengths: that was a 500, now a 403).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signup } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import { startFastServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startFastServer();
});
afterAll(() => server?.close());

describe('page input', () => {
  it('shows only its own notices', async () => {
    const get = (path: string) => new FormBrowser(server.url).go('GET', path);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await get(`/sign-in?notice=${name}`);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('role="status"');
      expect(res.text).not.toContain('function');
    }
    expect((await get('/sign-in?notice=signed_out')).text).toContain('You are signed out.');
  });

  it('refuses a multi-byte form token of the right length with 403, not 500', async () => {
    // Signed up over the API; the pages then carry its session cookie.
    const { client } = await signup(server.url);
    const b = new FormBrowser(server.url);
    b.cookies = new Map(client.cookies);
    const token = csrfIn((await b.go('GET', '/settings')).text);
    expect(token).not.toBe('');
    const post = (csrf: string) => b.go('POST', '/settings/tokens/revoke', { _csrf: csrf, tokenId: 'x' });
    expect((await post('é'.repeat(token.length))).status).toBe(403);
    // The real token still gets through to the handler (no such API token: the settings page says so).
    expect((await post(token)).status).toBe(404);
  });
});
