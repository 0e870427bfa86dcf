/**
 * The pages behind the mailed links, followed from the real mail (no SMTP configured: the
 * server writes each message to <dataDir>/mail/*.eml). /confirm-email: the GET only shows a
 * button (a link scanner fetching it changes nothing), the POST confirms once, a cross-site
 * post cannot spend the token, and refusals are worded. /reset-password: the forgot mail's
 * link lands on a working form.
 */
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'violet-kettle-29-harbour';
const unique = (label: string) => `${label}-${Math.random().toString(36).slice(2, 10)}@example.test`;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ GATEHOUSE_ARGON2_MEMORY_KIB: '1024', GATEHOUSE_ARGON2_ITERATIONS: '1' });
});
afterAll(() => server?.close());

/** A JSON API call with a bearer session (no cookies, so no Origin needed). */
async function api(method: 'GET' | 'POST', urlPath: string, json?: unknown, bearer?: string) {
  const headers: Record<string, string> = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await request(server.url + urlPath, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  return { status: res.statusCode, body: (await res.body.json()) as any };
}

/** A page request as a browser sends it: urlencoded form, our Origin unless told otherwise ('' sends none). */
async function page(method: 'GET' | 'POST', urlPath: string, form?: Record<string, string>, headers: Record<string, string> = {}) {
  const h: Record<string, string> = { ...headers };
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    h.origin ??= server.url;
    if (h.origin === '') delete h.origin;
  }
  const res = await request(server.url + urlPath, { method, headers: h, body: form ? new URLSearchParams(form).toString() : undefined });
  return { status: res.statusCode, location: res.headers.location as string | undefined, text: await res.body.text() };
}

async function signupWithToken(email = unique('user')) {
  const res = await api('POST', '/api/auth/signup', { email, password: PASSWORD, transport: 'token' });
  expect(res.status).toBe(201);
  return { email, token: res.body.sessionToken as string };
}

const emailOf = async (bearer: string) => (await api('GET', '/api/account', undefined, bearer)).body.email as string;

/** Waits for the mail of `event` to `to` in the mail folder and returns the link to `linkPath` in it. */
async function mailedLink(to: string, event: string, linkPath: string): Promise<URL> {
  const dir = path.join(server.dataDir, 'mail');
  const until = Date.now() + 10_000;
  for (;;) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
    for (const file of files) {
      const raw = fs.readFileSync(path.join(dir, file), 'utf8');
      const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
      if (!new RegExp(`^To: .*${to.replace(/[.+]/g, '\\$&')}`, 'mi').test(head) || !head.includes(`X-Gatehouse-Event: ${event}`)) continue;
      const link = new RegExp(`https?://\\S+${linkPath}\\?token=[A-Za-z0-9_-]+`).exec(raw);
      if (!link) throw new Error(`no ${linkPath} link in:\n${raw}`);
      return new URL(link[0]);
    }
    if (Date.now() > until) throw new Error(`no ${event} mail to ${to} in ${dir}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Asks for an e-mail change by API and returns the confirmation link from the mail. */
async function requestChange(bearer: string, next: string) {
  expect((await api('POST', '/api/account/email', { email: next }, bearer)).status).toBe(202);
  const link = await mailedLink(next, 'account.email_change_requested', '/confirm-email');
  return { link, token: link.searchParams.get('token')! };
}

describe('/confirm-email', () => {
  it('shows a button on GET (changing nothing), confirms on POST, and works once', async () => {
    const { email, token: bearer } = await signupWithToken();
    const next = unique('new');
    const { link, token } = await requestChange(bearer, next);
    expect(link.origin).toBe(new URL(server.url).origin);

    // A link scanner (or the person) opening the link, twice: a page with a button, nothing changed.
    for (let i = 0; i < 2; i++) {
      const shown = await page('GET', link.pathname + link.search);
      expect(shown.status).toBe(200);
      expect(shown.text).toContain('<form class="card" method="post" action="/confirm-email">');
      expect(shown.text).toContain(`<input type="hidden" name="token" value="${token}">`);
      expect(shown.text).toContain('Confirm new address</button>');
    }
    expect(await emailOf(bearer)).toBe(email);

    const done = await page('POST', '/confirm-email', { token });
    expect(done.status).toBe(200);
    expect(done.text).toContain('Email address changed');
    expect(done.text).toContain(`<strong>${next}</strong>`);
    expect(await emailOf(bearer)).toBe(next);

    const again = await page('POST', '/confirm-email', { token });
    expect(again.status).toBe(400);
    expect(again.text).toContain('role="alert"');
    expect(again.text).toContain('unknown, already used or expired');
    expect(await emailOf(bearer)).toBe(next);
  });

  it('refuses a cross-site post, which leaves the token usable by the person', async () => {
    const { email, token: bearer } = await signupWithToken();
    const next = unique('moved');
    const { token } = await requestChange(bearer, next);
    expect((await page('POST', '/confirm-email', { token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await page('POST', '/confirm-email', { token }, { origin: '', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await emailOf(bearer)).toBe(email);
    expect((await page('POST', '/confirm-email', { token })).status).toBe(200);
    expect(await emailOf(bearer)).toBe(next);
  });

  it('words the refusals: unknown token, address taken meanwhile, link without a token', async () => {
    const unknown = await page('POST', '/confirm-email', { token: 'A'.repeat(43) });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('unknown, already used or expired');
    expect((await page('POST', '/confirm-email', {})).status).toBe(400);

    const { email, token: bearer } = await signupWithToken();
    const wanted = unique('wanted');
    const { token } = await requestChange(bearer, wanted);
    await signupWithToken(wanted.toUpperCase());
    const taken = await page('POST', '/confirm-email', { token });
    expect(taken.status).toBe(409);
    expect(taken.text).toContain('Another account already uses this address');
    expect(await emailOf(bearer)).toBe(email);

    const bare = await page('GET', '/confirm-email');
    expect(bare.status).toBe(400);
    expect(bare.text).toContain('This link is incomplete');
  });
});

describe('/reset-password from the forgot mail', () => {
  it('the mailed link opens the form, which sets the new password once', async () => {
    const { email } = await signupWithToken();
    expect((await page('POST', '/forgot-password', { email })).text).toContain('Check your email');
    const link = await mailedLink(email, 'password_reset.requested', '/reset-password');
    expect(link.origin).toBe(new URL(server.url).origin);
    const token = link.searchParams.get('token')!;

    const form = await page('GET', link.pathname + link.search);
    expect(form.status).toBe(200);
    expect(form.text).toContain('action="/reset-password"');
    expect(form.text).toContain(`<input type="hidden" name="token" value="${token}">`);

    const password = 'copper-lantern-81-meadow';
    expect((await page('POST', '/reset-password', { token, password })).location).toBe('/sign-in?notice=password_changed');
    expect((await page('POST', '/reset-password', { token, password })).status).toBe(400);
    expect((await api('POST', '/api/auth/login', { email, password, transport: 'token' })).status).toBe(200);
  });
});
