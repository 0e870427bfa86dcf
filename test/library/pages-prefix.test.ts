/**
 * The pages under a prefix: a Fastify host and an Express host mount Gatehouse at `/auth`
 * with the pages on, and a form browser signs up, enrols TOTP, signs out and in with the
 * factor, reaches settings and resets its password from the mailed link. Every page it
 * sees is scanned: no link, form action, asset or redirect may leave `/auth` (a page
 * pointing at the host's root would break the flow, or reach a host route by mistake).
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseExpress, type GatehouseExpress } from '../../src/adapters/express.js';
import { createGatehouse, gatehouseFastify, requires, type Gatehouse } from '../../src/index.js';
import { totpCodeAt } from '../../src/services/totp.js';
import { PASSWORD, uniqueEmail } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import { mailedMessage } from '../helpers/mail-files.js';
import { FAST_ENV } from '../helpers/server.js';

const PREFIX = '/auth';
const STEP_UP_MAX_AGE = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fast = {
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
};

/** Every root-relative URL in a page's href, action, src and data-options attributes. */
function rootRelativeUrls(page: string): string[] {
  return [...page.matchAll(/\b(?:href|action|src|data-options)="(\/[^"]*)"/g)].map((m) => m[1]!);
}

/** The URLs of `page` (and a redirect's Location) that are not under the prefix. */
function escapingUrls(res: { text: string; location?: string }): string[] {
  const urls = [...rootRelativeUrls(res.text), ...(res.location ? [res.location] : [])];
  return urls.filter((u) => !(u === PREFIX || u.startsWith(`${PREFIX}/`) || u.startsWith(`${PREFIX}?`)));
}

/** A form browser that checks every page and redirect it gets stays under the prefix. */
class PrefixedBrowser extends FormBrowser {
  seen = 0;
  override async go(...args: Parameters<FormBrowser['go']>) {
    const res = await super.go(...args);
    expect(escapingUrls(res), `${args[0]} ${args[1]}`).toEqual([]);
    this.seen += rootRelativeUrls(res.text).length;
    return res;
  }
}

/** Sign up through the pages and enrol TOTP (this time step's code): a full session at settings. */
async function signUpAndEnrol(b: PrefixedBrowser, email: string): Promise<{ secret: string; settings: string }> {
  const form = await b.go('GET', '/auth/sign-up');
  expect(form.status).toBe(200);
  expect(form.text).toContain('action="/auth/sign-up"');
  const signUp = await b.go('POST', '/auth/sign-up', { email, password: PASSWORD });
  expect(signUp.location).toBe('/auth/enrol');
  expect((await b.go('GET', '/auth/settings')).location).toBe('/auth/enrol');
  const enrol = await b.go('GET', '/auth/enrol');
  const setup = await b.go('POST', '/auth/settings/totp/setup', { _csrf: csrfIn(enrol.text) });
  expect(setup.status).toBe(200);
  const secret = /id="totp-secret">([^<]+)</.exec(setup.text)![1]!.replace(/\s/g, '');
  const confirm = await b.go('POST', '/auth/settings/totp/confirm', { _csrf: csrfIn(setup.text), code: totpCodeAt(secret, Date.now()) });
  expect(confirm.text).toContain('id="recovery-codes"');
  const settings = await b.go('GET', '/auth/settings');
  expect(settings.status).toBe(200);
  return { secret, settings: settings.text };
}

/** Sign up and enrol, sign out, sign in with password and code: a full session at settings. */
async function pagesJourney(b: PrefixedBrowser, email: string): Promise<{ secret: string }> {
  const { secret, settings } = await signUpAndEnrol(b, email);
  const signOut = await b.go('POST', '/auth/sign-out', { _csrf: csrfIn(settings) });
  expect(signOut.location).toBe('/auth/sign-in?notice=signed_out');
  expect((await b.go('GET', '/auth/settings')).location).toBe('/auth/sign-in');
  expect((await b.go('POST', '/auth/sign-in', { email, password: PASSWORD })).location).toBe('/auth/sign-in/verify');
  const challenge = await b.go('GET', '/auth/sign-in/verify');
  expect(challenge.status).toBe(200);
  // The next time step: the enrolment used this one's code.
  const verified = await b.go('POST', '/auth/sign-in/verify', {
    _csrf: csrfIn(challenge.text),
    method: 'totp',
    code: totpCodeAt(secret, Date.now() + 30_000),
  });
  expect(verified.location).toBe('/auth/settings');
  const full = await b.go('GET', '/auth/settings');
  expect(full.status).toBe(200);
  expect(full.text).toContain(email);
  return { secret };
}

/** Forgot password → the mailed link is the prefixed page → the new password signs in (and still asks for the factor). */
async function resetThroughMail(b: PrefixedBrowser, base: string, dataDir: string, email: string): Promise<void> {
  expect((await b.go('POST', '/auth/forgot-password', { email })).text).toContain('Check your email');
  const { link } = await mailedMessage(dataDir, { to: email, event: 'password_reset.requested', linkPath: '/reset-password' });
  // In development the link's host is localhost or 127.0.0.1 (both accepted): the port is the host app's.
  expect(link.port).toBe(new URL(base).port);
  expect(link.pathname).toBe('/auth/reset-password');
  const page = await b.go('GET', link.pathname + link.search);
  expect(page.status).toBe(200);
  const token = link.searchParams.get('token')!;
  const done = await b.go('POST', '/auth/reset-password', { token, password: 'copper-lantern-81-meadow' });
  expect(done.location).toBe('/auth/sign-in?notice=password_changed');
  const fresh = new PrefixedBrowser(base);
  expect((await fresh.go('POST', '/auth/sign-in', { email, password: 'copper-lantern-81-meadow' })).location).toBe('/auth/sign-in/verify');
}

/** The stylesheet, the script and the passkey module it imports (relative to itself) are served under the prefix. */
async function assetsUnderPrefix(base: string): Promise<void> {
  const b = new FormBrowser(base);
  expect((await b.go('GET', '/auth/assets/gatehouse.css')).status).toBe(200);
  const script = await b.go('GET', '/auth/assets/gatehouse.js');
  expect(script.status).toBe(200);
  const imported = /from '([^']+)'/.exec(script.text)![1]!;
  const resolved = new URL(imported, `${base}/auth/assets/gatehouse.js`);
  expect(resolved.pathname).toBe('/auth/assets/simplewebauthn/index.js');
  expect((await b.go('GET', resolved.pathname)).status).toBe(200);
}

describe('the pages under a prefix, in a Fastify host', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  let base: string;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pages-prefix-'));

  beforeAll(async () => {
    gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', mfaRequired: 'all', stepUpMaxAgeSeconds: STEP_UP_MAX_AGE, ...fast });
    app = Fastify();
    await app.register(gatehouseFastify, { gatehouse, prefix: PREFIX });
    app.get('/', { config: requires({ session: 'full' }) }, async (request) => ({ me: gatehouse.userIdOf(request) }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('sign up, enrol TOTP, sign in with it, reach settings, reset the password from the mail: all under /auth', async () => {
    const b = new PrefixedBrowser(base);
    const email = uniqueEmail('prefixed');
    await pagesJourney(b, email);
    // The session the pages made is the host's session too.
    const host = await b.go('GET', '/');
    expect(host.status).toBe(200);
    expect(JSON.parse(host.text).me).toEqual(expect.any(String));
    await resetThroughMail(b, base, dataDir, email);
    expect(b.seen).toBeGreaterThan(20);
  });

  it('a ★ form steps up in place and repeats under the prefix; the e-mail change links are the prefixed pages', async () => {
    const b = new PrefixedBrowser(base);
    const email = uniqueEmail('stepup');
    const { secret } = await signUpAndEnrol(b, email);
    await sleep(STEP_UP_MAX_AGE * 1000 + 300);
    const csrf = csrfIn((await b.go('GET', '/auth/settings')).text);
    const next = uniqueEmail('next');
    const prompt = await b.go('POST', '/auth/settings/email', { _csrf: csrf, email: next });
    expect(prompt.status).toBe(403);
    // What to repeat is kept relative to the base, and named by what it does.
    expect(prompt.text).toMatch(/name="stepup_next"\s+value="\/settings\/email"/);
    expect(prompt.text).toContain('change your email address');
    expect(prompt.text).toContain('action="/auth/settings/step-up"');
    const confirmed = await b.go('POST', '/auth/settings/step-up', {
      _csrf: csrf,
      stepup_next: '/settings/email',
      stepup_method: 'totp',
      stepup_code: totpCodeAt(secret, Date.now() + 30_000),
      email: next,
    });
    expect(confirmed.status).toBe(307);
    expect(confirmed.location).toBe('/auth/settings/email');
    // The browser repeats the POST (307) with the fresh session.
    const sent = await b.go('POST', confirmed.location!, { _csrf: csrf, email: next });
    expect(sent.status).toBe(200);
    const link = (await mailedMessage(dataDir, { to: next, event: 'account.email_change_confirmation', linkPath: '/auth/confirm-email' }))
      .link;
    const cancel = (
      await mailedMessage(dataDir, { to: email, event: 'account.email_change_requested', linkPath: '/auth/cancel-email-change' })
    ).link;
    expect(cancel.pathname).toBe('/auth/cancel-email-change');
    const page = await b.go('GET', link.pathname + link.search);
    expect(page.text).toContain('action="/auth/confirm-email"');
    const done = await b.go('POST', '/auth/confirm-email', { token: link.searchParams.get('token')! });
    expect(done.status).toBe(200);
    expect(done.text).toContain(next);
  });

  it('serves the assets under the prefix, and no page at the root', async () => {
    await assetsUnderPrefix(base);
    const b = new FormBrowser(base);
    // The brand link (`/` in the pages) is the prefix's home: settings, or sign-in first.
    expect((await b.go('GET', '/auth/')).location).toBe('/auth/settings');
    expect((await b.go('GET', '/sign-in')).status).toBe(404);
    expect((await b.go('GET', '/assets/gatehouse.css')).status).toBe(404);
    // The OpenID Provider runs only at the root: under a prefix it is not mounted at all,
    // rather than publishing an issuer and endpoints with wrong URLs.
    expect((await b.go('GET', '/auth/.well-known/openid-configuration')).status).toBe(404);
    expect((await b.go('GET', '/auth/oidc/jwks')).status).toBe(404);
  });

  it('the checker itself fails on a link that leaves the prefix', () => {
    expect(escapingUrls({ text: '<a href="/settings">x</a><form action="/auth/sign-in"></form>', location: '/enrol' })).toEqual([
      '/settings',
      '/enrol',
    ]);
  });
});

describe('the pages under a prefix, in an Express host', () => {
  let gatehouse: Gatehouse;
  let auth: GatehouseExpress;
  let server: Server;
  let base: string;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pages-prefix-express-'));

  beforeAll(async () => {
    gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', mfaRequired: 'all', ...fast });
    auth = await gatehouseExpress(gatehouse, { prefix: PREFIX });
    const app = express();
    app.use(PREFIX, auth.handler);
    const routes = auth.router();
    routes.get('/notes', auth.requireSession({ session: 'full' }), (req, res) => {
      res.json({ owner: auth.userIdOf(req) });
    });
    app.use(routes);
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await auth?.close();
    await gatehouse?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('sign up, enrol, sign in with the factor and reset the password through the pages; the host route sees the session', async () => {
    const b = new PrefixedBrowser(base);
    const email = uniqueEmail('express-prefixed');
    expect((await b.go('GET', '/notes')).status).toBe(401);
    await pagesJourney(b, email);
    const notes = await b.go('GET', '/notes');
    expect(notes.status).toBe(200);
    await resetThroughMail(b, base, dataDir, email);
    await assetsUnderPrefix(base);
  });
});
