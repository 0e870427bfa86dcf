// Values read out of HTML pages (CSRF tokens, a key shown once), `fetchFirst` request steps,
// and negated matchers: the pieces that let a profile describe a server-rendered app.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditContext } from '../../src/audit/context.js';
import { describeExtractor, extractValue } from '../../src/audit/extract.js';
import { HttpClient } from '../../src/audit/http-client.js';
import { SecretRegistry } from '../../src/audit/mask.js';
import { describeMatcher, matches } from '../../src/audit/matchers.js';
import { parseProfile, ProfileError } from '../../src/audit/profile.js';
import { Session } from '../../src/audit/session.js';

const page = (text: string, setCookies: string[] = []) => ({ text, json: undefined as unknown, setCookies });
const reply = (over: { status?: number; location?: string; text?: string; json?: unknown }) => ({
  status: 200,
  location: undefined as string | undefined,
  text: '',
  json: undefined as unknown,
  ...over,
});

const minimal = () => ({
  login: { path: '/login', mfaRequired: { status: 202 } },
  secondFactor: { totp: { path: '/mfa' } },
  whoami: { path: '/me' },
  accounts: [{ username: 'a@example.test', password: 'pw-123456', totpSecret: 'JBSWY3DPEHPK3PXP' }],
});

function problems(edit: (raw: any) => void): string[] {
  const raw: any = minimal();
  edit(raw);
  try {
    parseProfile(raw, 'test');
  } catch (err) {
    if (err instanceof ProfileError) return err.problems;
    throw err;
  }
  return [];
}

describe('extractors', () => {
  const html = `<!doctype html><meta content="m&amp;1" name="csrf-token">
    <form><input type=hidden value='v&quot;2' name="csrf"><input name=other value=plain>
    <INPUT NAME="upper" VALUE="u3"><input name="empty" value=""><input name="csrf" value="second"></form>
    <code class="api-key">ink_abc</code>`;

  it('reads a hidden input by name, whatever the attribute order, quoting, case or entities', () => {
    expect(extractValue({ input: 'csrf' }, page(html))).toBe('v"2'); // the first one wins
    expect(extractValue({ input: 'other' }, page(html))).toBe('plain');
    expect(extractValue({ input: 'upper' }, page(html))).toBe('u3');
    expect(extractValue({ input: 'empty' }, page(html))).toBeUndefined();
    expect(extractValue({ input: 'absent' }, page(html))).toBeUndefined();
    expect(extractValue({ input: 'csrf' }, page('<p>name="csrf" value="x"</p>'))).toBeUndefined();
  });

  it('reads a meta tag, a regex capture group and a JSON field', () => {
    expect(extractValue({ meta: 'csrf-token' }, page(html))).toBe('m&1');
    expect(extractValue({ regex: '<code class="api-key">([^<]+)</code>' }, page(html))).toBe('ink_abc');
    expect(extractValue({ regex: 'nothing-(here)' }, page(html))).toBeUndefined();
    expect(extractValue({ json: 'key.id' }, { text: '', json: { key: { id: 42 } } })).toBe('42');
    expect(extractValue({ json: 'key.none' }, { text: '', json: { key: {} } })).toBeUndefined();
  });

  it('reads a cookie from the reply, else from the session jar, URL-decoded', () => {
    const jar = new Session();
    jar.setCookie('XSRF-TOKEN', 'from%2Fjar');
    expect(extractValue({ cookie: 'XSRF-TOKEN' }, page('', ['XSRF-TOKEN=fresh%3D; Path=/']), jar)).toBe('fresh=');
    expect(extractValue({ cookie: 'XSRF-TOKEN' }, page(''), jar)).toBe('from/jar');
    expect(extractValue({ cookie: 'XSRF-TOKEN' }, page(''))).toBeUndefined();
  });

  it('describes itself for notes and messages', () => {
    expect(describeExtractor({ input: 'csrf' })).toBe('<input name="csrf">');
    expect(describeExtractor({ cookie: 'XSRF-TOKEN' })).toBe('cookie XSRF-TOKEN');
  });
});

describe('negated matchers', () => {
  it('"redirect, but not to /login"', () => {
    const m = { status: 302, redirect: '/', not: { redirect: '/login' } };
    expect(matches(reply({ status: 302, location: '/notes' }), m)).toBe(true);
    expect(matches(reply({ status: 302, location: '/login?next=/notes' }), m)).toBe(false);
    expect(matches(reply({ status: 200, location: '/notes' }), m)).toBe(false);
  });

  it('"body does not contain X" on its own, and a list: none of them may match', () => {
    expect(matches(reply({ text: 'Welcome' }), { not: { bodyContains: 'Invalid code' } })).toBe(true);
    expect(matches(reply({ text: 'Invalid code' }), { not: { bodyContains: 'Invalid code' } })).toBe(false);
    const m = { status: 302, not: [{ redirect: '/login' }, { redirect: 'reauth' }] };
    expect(matches(reply({ status: 302, location: '/settings?saved=1' }), m)).toBe(true);
    expect(matches(reply({ status: 302, location: '/settings/reauth' }), m)).toBe(false);
    expect(matches(reply({ status: 302, location: '/login' }), m)).toBe(false);
  });

  it('a negated matcher excludes only when all of its conditions hold', () => {
    const m = { not: { status: 200, bodyContains: 'error' } };
    expect(matches(reply({ status: 200, text: 'fine' }), m)).toBe(true);
    expect(matches(reply({ status: 500, text: 'error' }), m)).toBe(true);
    expect(matches(reply({ status: 200, text: 'error' }), m)).toBe(false);
    expect(matches(reply({ status: 200, json: { ok: true } }), { body: { path: 'ok' }, not: { body: { path: 'error' } } })).toBe(true);
  });

  it('is described in plans and messages', () => {
    expect(describeMatcher({ status: 302, not: [{ redirect: '/login' }, { bodyContains: 'x' }] })).toBe(
      'status 302 and not (redirect to …/login…) and not (body contains "x")',
    );
  });
});

describe('profile validation of the new fields', () => {
  it('accepts fetchFirst on every kind of request step, params and tokens read from HTML, and not', () => {
    const fetchFirst = {
      path: '/form',
      values: [
        { input: 'csrf', field: 'csrf' },
        { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' },
      ],
    };
    expect(
      problems((raw) => {
        raw.login.fetchFirst = fetchFirst;
        raw.login.mfaRequired = { status: 302, not: { redirect: '/login' } };
        raw.secondFactor.totp.fetchFirst = fetchFirst;
        raw.sensitiveActions = [
          {
            name: 'key',
            kind: 'create_api_token',
            path: '/keys',
            fetchFirst,
            token: { regex: 'key: (\\w+)' },
            params: { id: { path: '/settings', input: 'id' }, n: { path: '/x', field: 'a.b' } },
          },
        ];
        raw.passwordReset = {
          request: { path: '/reset', fetchFirst },
          token: { from: 'response', meta: 'reset-token' },
          reset: { path: '/reset/new', fetchFirst },
        };
        raw.tokenLogin = { path: '/t', tokenField: 'token', fetchFirst };
      }),
    ).toEqual([]);
    const p = parseProfile({ ...minimal(), login: { ...minimal().login, fetchFirst } });
    expect(p.login.fetchFirst?.method).toBe('GET');
  });

  it('says where and what is wrong', () => {
    expect(
      problems((raw) => {
        raw.login.fetchFirst = {
          path: 'https://evil.example/',
          values: [
            { field: 'csrf' },
            { input: 'a', meta: 'b', field: 'x' },
            { input: 'a' },
            { regex: '([a-z]+)-(\\d+)', header: 'X' },
            { regex: '(', field: 'y' },
          ],
        };
      }),
    ).toEqual([
      'login.fetchFirst.path: must be a path on the target starting with "/" (not a full URL)',
      'login.fetchFirst.values.0: give exactly one of json, input, meta, cookie, replyHeader, regex',
      'login.fetchFirst.values.1: give exactly one of json, input, meta, cookie, replyHeader, regex (got input, meta)',
      'login.fetchFirst.values.2: give exactly one of field, header (where the value is sent)',
      'login.fetchFirst.values.3.regex: needs exactly one capture group (the value), found 2; use (?:…) for other groups',
      expect.stringMatching(/^login\.fetchFirst\.values\.4\.regex: not a valid regular expression/),
    ]);
    expect(problems((raw) => (raw.login.fetchFirst = { method: 'POST', path: '/x', values: [{ input: 'a', field: 'a' }] }))).toEqual([
      expect.stringMatching(/^login\.fetchFirst\.method: /),
    ]);
  });

  it('rejects ambiguous token and param sources, and empty or nested negation', () => {
    expect(
      problems((raw) => {
        raw.sensitiveActions = [
          {
            name: 'k',
            kind: 'create_api_token',
            path: '/k',
            tokenField: 'key',
            token: { input: 'key' },
            params: { id: { path: '/s', field: 'id', input: 'id' }, none: { path: '/s' } },
          },
        ];
      }),
    ).toEqual([
      'sensitiveActions.0.params.id: give exactly one of field, json, input, meta, cookie, replyHeader, regex (got field, input)',
      'sensitiveActions.0.params.none: give exactly one of field, json, input, meta, cookie, replyHeader, regex',
      'sensitiveActions.0.token: give tokenField or token, not both',
    ]);
    expect(problems((raw) => (raw.whoami.success = { not: {} }))).toEqual([
      'whoami.success.not: give at least one of status, body, bodyContains, redirect',
    ]);
    // One level only: "not" inside "not" is an unknown key.
    expect(problems((raw) => (raw.whoami.success = { status: 200, not: { not: { status: 200 } } }))).toContain(
      'whoami.success.not: Unrecognized key: "not"',
    );
  });
});

describe('fetchFirst over HTTP', () => {
  let server: Server;
  let origin: string;
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.method === 'GET' && req.url === '/login') {
          res.writeHead(200, { 'set-cookie': ['pre=anon-1; Path=/', 'XSRF-TOKEN=x%2By; Path=/'], 'content-type': 'text/html' });
          return res.end('<meta name="csrf-token" content="meta-7"><form><input type="hidden" name="csrf" value="in-5"></form>');
        }
        if (req.method === 'GET') return res.writeHead(302, { location: '/login' }).end();
        res.writeHead(202, { 'content-type': 'application/json', 'set-cookie': 'sid=pending-1' }).end('{"mfa":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const context = (login: Record<string, unknown>) => {
    const profile = parseProfile({ ...minimal(), login: { ...minimal().login, ...login } });
    const http = new HttpClient({ target: origin, maxRequests: 100, requestsPerSecond: 1000, burst: 5, timeoutMs: 2000 });
    return new AuditContext(profile, http, new SecretRegistry());
  };

  it('GETs the page in the same cookie jar and sends the values as JSON fields and headers', async () => {
    seen.length = 0;
    const ctx = context({
      usernameField: 'user.email',
      fetchFirst: {
        path: '/login',
        values: [
          { input: 'csrf', field: 'meta.csrf' },
          { meta: 'csrf-token', header: 'X-CSRF-Token' },
          { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' },
        ],
      },
    });
    const login = await ctx.passwordLogin();
    expect(login.challenged).toBe(true);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /login', 'POST /login']);
    const post = seen[1]!;
    expect(post.headers.cookie).toBe('pre=anon-1; XSRF-TOKEN=x%2By');
    expect(post.headers['x-csrf-token']).toBe('meta-7');
    expect(post.headers['x-xsrf-token']).toBe('x+y');
    expect(JSON.parse(post.body)).toEqual({ meta: { csrf: 'in-5' }, user: { email: 'a@example.test' }, password: 'pw-123456' });
    expect(login.session.cookie('sid')).toBe('pending-1');
  });

  it('sends form fields too, and says in the evidence when the page did not have a value', async () => {
    seen.length = 0;
    const ctx = context({ encoding: 'form', fetchFirst: { path: '/elsewhere', values: [{ input: 'csrf', field: 'csrf' }] } });
    const evidence: { note: string }[] = [];
    ctx.http.sink = evidence as never;
    await ctx.passwordLogin();
    expect(seen[1]?.body).toBe('email=a%40example.test&password=pw-123456');
    expect(evidence.map((e) => e.note)).toEqual([
      'fetch /elsewhere for <input name="csrf">',
      'log in with the password (sent without <input name="csrf"> (GET /elsewhere answered 302, Location /login))',
    ]);

    seen.length = 0;
    const form = context({ encoding: 'form', fetchFirst: { path: '/login', values: [{ input: 'csrf', field: 'csrf' }] } });
    await form.passwordLogin();
    expect(seen[1]?.body).toBe('email=a%40example.test&password=pw-123456&csrf=in-5');
  });
});

describe('parsing with parse5, tough-cookie, and complete mail only', () => {
  it('reads HTML as a browser does: any entity, and nothing inside a comment', async () => {
    const { extractValue } = await import('../../src/audit/extract.js');
    const html = '<!-- <input name="csrf" value="stale"> --><form><input name=csrf value="a&eacute;&#x2F;b&nbsp;c&hellip;"></form>';
    expect(extractValue({ input: 'csrf' }, { text: html, json: undefined })).toBe('aé/b\u00a0c…');
    expect(extractValue({ meta: 'csrf' }, { text: '<template><meta name="csrf" content="t"></template>', json: undefined })).toBe('t');
  });

  it('keeps cookies by path and prefix rules, and a reply header extractor reads headers', async () => {
    const { extractValue } = await import('../../src/audit/extract.js');
    const s = new Session(undefined, 'http://127.0.0.1:9');
    s.absorbSetCookies(['__Host-sid=h1; Path=/; Secure; HttpOnly', 'api=a1; Path=/api', 'sid=x; Max-Age=60'], '/login');
    expect(s.headers('/').cookie).toBe('__Host-sid=h1; sid=x');
    expect(s.headers('/api/me').cookie).toContain('api=a1');
    expect(s.cookieNames().sort()).toEqual(['__Host-sid', 'api', 'sid']);
    s.absorbSetCookies(['sid=; Path=/']);
    expect(s.cookie('sid')).toBeUndefined();
    expect(extractValue({ replyHeader: 'X-MFA-Token' }, { text: '', json: undefined, headers: { 'x-mfa-token': 'mt-1' } })).toBe('mt-1');
  });

  it('the mail reader ignores a file until it is complete (.partial renamed into place)', async () => {
    const { mkdtemp, rm, writeFile, rename } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { tokenFromMail } = await import('../../src/audit/checks/password-reset.js');
    const dir = await mkdtemp(join(tmpdir(), 'audit-partial-'));
    try {
      const since = Date.now();
      await writeFile(join(dir, 'm1.eml.partial'), 'https://x/reset?token=half');
      expect(await tokenFromMail(dir, 'token=([a-z]+)', since, 1)).toBeUndefined();
      await writeFile(join(dir, 'm1.eml.partial'), 'https://x/reset?token=whole\r\n');
      await rename(join(dir, 'm1.eml.partial'), join(dir, 'm1.eml'));
      expect(await tokenFromMail(dir, 'token=([a-z]+)', since, 1)).toBe('whole');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
