/**
 * A person's whole journey through the pages in real Chromium (Debian's package, driven
 * by playwright-core), with the DevTools virtual authenticator standing in for a passkey:
 * sign up → enrol TOTP → sign out → sign in → challenge → settings → add passkey → sign in
 * with the passkey → step-up in place → create an API token → revoke sessions. Plus the
 * bypass attempts through the pages (settings while pending, a reused code) and a
 * no-JavaScript browser. With GATEHOUSE_SCREENSHOTS=1 it saves screenshots of the main
 * pages into docs/screenshots/.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

function findChromium(): string | null {
  for (const candidate of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(candidate)) return candidate;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const CHROMIUM = findChromium();
/** Screenshots go to docs/screenshots/ only when asked (GATEHOUSE_SCREENSHOTS=1), so test runs leave the tree clean. */
const SHOTS = process.env.GATEHOUSE_SCREENSHOTS ? path.resolve('docs/screenshots') : path.join(os.tmpdir(), 'gatehouse-screenshots');
const STEP_UP_MAX_AGE = 5;

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// On a developer machine without Chromium these tests skip; in CI (.ci/run installs
// Chromium) a missing browser is a failure, never a silent skip.
if (!CHROMIUM && process.env.CI) throw new Error('CI is set but no Chromium was found: .ci/run should install it');

describe.skipIf(!CHROMIUM)('pages in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let base: string;
  const cspViolations: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    // WebAuthn needs a domain (not an IP) as RP ID; localhost is a secure context over http.
    base = `http://localhost:${port}`;
    server = await startTestServer({
      PORT: String(port),
      GATEHOUSE_PUBLIC_URL: base,
      GATEHOUSE_STEP_UP_MAX_AGE: String(STEP_UP_MAX_AGE),
      GATEHOUSE_ARGON2_MEMORY_KIB: '1024',
      GATEHOUSE_ARGON2_ITERATIONS: '1',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM!,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function newContext(options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 480, height: 900 }, deviceScaleFactor: 1, ...options });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    return { context, page };
  }

  async function shot(page: Page, name: string) {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  }

  const alertText = (page: Page) => page.locator('[role=alert]').first().innerText();

  it(
    'a person signs up, enrols TOTP and a passkey, signs in with both, steps up, creates a token and revokes sessions',
    { timeout: 90_000 },
    async () => {
      // A neutral address: it shows in the screenshots (docs/screenshots, npm run screenshots).
      const email = 'alice@example.com';
      const password = 'violet-kettle-29-harbour';
      const { context, page } = await newContext();
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });

      // Sign up.
      await page.goto(`${base}/sign-up`);
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(password);
      await shot(page, 'sign-up');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect(page).toHaveURLish(`${base}/settings`);

      // Enrol TOTP from the page (signing up counts as a fresh password check).
      await page.getByRole('button', { name: 'Add authenticator app' }).click();
      await page.locator('summary').click();
      const secret = (await page.locator('#totp-secret').innerText()).replace(/\s/g, '');
      expect(secret).toMatch(/^[A-Z2-7]+$/);
      await expect(page.locator('img.qr')).toBeVisibleish();
      await shot(page, 'totp-setup');
      const confirmInput = page.getByLabel('Enter the 6-digit code the app shows');
      expect(await confirmInput.getAttribute('autocomplete')).toBe('one-time-code');
      // The previous step's code (within drift), so the current one is left for signing in.
      await confirmInput.fill(totpCodeAt(secret, Date.now() - 30_000));
      await page.getByRole('button', { name: 'Turn on' }).click();
      const codes = await page.locator('#recovery-codes li').allInnerTexts();
      expect(codes).toHaveLength(10);
      expect(await page.getByRole('link', { name: 'Download as text' }).getAttribute('download')).toBe('gatehouse-recovery-codes.txt');
      await shot(page, 'recovery-codes');
      await page.getByRole('link', { name: /continue/ }).click();

      // Sign out, sign in: the challenge.
      await page.getByRole('button', { name: 'Sign out' }).first().click();
      await expect(page).toHaveURLish(`${base}/sign-in?notice=signed_out`);
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(password);
      await shot(page, 'sign-in');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page).toHaveURLish(`${base}/sign-in/verify`);

      // Bypass attempts while pending: settings and a ★ action both land back on the challenge.
      await page.goto(`${base}/settings`);
      await expect(page).toHaveURLish(`${base}/sign-in/verify`);
      const sneaky = await page.request.post(`${base}/settings/recovery-codes`, {
        form: { x: '1' },
        headers: { origin: base },
        maxRedirects: 0,
      });
      expect([303, 403]).toContain(sneaky.status());
      expect(await sneaky.text()).not.toContain('recovery-codes');
      const api = await page.request.get(`${base}/api/mfa`);
      expect(api.status()).toBe(401);

      const codeInput = page.getByLabel('6-digit code from your authenticator app');
      expect(await codeInput.getAttribute('autocomplete')).toBe('one-time-code');
      await shot(page, 'challenge');
      const loginCode = totpCodeAt(secret, Date.now());
      await codeInput.fill(loginCode);
      await page.getByRole('button', { name: 'Verify' }).click();
      await expect(page).toHaveURLish(`${base}/settings`);

      // Bypass attempt: the same code again in a new sign-in is refused, announced as an alert.
      await page.getByRole('button', { name: 'Sign out' }).first().click();
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByLabel('6-digit code from your authenticator app').fill(loginCode);
      await page.getByRole('button', { name: 'Verify' }).click();
      expect(page.url()).toBe(`${base}/sign-in/verify`);
      expect(await alertText(page)).toMatch(/not right/);
      expect(await page.getByLabel('6-digit code from your authenticator app').getAttribute('aria-invalid')).toBe('true');
      // A recovery code works once.
      await page.locator('summary', { hasText: 'Use a recovery code' }).click();
      await page.getByLabel('Recovery code').fill(codes[0]!);
      await page.getByRole('button', { name: 'Use recovery code' }).click();
      await expect(page).toHaveURLish(`${base}/settings`);
      expect(await page.locator('#codes-remaining').innerText()).toBe('9');

      // Add a passkey (★; the recovery code was just verified, so no prompt).
      await page.getByRole('button', { name: 'Add a passkey' }).click();
      await page.getByLabel('Name for this passkey').fill('Virtual key');
      await shot(page, 'add-passkey');
      await page.getByRole('button', { name: 'Create passkey' }).click();
      await page.waitForURL(`${base}/settings?notice=passkey_added`);
      await expect(page.getByText('Passkey “Virtual key”')).toBeVisibleish();
      await shot(page, 'settings');

      // Sign in with the passkey.
      await page.getByRole('button', { name: 'Sign out' }).first().click();
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Use passkey' }).click();
      await page.waitForURL(`${base}/settings`);
      const session = await (await page.request.get(`${base}/api/session`)).json();
      expect(session.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'user', 'mfa']));

      // Step-up in place: once the check is stale, a ★ action asks for the factor, then completes.
      await sleep((STEP_UP_MAX_AGE + 0.5) * 1000);
      await page.getByRole('button', { name: 'Create new codes' }).click();
      await expect(page.getByRole('heading', { name: 'Confirm it’s you' })).toBeVisibleish();
      await shot(page, 'step-up');
      await page.getByRole('button', { name: 'Use passkey' }).click();
      await page.waitForSelector('#recovery-codes');
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('New recovery codes');
      const newCodes = await page.locator('#recovery-codes li').allInnerTexts();
      expect(newCodes).toHaveLength(10);
      await page.getByRole('link', { name: /continue/ }).click();

      // Create an API token (still fresh), shown once.
      await page.getByLabel('New token name').fill('CI reader');
      await page.getByLabel('account:read').check();
      await page.getByRole('button', { name: 'Create token' }).click();
      const token = (await page.locator('#api-token').innerText()).trim();
      await shot(page, 'api-token');
      const withToken = await fetch(`${base}/api/account`, { headers: { authorization: `Bearer ${token}` } });
      expect(withToken.status).toBe(200);
      await page.getByRole('link', { name: 'Done' }).click();

      // A second browser, without JavaScript: the code challenge works, the passkey button stays hidden.
      const other = await newContext({ javaScriptEnabled: false });
      await other.page.goto(`${base}/sign-in`);
      await other.page.getByLabel('Email address').fill(email);
      await other.page.getByLabel('Password').fill(password);
      await other.page.getByRole('button', { name: 'Sign in' }).click();
      expect(await other.page.getByRole('button', { name: 'Use passkey' }).isHidden()).toBe(true);
      await other.page.locator('summary', { hasText: 'Use a recovery code' }).click();
      await other.page.getByLabel('Recovery code').fill(newCodes[0]!);
      await other.page.getByRole('button', { name: 'Use recovery code' }).click();
      await expect(other.page).toHaveURLish(`${base}/settings`);

      // Revoke the other session from the first browser; then it is signed out.
      await page.reload();
      const revoke = page.getByRole('button', { name: /^Sign out session from/ });
      expect(await revoke.count()).toBe(1);
      await revoke.click();
      await page.waitForURL(`${base}/settings?notice=session_revoked`);
      expect(await page.getByRole('button', { name: /^Sign out session from/ }).count()).toBe(0);
      await other.page.goto(`${base}/settings`);
      await expect(other.page).toHaveURLish(`${base}/sign-in`);
      await other.context.close();

      // Revoke this session itself.
      await page.getByRole('button', { name: 'Sign out this session' }).click();
      await expect(page).toHaveURLish(`${base}/sign-in?notice=signed_out`);
      await page.goto(`${base}/settings`);
      await expect(page).toHaveURLish(`${base}/sign-in`);

      expect(cspViolations).toEqual([]);
      await context.close();
    },
  );

  it('a form posted from another site is refused, and pages carry a strict CSP', async () => {
    const res = await fetch(`${base}/sign-in`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const cross = await fetch(`${base}/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: 'email=a%40b.example&password=x',
    });
    expect(cross.status).toBe(403);
  });
});

// Tiny matchers over playwright-core (which has no `expect` of its own).
declare module 'vitest' {
  interface Assertion {
    toHaveURLish(url: string): Promise<void>;
    toBeVisibleish(): Promise<void>;
  }
}
expect.extend({
  async toHaveURLish(page: Page, url: string) {
    try {
      await page.waitForURL(url, { timeout: 5_000 });
      return { pass: true, message: () => `expected not ${url}` };
    } catch {
      return { pass: false, message: () => `expected URL ${url}, got ${page.url()}` };
    }
  },
  async toBeVisibleish(locator: import('playwright-core').Locator) {
    try {
      await locator.waitFor({ state: 'visible', timeout: 5_000 });
      return { pass: true, message: () => 'expected hidden' };
    } catch {
      return { pass: false, message: () => 'expected visible' };
    }
  },
});
