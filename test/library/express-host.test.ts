/**
 * Gatehouse embedded in an Express app through `gatehouse/express` (public API only): the
 * seed regression attacks against the host's own routes, each failing, each with its
 * legitimate flow working; the guarded router's "no undeclared route"; the Node handler's
 * mounting rules. A real listening Express server, real SQLite.
 */
import fs from 'node:fs';
import http, { type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express, { type Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { gatehouseExpress, type GatehouseExpress } from '../../src/adapters/express.js';
import { createNodeHandler } from '../../src/adapters/node.js';
import { loginFull, login, PASSWORD, signup, signupWithTotp, sleep } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';

const fast = {
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
};
const MAX_AGE = 2;
const stale = () => sleep(MAX_AGE * 1000 + 200);

interface Host {
  gatehouse: Gatehouse;
  auth: GatehouseExpress;
  base: string;
  close(): Promise<void>;
}

function listen(app: Express): Promise<{ server: Server; base: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` });
    });
  });
}

/** The host app: Gatehouse's handler first, the host's body parser, a guarded router, its own error handler. */
async function startHost(options: Parameters<typeof createGatehouse>[0] = {}): Promise<Host> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-express-'));
  const gatehouse = await createGatehouse({
    dataDir,
    logLevel: 'silent',
    scopes: ['notes:read', 'notes:write'],
    stepUpMaxAgeSeconds: MAX_AGE,
    ...fast,
    ...options,
  });
  const auth = await gatehouseExpress(gatehouse);
  const app = express();
  app.use(auth.handler);
  app.use(express.json());
  const routes = auth.router();
  routes.get('/notes', auth.requireSession({ session: 'full', scope: 'notes:read' }), (req, res) => {
    res.json({ owner: auth.userIdOf(req) });
  });
  routes.post('/notes', auth.requireSession({ session: 'full', scope: 'notes:write' }), (req, res) => {
    res.status(201).json({ owner: auth.userIdOf(req), text: req.body?.text });
  });
  // ★ when the note goes public: a per-request freshness decision (it may read the session).
  routes.post(
    '/notes/publish',
    auth.requireSession({ session: 'full', fresh: (req) => req.body?.public === true && auth.sessionOf(req).aal === 2 }),
    (req, res) => {
      res.json({ published: true, aal: auth.sessionOf(req).aal });
    },
  );
  routes.delete('/notes', auth.requireSession({ session: 'full', fresh: true }), (_req, res) => {
    res.json({ deleted: true });
  });
  routes.get('/boom', auth.requireSession.none, () => {
    throw new Error('host failure');
  });
  app.use(routes);
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(418).json({ hostError: error.message });
  });
  const { server, base } = await listen(app);
  return {
    gatehouse,
    auth,
    base,
    async close() {
      await new Promise((r) => server.close(r));
      await auth.close();
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('an Express host app: the seed regressions on its own routes', () => {
  let host: Host;
  let base: string;
  const same = () => ({ headers: { origin: base } });
  beforeAll(async () => {
    host = await startHost();
    base = host.base;
  });
  afterAll(async () => {
    await host?.close();
  });

  it('(1) a password-only (pending) session reaches no host route; the second factor opens them', async () => {
    const victim = await signupWithTotp(base);
    const { client, res } = await login(base, victim);
    expect(res.status).toBe(202);
    for (const [method, url, body] of [
      ['GET', '/notes'],
      ['POST', '/notes', { text: 'x' }],
      ['POST', '/notes/publish', { public: true }],
      ['DELETE', '/notes'],
    ] as const) {
      const r = await client.req(method, url, { json: body, ...same() });
      expect(r.status, `${method} ${url}`).toBe(401);
      expect(r.body.error, `${method} ${url}`).toBe('mfa_required');
      expect(r.headers['cache-control']).toBe('no-store');
    }
    // Legitimate: the TOTP code completes the login, and the host routes open.
    expect((await client.post('/api/auth/mfa/verify', { method: 'totp', code: victim.totp.next() })).status).toBe(200);
    expect((await client.get('/notes')).body).toEqual({ owner: victim.userId });
    expect((await client.post('/notes/publish', { public: true }, same())).body).toEqual({ published: true, aal: 2 });
  });

  it('(2) a remember-me cookie alone restores only a pending session on a host route; the factor completes it', async () => {
    const victim = await signupWithTotp(base);
    const browser = new Client(base);
    expect((await browser.post('/api/auth/login', { email: victim.email, password: PASSWORD, remember: true })).status).toBe(202);
    const verify = await browser.post('/api/auth/mfa/verify', { method: 'recovery_code', code: victim.recoveryCodes.pop() });
    expect(verify.status).toBe(200);
    expect(browser.cookies.has('gatehouse_remember')).toBe(true);
    // Attack: the remember-me cookie without the session (stolen, or the session expired).
    const attacker = browser.only('gatehouse_remember');
    const restored = await attacker.get('/notes');
    expect(restored.status).toBe(401);
    expect(restored.body.error).toBe('mfa_required');
    // The Express gate wrote the restored (pending) session and the rotated remember-me cookie.
    expect(restored.setCookies.some((c) => c.startsWith('gatehouse_session=') && /HttpOnly/i.test(c))).toBe(true);
    expect(restored.setCookies.some((c) => c.startsWith('gatehouse_remember='))).toBe(true);
    // Legitimate: that browser completes the second factor and is in.
    expect((await attacker.post('/api/auth/mfa/verify', { method: 'recovery_code', code: victim.recoveryCodes.pop() })).status).toBe(200);
    expect((await attacker.get('/notes')).body).toEqual({ owner: victim.userId });
  });

  it('(★) a stale session gets the contract step_up_required on a ★ host action; a step-up lets it through', async () => {
    const victim = await signupWithTotp(base);
    const client = await loginFull(base, victim);
    expect((await client.delete('/notes', same())).status).toBe(200); // fresh from the login's factor
    await stale();
    const refused = await client.delete('/notes', same());
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: 'step_up_required', methods: ['totp', 'recovery_code'], maxAge: MAX_AGE });
    // `fresh` as a function: the same stale session may publish privately, not publicly.
    expect((await client.post('/notes/publish', { public: false }, same())).status).toBe(200);
    expect((await client.post('/notes/publish', { public: true }, same())).body.error).toBe('step_up_required');
    // Legitimate: a TOTP step-up, then the ★ actions pass.
    expect((await client.post('/api/auth/step-up', { method: 'totp', code: victim.totp.next() }, same())).status).toBe(200);
    expect((await client.delete('/notes', same())).body).toEqual({ deleted: true });
    expect((await client.post('/notes/publish', { public: true }, same())).body).toEqual({ published: true, aal: 2 });
  });

  it('(csrf) cookie-borne state changes from another origin are refused, before freshness; same origin and bearer pass', async () => {
    const victim = await signupWithTotp(base);
    const client = await loginFull(base, victim);
    const evil = await client.post('/notes/publish', { public: false }, { headers: { origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toBe('csrf');
    const crossSite = await client.delete('/notes', { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.body.error).toBe('csrf');
    await stale();
    // CSRF comes before freshness (the contract's order).
    expect((await client.delete('/notes', { headers: { origin: 'https://evil.example' } })).body.error).toBe('csrf');
    // Legitimate: our own origin (localhost or 127.0.0.1 at the real port in development) and bearer sessions.
    const port = new URL(base).port;
    expect((await client.post('/notes/publish', { public: false }, { headers: { origin: `http://localhost:${port}` } })).status).toBe(200);
    const native = await signup(base, { transport: 'token' });
    expect((await native.client.post('/notes/publish', {}, { headers: { origin: 'https://evil.example' } })).status).toBe(200);
  });

  it('(7) API tokens: only their scopes, never a ★ action or a session-only route', async () => {
    const owner = await signup(base);
    const made = await owner.client.post('/api/tokens', { name: 'reader', scopes: ['notes:read'] }, same());
    expect(made.status).toBe(201);
    const api = new Client(base);
    api.bearer = made.body.token;
    expect((await api.post('/notes', { text: 'x' })).body.error).toBe('insufficient_scope');
    expect((await api.delete('/notes')).body.error).toBe('interactive_session_required');
    expect((await api.post('/notes/publish', { public: false })).body.error).toBe('interactive_session_required');
    // Legitimate: the scope it holds, and a writer token for the write route.
    expect((await api.get('/notes')).body).toEqual({ owner: owner.userId });
    const writer = await owner.client.post('/api/tokens', { name: 'writer', scopes: ['notes:write'] }, same());
    const w = new Client(base);
    w.bearer = writer.body.token;
    expect((await w.post('/notes', { text: 'hello' })).body).toEqual({ owner: owner.userId, text: 'hello' });
  });

  it("host routes keep the host's headers and errors; Gatehouse's routes keep theirs", async () => {
    const account = await signup(base);
    const own = await account.client.get('/notes');
    expect(own.headers['content-security-policy']).toBeUndefined();
    expect(own.headers['cache-control']).toBeUndefined();
    const session = await account.client.get('/api/session');
    expect(session.headers['content-security-policy']).toBeDefined();
    expect(session.headers['cache-control']).toBe('no-store');
    expect((await new Client(base).get('/boom')).body).toEqual({ hostError: 'host failure' });
    expect((await new Client(base).post('/api/auth/login', { email: 'x' })).body.error).toBe('invalid_request');
    expect((await new Client(base).get('/sign-in')).status).toBe(200);
    // The OpenID Provider runs through the handler too.
    const discovery = await new Client(base).get('/.well-known/openid-configuration');
    expect(discovery.status).toBe(200);
    expect(discovery.body.authorization_endpoint).toMatch(/\/oidc\/auth$/);
  });
});

describe('an Express host app with MFA required for everyone', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startHost({ mfaRequired: 'all' });
  });
  afterAll(async () => {
    await host?.close();
  });

  it('an enrolling session is refused on host routes until it confirms a factor', async () => {
    const account = await signup(host.base);
    expect(account.status).toBe('enrollment_required');
    const refused = await account.client.get('/notes');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('enrollment_required');
    const setup = await account.client.post('/api/mfa/totp/setup');
    expect(setup.status).toBe(200);
    expect((await account.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) })).status).toBe(200);
    expect((await account.client.get('/notes')).body).toEqual({ owner: account.userId });
  });
});

describe('the guarded router: no undeclared route', () => {
  let host: Host;
  beforeAll(async () => {
    host = await startHost();
  });
  afterAll(async () => {
    await host?.close();
  });

  it('refuses at registration any route or mount not starting with requireSession(...)', () => {
    const { auth } = host;
    const router = auth.router();
    const open = (_req: express.Request, res: express.Response) => void res.end('open');
    expect(() => router.get('/open', open)).toThrow(/declares no requirement/);
    expect(() => router.post('/open', express.json(), auth.requireSession({ session: 'full' }), open)).toThrow(/declares no requirement/);
    expect(() => router.all('/open', open)).toThrow(/declares no requirement/);
    expect(() => router.route('/open').get(open)).toThrow(/declares no requirement/);
    expect(() => router.use(open)).toThrow(/declares no requirement/);
    expect(() => router.use('/sub', express.Router())).toThrow(/declares no requirement/);
    // Declared requirements, the explicit opt-out, guarded sub-routers and error handlers are fine.
    router.get('/a', auth.requireSession({ session: 'full' }), open);
    router.get('/b', [auth.requireSession.none, open]);
    router.route('/c').get(auth.requireSession({ session: 'any' }), open);
    router.use('/d', auth.requireSession({ session: 'full' }), express.Router().get('/', open));
    router.use('/e', auth.router());
    router.use((_error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.end());
    // Requirements no request could meet are refused when declared.
    expect(() => auth.requireSession({ session: 'full', scope: 'orders:read' })).toThrow(/not declared/);
    expect(() => auth.requireSession({ session: 'fullish' as 'full' })).toThrow(/names session/);
  });

  it('a guarded sub-router mounted with use() stays guarded', async () => {
    const { auth, gatehouse } = host;
    const app = express();
    const inner = auth.router();
    inner.get('/secret', auth.requireSession({ session: 'full' }), (req, res) => void res.json({ me: auth.userIdOf(req) }));
    const outer = auth.router();
    outer.use('/area', inner);
    app.use(outer);
    const { server, base } = await listen(app);
    try {
      expect((await new Client(base).get('/area/secret')).status).toBe(401);
      const account = await signup(host.base);
      expect((await account.client.withBase(base).get('/area/secret')).body).toEqual({ me: account.userId });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(gatehouse.scopes).toContain('notes:read');
  });
});

describe('the handler', () => {
  it('under a mount path with a prefix; behind a body parser it fails closed (500), never hangs', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-express-'));
    const gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', ...fast });
    const auth = await gatehouseExpress(gatehouse, { prefix: '/auth', pages: false });
    const app = express();
    app.use('/auth', auth.handler);
    app.use(express.json());
    const routes = auth.router();
    routes.get('/me', auth.requireSession({ session: 'full' }), (req, res) => void res.json({ me: auth.userIdOf(req) }));
    app.use(routes);
    const { server, base } = await listen(app);
    // Wrong: a body parser before the handler has read the body Gatehouse needs.
    const late = express();
    late.use(express.json());
    late.use(auth.handler);
    const wrong = await listen(late);
    try {
      const client = new Client(base);
      const made = await client.post('/auth/api/auth/signup', { email: `p${Date.now()}@example.test`, password: PASSWORD });
      expect(made.status).toBe(201);
      expect((await client.get('/me')).body).toEqual({ me: made.body.user.id });
      expect((await client.get('/auth/nothing')).body.error).toBe('not_found');
      expect((await client.get('/sign-in')).status).toBe(404);
      const refused = await new Client(wrong.base).post('/auth/api/auth/login', { email: 'a@example.test', password: PASSWORD });
      expect(refused.status).toBe(500);
      expect(refused.body.error).toBe('internal_error');
    } finally {
      await new Promise((r) => wrong.server.close(r));
      await new Promise((r) => server.close(r));
      await auth.close();
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('plain Node: http.createServer(handler) serves the API and pages, and answers other URLs with the JSON 404', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-node-'));
    const gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', ...fast });
    const handler = await createNodeHandler(gatehouse);
    const server = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    try {
      const account = await signup(base);
      expect((await account.client.get('/api/session')).body.user.id).toBe(account.userId);
      expect(
        (await account.client.post('/api/tokens', { name: 't', scopes: ['account:read'] }, { headers: { origin: 'https://evil.example' } }))
          .body.error,
      ).toBe('csrf');
      expect((await new Client(base).get('/sign-in')).status).toBe(200);
      expect((await new Client(base).get('/elsewhere')).body.error).toBe('not_found');
    } finally {
      await new Promise((r) => server.close(r));
      await handler.close();
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
