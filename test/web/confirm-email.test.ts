/**
 * The pages behind the mailed links, followed from the real mail (no SMTP configured: the
 * server writes each message to <dataDir>/mail/*.eml). /confirm-email: the GET only shows a
 * button (a link scanner fetching it changes nothing), the POST confirms once, a cross-site
 * post cannot spend the token, and refusals are worded. /reset-password: the forgot mail's
 * link lands on a working form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, signup, uniqueEmail } from '../helpers/accounts.js';
import { Client, FormBrowser } from '../helpers/http-client.js';
import { mailedLink } from '../helpers/mail-files.js';
import { startFastServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startFastServer();
});
afterAll(() => server?.close());

/** A page request as a browser without cookies sends it: urlencoded form, our Origin unless told otherwise (`null` sends none). */
const page = (...args: Parameters<FormBrowser['go']>) => new FormBrowser(server.url).go(...args);

/** A new account whose client holds a bearer session (no cookies, so no Origin needed). */
const signupWithToken = (email = uniqueEmail('user')) => signup(server.url, { email, transport: 'token' });

const emailOf = async (client: Client) => (await client.get('/api/account')).body.email as string;

/** Asks for an e-mail change by API and returns the confirmation link from the mail. */
async function requestChange(client: Client, next: string) {
  expect((await client.post('/api/account/email', { email: next })).status).toBe(202);
  const link = await mailedLink(server.dataDir, { to: next, event: 'account.email_change_confirmation', linkPath: '/confirm-email' });
  return { link, token: link.searchParams.get('token')! };
}

describe('/confirm-email', () => {
  it('shows a button on GET (changing nothing), confirms on POST, and works once', async () => {
    const { email, client } = await signupWithToken();
    const next = uniqueEmail('new');
    const { link, token } = await requestChange(client, next);
    expect(link.origin).toBe(server.server.facade.publicUrl());

    // A link scanner (or the person) opening the link, twice: a page with a button, nothing changed.
    for (let i = 0; i < 2; i++) {
      const shown = await page('GET', link.pathname + link.search);
      expect(shown.status).toBe(200);
      expect(shown.text).toContain('<form class="card" method="post" action="/confirm-email">');
      expect(shown.text).toContain(`<input type="hidden" name="token" value="${token}" />`);
      expect(shown.text).toContain('Confirm new address</button>');
    }
    expect(await emailOf(client)).toBe(email);

    const done = await page('POST', '/confirm-email', { token });
    expect(done.status).toBe(200);
    expect(done.text).toContain('Email address changed');
    expect(done.text).toContain(`<strong>${next}</strong>`);
    expect(await emailOf(client)).toBe(next);

    const again = await page('POST', '/confirm-email', { token });
    expect(again.status).toBe(400);
    expect(again.text).toContain('role="alert"');
    expect(again.text).toContain('unknown, already used or expired');
    expect(await emailOf(client)).toBe(next);
  });

  it('refuses a cross-site post, which leaves the token usable by the person', async () => {
    const { email, client } = await signupWithToken();
    const next = uniqueEmail('moved');
    const { token } = await requestChange(client, next);
    expect((await page('POST', '/confirm-email', { token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await page('POST', '/confirm-email', { token }, { origin: null, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await emailOf(client)).toBe(email);
    expect((await page('POST', '/confirm-email', { token })).status).toBe(200);
    expect(await emailOf(client)).toBe(next);
  });

  it('words the refusals: unknown token, address taken meanwhile, link without a token', async () => {
    const unknown = await page('POST', '/confirm-email', { token: 'A'.repeat(43) });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('unknown, already used or expired');
    expect((await page('POST', '/confirm-email', {})).status).toBe(400);

    const { email, client } = await signupWithToken();
    const wanted = uniqueEmail('wanted');
    const { token } = await requestChange(client, wanted);
    await signupWithToken(wanted.toUpperCase());
    const taken = await page('POST', '/confirm-email', { token });
    expect(taken.status).toBe(409);
    expect(taken.text).toContain('Another account already uses this address');
    expect(await emailOf(client)).toBe(email);

    const bare = await page('GET', '/confirm-email');
    expect(bare.status).toBe(400);
    expect(bare.text).toContain('This link is incomplete');
  });
});

describe('/reset-password from the forgot mail', () => {
  it('the mailed link opens the form, which sets the new password once', async () => {
    const { email } = await signupWithToken();
    expect((await page('POST', '/forgot-password', { email })).text).toContain('Check your email');
    const link = await mailedLink(server.dataDir, { to: email, event: 'password_reset.requested', linkPath: '/reset-password' });
    expect(link.origin).toBe(server.server.facade.publicUrl());
    const token = link.searchParams.get('token')!;

    const form = await page('GET', link.pathname + link.search);
    expect(form.status).toBe(200);
    expect(form.text).toContain('action="/reset-password"');
    expect(form.text).toContain(`<input type="hidden" name="token" value="${token}" />`);

    const password = 'copper-lantern-81-meadow';
    expect((await page('POST', '/reset-password', { token, password })).location).toBe('/sign-in?notice=password_changed');
    expect((await page('POST', '/reset-password', { token, password })).status).toBe(400);
    expect((await login(server.url, { email, password }, { transport: 'token' })).res.status).toBe(200);
  });
});
