/**
 * The pages over plain HTTP (no browser): the gate's answers as redirects, the form token,
 * step-up in place, enrolment under GATEHOUSE_MFA_REQUIRED=all, password reset by page,
 * escaping, and the JSON API staying JSON-only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { linkToken, serverWithMailSink } from '../helpers/smtp.js';
import { FAST_ENV, startTestServer, type TestServer } from '../helpers/server.js';
import { PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';

describe('pages over HTTP', () => {
  const mailed = serverWithMailSink({ GATEHOUSE_STEP_UP_MAX_AGE: '1' });
  const { smtp } = mailed;

  async function signedInWithTotp() {
    const account = await signupWithTotp(mailed.server.url);
    const b = new FormBrowser(mailed.server.url);
    expect((await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD })).location).toBe('/sign-in/verify');
    const challenge = await b.go('GET', '/sign-in/verify');
    const verify = await b.go('POST', '/sign-in/verify', {
      _csrf: csrfIn(challenge.text),
      method: 'totp',
      code: totpCodeAt(account.secret, Date.now()),
    });
    expect(verify.location).toBe('/settings');
    return { account, b };
  }

  it('sends the anonymous to sign-in and the pending to the challenge', async () => {
    const b = new FormBrowser(mailed.server.url);
    expect((await b.go('GET', '/settings')).location).toBe('/sign-in');
    const account = await signupWithTotp(mailed.server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    expect((await b.go('GET', '/settings')).location).toBe('/sign-in/verify');
    const challenge = await b.go('GET', '/sign-in/verify');
    expect(challenge.status).toBe(200);
    expect(challenge.text).toContain('autocomplete="one-time-code"');
    expect((await b.go('POST', '/settings/tokens', { _csrf: csrfIn(challenge.text), name: 'x' })).location).toBe('/sign-in/verify');
  });

  it('refuses a signed-in form without the per-session form token', async () => {
    const { b } = await signedInWithTotp();
    const settings = await b.go('GET', '/settings');
    const token = csrfIn(settings.text);
    expect(token).not.toBe('');
    expect((await b.go('POST', '/settings/sessions/revoke', { sessionId: 'x' })).status).toBe(403);
    expect((await b.go('POST', '/settings/sessions/revoke', { _csrf: token.slice(1) + 'A', sessionId: 'x' })).status).toBe(403);
    expect((await b.go('POST', '/settings/sessions/revoke', { _csrf: token, sessionId: 'x' })).status).toBe(404);
    // Cross-site, even with the right token: the gate's same-origin rule.
    expect(
      (await b.go('POST', '/settings/sessions/revoke', { _csrf: token, sessionId: 'x' }, { origin: 'https://evil.example' })).status,
    ).toBe(403);
  });

  it('asks for the factor in place, then repeats the action with the fresh session (307)', async () => {
    const { account, b } = await signedInWithTotp();
    await new Promise((r) => setTimeout(r, 1_200));
    const csrf = csrfIn((await b.go('GET', '/settings')).text);
    const prompt = await b.go('POST', '/settings/tokens', { _csrf: csrf, name: 'CI', scopes: ['account:read', 'transactions:read'] });
    expect(prompt.status).toBe(403);
    expect(prompt.text).toContain('Confirm it’s you');
    expect(prompt.text).toMatch(/name="stepup_next"\s+value="\/settings\/tokens"/);
    expect(prompt.text).toContain('name="scopes" value="transactions:read"');
    // A forged form (no token) does not even get the prompt.
    expect((await b.go('POST', '/settings/tokens', { name: 'CI' })).status).toBe(403);
    const wrong = await b.go('POST', '/settings/step-up', {
      _csrf: csrf,
      stepup_next: '/settings/tokens',
      stepup_method: 'totp',
      stepup_code: '000000',
      name: 'CI',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('role="alert"');
    const ok = await b.go('POST', '/settings/step-up', {
      _csrf: csrf,
      stepup_next: '/settings/tokens',
      stepup_method: 'totp',
      stepup_code: totpCodeAt(account.secret, Date.now() + 30_000),
      name: 'CI',
      scopes: ['account:read'],
    });
    expect(ok.status).toBe(307);
    expect(ok.location).toBe('/settings/tokens');
    const created = await b.go('POST', '/settings/tokens', { _csrf: csrf, name: 'CI', scopes: ['account:read'] });
    expect(created.status).toBe(201);
    expect(created.text).toContain('id="api-token"');
  });

  it('never redirects a step-up anywhere but Gatehouse’s own sensitive actions', async () => {
    const { account, b } = await signedInWithTotp();
    const csrf = csrfIn((await b.go('GET', '/settings')).text);
    const res = await b.go('POST', '/settings/step-up', {
      _csrf: csrf,
      stepup_next: 'https://evil.example/',
      stepup_method: 'recovery_code',
      stepup_code: account.recoveryCodes[0]!,
    });
    expect(res.status).toBe(303);
    expect(res.location).toBe('/settings');
  });

  it('escapes what it echoes', async () => {
    const b = new FormBrowser(mailed.server.url);
    const res = await b.go('POST', '/sign-in', { email: '<script>alert(1)</script>@x', password: 'nope' });
    // Not an address (contract v1.1): refused by its spelling, and echoed escaped.
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('<script>alert(1)');
    expect(res.text).toContain('&lt;script&gt;');
  });

  it('resets a password through the pages; the JSON API still refuses forms', async () => {
    const account = await signupWithTotp(mailed.server.url);
    const b = new FormBrowser(mailed.server.url);
    expect((await b.go('POST', '/forgot-password', { email: account.email })).text).toContain('Check your email');
    await smtp.waitFor(() => smtp.to(account.email, 'password_reset.requested').length > 0);
    const token = linkToken(smtp.to(account.email, 'password_reset.requested').at(-1)!);
    expect((await b.go('GET', `/reset-password?token=${encodeURIComponent(token)}`)).status).toBe(200);
    const done = await b.go('POST', '/reset-password', { token, password: 'copper-lantern-81-meadow' });
    expect(done.location).toBe('/sign-in?notice=password_changed');
    expect((await b.go('POST', '/reset-password', { token, password: 'copper-lantern-81-meadow' })).status).toBe(400);
    const json = await b.go('POST', '/api/auth/login', { email: account.email, password: 'copper-lantern-81-meadow' });
    expect(json.status).toBe(400);
  });
});

describe('pages with GATEHOUSE_MFA_REQUIRED=all', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ...FAST_ENV, GATEHOUSE_MFA_REQUIRED: 'all' });
  });
  afterAll(() => server.close());

  it('an enrolling session is sent to enrol, enrols TOTP from the page, then reaches settings', async () => {
    const b = new FormBrowser(server.url);
    const signUp = await b.go('POST', '/sign-up', { email: uniqueEmail(), password: PASSWORD });
    expect(signUp.location).toBe('/enrol');
    expect((await b.go('GET', '/settings')).location).toBe('/enrol');
    const enrol = await b.go('GET', '/enrol');
    const setup = await b.go('POST', '/settings/totp/setup', { _csrf: csrfIn(enrol.text) });
    expect(setup.status).toBe(200);
    const secret = /id="totp-secret">([^<]+)</.exec(setup.text)![1]!.replace(/\s/g, '');
    const confirm = await b.go('POST', '/settings/totp/confirm', { _csrf: csrfIn(setup.text), code: totpCodeAt(secret, Date.now()) });
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('id="recovery-codes"');
    expect((await b.go('GET', '/settings')).status).toBe(200);
  });
});

describe('pages carry the deployment’s product name', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ...FAST_ENV, GATEHOUSE_PRODUCT_NAME: 'Acme <Bank>' });
  });
  afterAll(() => server?.close());

  it('in the title and the header, escaped', async () => {
    const page = await new FormBrowser(server.url).go('GET', '/sign-in');
    expect(page.status).toBe(200);
    expect(page.text).toContain('· Acme &lt;Bank&gt;</title>');
    expect(page.text).toContain('<a class="brand" href="/">Acme &lt;Bank&gt;</a>');
    expect(page.text).not.toContain('<Bank>');
  });
});
