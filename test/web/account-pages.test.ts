/**
 * Changing the e-mail address and the password from the settings page, over plain HTTP
 * with a cookie jar (no browser). Both are ★: a stale session gets the step-up prompt in
 * place and the action completes after it (the password after typing it again: the prompt
 * never carries passwords). A pending session never reaches the forms; cross-site posts
 * and posts without the session's form token are refused; each refusal is announced at
 * its field; the confirmation mail reaches the new address (no SMTP: <dataDir>/mail/*.eml);
 * a password change keeps this session and signs out the others. Passwords never appear
 * in a page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, signupWithTotp, sleep, uniqueEmail, type MfaAccount } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import { anyMailTo, mailedMessage } from '../helpers/mail-files.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';

const NEW_PASSWORD = 'copper-lantern-81-meadow';
const STEP_UP_MAX_AGE = 2;

type Page = Awaited<ReturnType<FormBrowser['go']>>;

const unescape = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#96;/g, '`')
    .replace(/&amp;/g, '&');

/** The hidden fields of the step-up prompt's form for `method` (what the browser would post). */
function promptForm(prompt: string, method: string): Record<string, string[]> {
  const form = [...prompt.matchAll(/<form class="card" method="post" action="\/settings\/step-up">([\s\S]*?)<\/form>/g)]
    .map((m) => m[1]!)
    .find((f) => f.includes(`name="stepup_method" value="${method}"`));
  if (!form) throw new Error(`no ${method} form in the prompt:\n${prompt}`);
  const fields: Record<string, string[]> = {};
  for (const m of form.matchAll(/<input\s+type="hidden"\s+name="([^"]+)"\s+value="([^"]*)"\s*\/?>/g))
    (fields[unescape(m[1]!)] ??= []).push(unescape(m[2]!));
  return fields;
}

/**
 * Answers the prompt with `factor` (e.g. `{ stepup_code }`): expects the 307 back to `action`
 * and repeats the same body there, as a browser does.
 */
async function confirmAndRepeat(
  b: FormBrowser,
  prompt: Page,
  method: string,
  factor: Record<string, string>,
  action: string,
): Promise<Page> {
  const body = { ...promptForm(prompt.text, method), ...factor };
  const confirmed = await b.go('POST', '/settings/step-up', body);
  expect(confirmed.status).toBe(307);
  expect(confirmed.location).toBe(action);
  return b.go('POST', action, body);
}

/** The error announced at a field: alert at the top, the field invalid, described and focused. */
function expectFieldError(res: Page, fieldId: string, words: string | RegExp) {
  expect(res.text).toContain('role="alert"');
  expect(res.text).toMatch(words);
  const input = new RegExp(`<input\\s+id="${fieldId}"[^>]*>`).exec(res.text)?.[0] ?? '';
  expect(input).toContain('aria-invalid="true"');
  expect(input).toContain('autofocus');
  expect(input).toMatch(new RegExp(`aria-describedby="(${fieldId}-hint )?${fieldId}-error"`));
  expect(res.text).toContain(`<p class="field-error" id="${fieldId}-error">`);
  // Only the field in error is marked.
  expect(res.text.match(/aria-invalid="true"/g)).toHaveLength(1);
}

/** Signs in through the pages with the TOTP code (password, then the second step). */
async function signInWithTotp(server: TestServer, account: MfaAccount): Promise<FormBrowser> {
  const b = new FormBrowser(server.url);
  expect((await b.go('POST', '/sign-in', { email: account.email, password: account.password })).location).toBe('/sign-in/verify');
  const challenge = await b.go('GET', '/sign-in/verify');
  const verify = await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'totp', code: totpAt(account.secret) });
  expect(verify.location).toBe('/settings');
  return b;
}

/** A new account made through the sign-up page: no second factor, a full session (fresh by its password). */
async function signUpByPage(server: TestServer, email = uniqueEmail('acct')): Promise<{ email: string; b: FormBrowser }> {
  const b = new FormBrowser(server.url);
  expect((await b.go('POST', '/sign-up', { email, password: PASSWORD })).location).toBe('/settings');
  return { email, b };
}

async function signInWithPassword(server: TestServer, email: string, password: string): Promise<FormBrowser> {
  const b = new FormBrowser(server.url);
  const res = await b.go('POST', '/sign-in', { email, password });
  expect(res.location).toBe('/settings');
  return b;
}

const settings = async (b: FormBrowser) => {
  const res = await b.go('GET', '/settings');
  expect(res.status).toBe(200);
  return { text: res.text, csrf: csrfIn(res.text) };
};

describe('account pages: fresh sessions', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer();
  });
  afterAll(() => server?.close());

  it('shows both forms on /settings with the form token, and no password values', async () => {
    const { email, b } = await signUpByPage(server);
    const { text, csrf } = await settings(b);
    expect(csrf).not.toBe('');
    expect(text).toContain(`You sign in with <strong>${email}</strong>`);
    for (const action of ['/settings/email', '/settings/password']) {
      expect(text).toMatch(
        new RegExp(`<form method="post" action="${action}" novalidate>\\s*<input type="hidden" name="_csrf" value="${csrf}" />`),
      );
    }
    expect(text).toMatch(/<input\s+id="f-email"\s+name="email"\s+type="email"\s+value=""\s+autocomplete="email"/);
    expect(text).toMatch(/<input\s+id="f-currentPassword"\s+name="currentPassword"\s+type="password"\s+autocomplete="current-password"/);
    expect(text).toMatch(/<input\s+id="f-newPassword"\s+name="newPassword"\s+type="password"\s+autocomplete="new-password"/);
    expect(text).toMatch(/<input\s+id="f-confirmPassword"\s+name="confirmPassword"\s+type="password"\s+autocomplete="new-password"/);
    expect(text).not.toMatch(/type="password" value=/);
  });

  it('changes the e-mail address: the link goes to the new address, which changes once it is opened', async () => {
    const { email, b } = await signUpByPage(server);
    const { csrf } = await settings(b);
    const next = uniqueEmail('new');
    const sent = await b.go('POST', '/settings/email', { _csrf: csrf, email: `  ${next}  ` });
    expect(sent.status).toBe(200);
    expect(sent.text).toContain(
      `<div class="notice" role="status">We sent a link to ${next}; your address changes when you open it.</div>`,
    );
    expect(sent.text).toContain(`You sign in with <strong>${email}</strong>`);

    const { raw, link } = await mailedMessage(server.dataDir, {
      to: next,
      event: 'account.email_change_confirmation',
      linkPath: '/confirm-email',
    });
    expect(raw).toContain(email);
    expect(link.origin).toBe(server.server.facade.publicUrl());
    const done = await b.go('POST', '/confirm-email', { token: link.searchParams.get('token')! });
    expect(done.status).toBe(200);
    expect((await settings(b)).text).toContain(`You sign in with <strong>${next}</strong>`);
  });

  it('announces the e-mail refusals at the field: invalid, unchanged, taken', async () => {
    const other = await signUpByPage(server);
    const { email, b } = await signUpByPage(server);
    const { csrf } = await settings(b);

    const invalid = await b.go('POST', '/settings/email', { _csrf: csrf, email: 'not an <address>' });
    expect(invalid.status).toBe(400);
    expectFieldError(invalid, 'f-email', 'Enter a valid email address.');
    expect(invalid.text).toContain('value="not an &lt;address&gt;"');
    expect(invalid.text).not.toContain('<address>');

    const empty = await b.go('POST', '/settings/email', { _csrf: csrf, email: '' });
    expect(empty.status).toBe(400);
    expectFieldError(empty, 'f-email', 'Enter a valid email address.');

    const unchanged = await b.go('POST', '/settings/email', { _csrf: csrf, email: email.toUpperCase() });
    expect(unchanged.status).toBe(400);
    expectFieldError(unchanged, 'f-email', 'That is already the address of your account.');

    const taken = await b.go('POST', '/settings/email', { _csrf: csrf, email: other.email });
    expect(taken.status).toBe(409);
    expectFieldError(taken, 'f-email', 'Another account already uses this address.');

    expect((await settings(b)).text).toContain(`You sign in with <strong>${email}</strong>`);
  });

  it('announces the password refusals at the field, never echoing a password: wrong current, weak, mismatch', async () => {
    const { email, b } = await signUpByPage(server);
    const { csrf } = await settings(b);
    const typed: string[] = [];
    const post = (currentPassword: string, newPassword: string, confirmPassword: string) => {
      typed.push(currentPassword, newPassword, confirmPassword);
      return b.go('POST', '/settings/password', { _csrf: csrf, currentPassword, newPassword, confirmPassword });
    };

    const wrong = await post('wrong-current-password-1', NEW_PASSWORD, NEW_PASSWORD);
    expect(wrong.status).toBe(401);
    expectFieldError(wrong, 'f-currentPassword', 'That is not your current password.');

    const weak = await post(PASSWORD, 'Password123!', 'Password123!');
    expect(weak.status).toBe(400);
    expectFieldError(weak, 'f-newPassword', 'This password is too common; choose another.');

    const short = await post(PASSWORD, 'short', 'short');
    expect(short.status).toBe(400);
    expectFieldError(short, 'f-newPassword', 'Use at least 8 characters.');

    const mismatch = await post(PASSWORD, NEW_PASSWORD, `${NEW_PASSWORD}x`);
    expect(mismatch.status).toBe(400);
    expectFieldError(mismatch, 'f-confirmPassword', 'The two new passwords are not the same.');

    const noCurrent = await post('', NEW_PASSWORD, NEW_PASSWORD);
    expect(noCurrent.status).toBe(400);
    expectFieldError(noCurrent, 'f-currentPassword', 'Enter your current password.');

    for (const res of [wrong, weak, short, mismatch, noCurrent]) {
      for (const secret of typed.filter((t) => t.length > 0)) expect(res.text).not.toContain(secret);
      expect(res.text).not.toMatch(/type="password" value=/);
    }
    // Nothing changed: the old password still signs in.
    await signInWithPassword(server, email, PASSWORD);
  });

  it('changes the password: this session stays, the other sessions are signed out', async () => {
    const { email, b } = await signUpByPage(server);
    const elsewhere = await signInWithPassword(server, email, PASSWORD);
    expect((await elsewhere.go('GET', '/settings')).status).toBe(200);

    const { csrf } = await settings(b);
    const changed = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(changed.status).toBe(303);
    expect(changed.location).toBe('/settings?notice=password_updated');
    expect(changed.text).not.toContain(NEW_PASSWORD);

    const after = await b.go('GET', '/settings?notice=password_updated');
    expect(after.status).toBe(200);
    expect(after.text).toContain('Your password was changed. Your other sessions were signed out.');
    expect((await elsewhere.go('GET', '/settings')).location).toBe('/sign-in');

    expect((await new FormBrowser(server.url).go('POST', '/sign-in', { email, password: PASSWORD })).status).toBe(401);
    await signInWithPassword(server, email, NEW_PASSWORD);
  });

  it('a pending session cannot reach the forms', async () => {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    expect((await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD })).location).toBe('/sign-in/verify');
    const challenge = await b.go('GET', '/sign-in/verify');
    const csrf = csrfIn(challenge.text);
    expect(csrf).not.toBe('');
    expect((await b.go('GET', '/settings')).location).toBe('/sign-in/verify');
    const next = uniqueEmail('pending');
    expect((await b.go('POST', '/settings/email', { _csrf: csrf, email: next })).location).toBe('/sign-in/verify');
    const pw = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(pw.location).toBe('/sign-in/verify');
    expect(pw.text).not.toContain(NEW_PASSWORD);

    // Nothing happened: no mail to the new address, the old password still works.
    await sleep(300);
    expect(anyMailTo(server.dataDir, next)).toBe(false);
    const full = await signInWithTotp(server, account);
    expect((await settings(full)).text).toContain(`You sign in with <strong>${account.email}</strong>`);
  });

  it('refuses cross-site posts and posts without the session’s form token', async () => {
    const { email, b } = await signUpByPage(server);
    const { csrf } = await settings(b);
    const next = uniqueEmail('csrf');
    const changes = {
      '/settings/email': { email: next },
      '/settings/password': { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
    };
    for (const [action, fields] of Object.entries(changes)) {
      // Cross-site, even with the right token: the gate's same-origin rule.
      expect((await b.go('POST', action, { _csrf: csrf, ...fields }, { origin: 'https://evil.example' })).status).toBe(403);
      expect((await b.go('POST', action, { _csrf: csrf, ...fields }, { origin: null, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      // Same site, but no or the wrong form token.
      expect((await b.go('POST', action, fields)).status).toBe(403);
      const forged = await b.go('POST', action, { _csrf: `${csrf.slice(1)}A`, ...fields });
      expect(forged.status).toBe(403);
      expect(forged.text).toContain('This form came from another site or an old page.');
      // Another session's token does not do either.
      const other = await signUpByPage(server);
      expect((await b.go('POST', action, { _csrf: (await settings(other.b)).csrf, ...fields })).status).toBe(403);
    }
    await sleep(300);
    expect(anyMailTo(server.dataDir, next)).toBe(false);
    expect((await settings(b)).text).toContain(`You sign in with <strong>${email}</strong>`);
    await signInWithPassword(server, email, PASSWORD);
  });
});

describe('account pages: stale sessions step up in place', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer({ GATEHOUSE_STEP_UP_MAX_AGE: String(STEP_UP_MAX_AGE) });
  });
  afterAll(() => server?.close());

  const goStale = () => sleep(STEP_UP_MAX_AGE * 1000 + 200);

  it('e-mail: the prompt carries the address, and the change completes after the second factor', async () => {
    const account = await signupWithTotp(server.url);
    const b = await signInWithTotp(server, account);
    await goStale();
    const { csrf } = await settings(b);
    const next = uniqueEmail('stale');

    // A forged form does not even get the prompt.
    expect((await b.go('POST', '/settings/email', { email: next })).status).toBe(403);
    expect((await b.go('POST', '/settings/email', { _csrf: 'nope', email: next })).text).not.toContain('Confirm it’s you');

    const prompt = await b.go('POST', '/settings/email', { _csrf: csrf, email: next });
    expect(prompt.status).toBe(403);
    expect(prompt.text).toContain('Confirm it’s you');
    expect(prompt.text).toContain('To change your email address, confirm with your second factor.');
    expect(prompt.text).toMatch(/name="stepup_next"\s+value="\/settings\/email"/);
    expect(prompt.text).toContain(`<input type="hidden" name="email" value="${next}" />`);
    expect(anyMailTo(server.dataDir, next)).toBe(false);

    const done = await confirmAndRepeat(b, prompt, 'totp', { stepup_code: totpAt(account.secret, 1) }, '/settings/email');
    expect(done.status).toBe(200);
    expect(done.text).toContain(`We sent a link to ${next}; your address changes when you open it.`);
    await mailedMessage(server.dataDir, { to: next, event: 'account.email_change_confirmation', linkPath: '/confirm-email' });
  });

  it('password (second factor): the prompt drops the passwords, then asks for them again and changes it', async () => {
    const account = await signupWithTotp(server.url);
    const b = await signInWithTotp(server, account);
    await goStale();
    const { csrf } = await settings(b);

    const prompt = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(prompt.status).toBe(403);
    expect(prompt.text).toContain('To change your password, confirm with your second factor.');
    expect(prompt.text).toContain('The passwords you typed are not kept while you confirm');
    expect(prompt.text).not.toContain(PASSWORD);
    expect(prompt.text).not.toContain(NEW_PASSWORD);
    expect(prompt.text).not.toMatch(/name="(currentPassword|newPassword|confirmPassword)"/);

    // A wrong code keeps the note (and still no passwords).
    const wrong = await b.go('POST', '/settings/step-up', { ...promptForm(prompt.text, 'totp'), stepup_code: '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('The passwords you typed are not kept while you confirm');

    const again = await confirmAndRepeat(b, prompt, 'totp', { stepup_code: totpAt(account.secret, 1) }, '/settings/password');
    expect(again.status).toBe(200);
    expect(again.text).toContain('Enter your current and new password again');
    expect(/<input\s+id="f-currentPassword"[^>]*>/.exec(again.text)![0]).toContain('autofocus');
    expect(again.text).not.toContain('aria-invalid');

    const changed = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(changed.location).toBe('/settings?notice=password_updated');
    expect((await b.go('GET', '/settings')).status).toBe(200);
    expect((await new FormBrowser(server.url).go('POST', '/sign-in', { email: account.email, password: NEW_PASSWORD })).location).toBe(
      '/sign-in/verify',
    );
  });

  it('password (no second factor): confirmed with the password, which the repeated post never shows', async () => {
    const { email, b } = await signUpByPage(server);
    const elsewhere = await signInWithPassword(server, email, PASSWORD);
    await goStale();
    const { csrf } = await settings(b);

    const prompt = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(prompt.status).toBe(403);
    expect(prompt.text).toContain('To change your password, confirm with your password.');
    expect(prompt.text).not.toContain(PASSWORD);

    const again = await confirmAndRepeat(b, prompt, 'password', { stepup_password: PASSWORD }, '/settings/password');
    expect(again.status).toBe(200);
    expect(again.text).toContain('Enter your current and new password again');
    expect(again.text).not.toContain(PASSWORD);

    const changed = await b.go('POST', '/settings/password', {
      _csrf: csrf,
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(changed.location).toBe('/settings?notice=password_updated');
    expect((await b.go('GET', '/settings')).status).toBe(200);
    expect((await elsewhere.go('GET', '/settings')).location).toBe('/sign-in');
    await signInWithPassword(server, email, NEW_PASSWORD);
  });
});
