/**
 * The whole authorization code flow with PKCE in real Chromium (Debian's package, driven by
 * playwright-core): the relying party (openid-client) sends the browser to Gatehouse, the
 * user signs in on Gatehouse's pages with password and TOTP, the browser lands on the RP's
 * redirect URI with a code, and the RP redeems it for aal2 tokens. The pending step is
 * visible in between: no code reaches the RP before the TOTP is entered.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import type { TestServer } from '../helpers/server.js';
import { registerRp, startOidcServer, type Rp } from './rp.js';

/** The RP's redirect URI: a small server that records what the browser brings back. */
let REDIRECT_URI = '';
const landed: string[] = [];
let rpServer: http.Server;

function findChromium(): string | null {
  for (const candidate of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(candidate)) return candidate;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}
const CHROMIUM = findChromium();
if (!CHROMIUM && process.env.CI) throw new Error('CI is set but no Chromium was found: .ci/run should install it');

describe.skipIf(!CHROMIUM)('OIDC code flow in Chromium', () => {
  let server: TestServer;
  let rp: Rp;
  let browser: Browser;

  beforeAll(async () => {
    rpServer = http.createServer((req, res) => {
      if (req.url?.startsWith('/cb')) landed.push(new URL(req.url, REDIRECT_URI).href);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('relying party');
    });
    await new Promise<void>((r) => rpServer.listen(0, '127.0.0.1', r));
    REDIRECT_URI = `http://127.0.0.1:${(rpServer.address() as AddressInfo).port}/cb`;
    server = await startOidcServer();
    rp = await registerRp(server, { publicClient: true, redirectUri: REDIRECT_URI });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await new Promise((r) => rpServer?.close(r));
  });

  it('PKCE code flow with the password and TOTP entered on Gatehouse’s pages; the RP gets aal2', async () => {
    const account = await signupWithTotp(server.url);
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const cspViolations: string[] = [];
    page.on('console', (m) => {
      if (m.text().includes('Content Security Policy')) cspViolations.push(m.text());
    });
    const req = await rp.start();
    await page.goto(req.url.href);
    await page.waitForURL(`${server.url}/sign-in`);
    await page.getByLabel('Email address').fill(account.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();

    // Pending: the second step, and nothing has reached the RP.
    await page.waitForURL(`${server.url}/sign-in/verify`);
    expect(landed).toEqual([]);
    await page.getByLabel('6-digit code from your authenticator app').fill(account.totp.next());
    await page.getByRole('button', { name: 'Verify' }).click();

    await page.waitForURL(`${REDIRECT_URI}**`);
    expect(landed).toHaveLength(1);
    const callback = new URL(landed[0]!);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('state')).toBe(req.state);

    const tokens = await oidc.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(account.userId);
    expect(claims.acr).toBe('urn:gatehouse:aal2');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));

    // Signed in now: a silent authorization (prompt=none) completes in the browser.
    const silent = await rp.start({ prompt: 'none' });
    await page.goto(silent.url.href);
    expect(landed[1], landed.join(' ')).toContain('code=');

    // The same code cannot be redeemed again (and the replay revokes the grant it issued).
    await expect(
      oidc.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: req.verifier,
        expectedState: req.state,
        expectedNonce: req.nonce,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(cspViolations).toEqual([]);
    await context.close();
  });
});
