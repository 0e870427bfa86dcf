/**
 * Gatehouse embedded in a host's own Fastify app through the public API only: partial
 * options, host-declared scopes, the gate on the host's routes, and nothing of
 * Gatehouse's headers, parsers or error handlers on them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatehouse, errors, gatehouseFastify, requires, sessionOf, type Gatehouse, type SecurityEvent } from '../../src/index.js';
import { signup, signupWithTotp, login } from '../helpers/accounts.js';
import { capturedLogger } from '../helpers/logs.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV } from '../helpers/server.js';

const fast = {
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
};

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-host-'));
}

describe('a Fastify host app', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  let base: string;
  let dataDir: string;
  const log = capturedLogger();
  const events: SecurityEvent[] = [];

  beforeAll(async () => {
    dataDir = tempDir();
    gatehouse = await createGatehouse({ dataDir, productName: 'Inkwell', scopes: ['notes:read'], logger: log.logger, ...fast });
    gatehouse.on('*', (event) => void events.push(event));
    app = Fastify();
    // The host's own error handler: its JSON errors must stay its own.
    app.setErrorHandler((error, _request, reply) => reply.status(418).send({ hostError: (error as Error).message }));
    await app.register(gatehouseFastify, { gatehouse });
    app.get('/notes', { config: requires({ session: 'full', scope: 'notes:read' }) }, async (request) => ({
      owner: gatehouse.userIdOf(request),
    }));
    app.post('/notes/publish', { config: requires({ session: 'full', fresh: true }) }, async (request) => ({
      published: true,
      aal: sessionOf(request).aal,
    }));
    app.post('/notes/echo', { config: requires({ session: 'none' }) }, async (request) => ({ body: request.body }));
    app.get('/notes/boom', { config: requires({ session: 'none' }) }, async () => {
      throw new Error('host failure');
    });
    // A listen host of 127.0.0.1 alone: links use it (the contract's http://HOST:PORT); localhost is accepted as well.
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app.close();
    await gatehouse.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('exposes a facade: no stores, keys, database or wiring', () => {
    expect(Object.keys(gatehouse).sort()).toEqual([
      'admin',
      'close',
      'on',
      'productName',
      'publicUrl',
      'requires',
      'scopes',
      'sessionOf',
      'userIdOf',
    ]);
    expect(gatehouse.scopes).toEqual(['account:read', 'notes:read']);
    expect(Object.isFrozen(gatehouse)).toBe(true);
    expect(gatehouse.publicUrl()).toBe(base);
    expect(errors.StepUpRequiredError.code).toBe('step_up_required');
  });

  it('guards the host route: anonymous, pending and full sessions; product name in the TOTP issuer', async () => {
    expect((await new Client(base).get('/notes')).status).toBe(401);
    const account = await signup(base);
    expect((await account.client.get('/notes')).status).toBe(200);
    const setup = await account.client.post('/api/mfa/totp/setup', undefined, { headers: { origin: base } });
    expect(setup.status).toBe(200);
    expect(new URL(setup.body.otpauthUri).searchParams.get('issuer')).toBe('Inkwell');
    const pending = (await login(base, account)).client;
    expect((await pending.get('/notes')).status).toBe(200); // no factor confirmed yet: password alone is full
  });

  it('host routes get no CSP and no no-store from Gatehouse; Gatehouse routes do', async () => {
    const account = await signup(base);
    const host = await account.client.get('/notes');
    expect(host.status).toBe(200);
    expect(host.body).toEqual({ owner: account.userId });
    expect(host.headers['content-security-policy']).toBeUndefined();
    expect(host.headers['cache-control']).toBeUndefined();
    const own = await account.client.get('/api/session');
    expect(own.headers['content-security-policy']).toBeDefined();
    expect(own.headers['cache-control']).toBe('no-store');
  });

  it("host errors stay the host's; its 404 is not Gatehouse's JSON", async () => {
    const boom = await new Client(base).get('/notes/boom');
    expect(boom.status).toBe(418);
    expect(boom.body).toEqual({ hostError: 'host failure' });
    const missing = await new Client(base).get('/no/such/page');
    expect(missing.status).toBe(404);
    expect(missing.body.error).not.toBe('not_found');
    // Gatehouse's own routes keep the contract's JSON errors.
    const bad = await new Client(base).post('/api/auth/login', { email: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');
  });

  it('gate refusals on host routes are the contract JSON, step-up included', async () => {
    const account = await signupWithTotp(base);
    const { client, res } = await login(base, account);
    expect(res.status).toBe(202);
    const pending = await client.post('/notes/publish', {}, { headers: { origin: base } });
    expect(pending.status).toBe(401);
    expect(pending.body.error).toBe('mfa_required');
    expect(pending.headers['cache-control']).toBe('no-store');
    const verify = await client.post(
      '/api/auth/mfa/verify',
      { method: 'recovery_code', code: account.recoveryCodes[0] },
      { headers: { origin: base } },
    );
    expect(verify.status).toBe(200);
    // A login with a recovery code is a fresh factor: the ★ host action goes through.
    expect((await client.post('/notes/publish', {}, { headers: { origin: base } })).body).toEqual({ published: true, aal: 2 });
  });

  it('development origins: localhost and 127.0.0.1 at the real port pass, others are refused and logged', async () => {
    const account = await signup(base);
    const port = new URL(base).port;
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      expect((await account.client.post('/notes/publish', {}, { headers: { origin } })).status).toBe(200);
    }
    const evil = await account.client.post('/notes/publish', {}, { headers: { origin: 'http://127.0.0.1:1' } });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toBe('csrf');
    const warn = log.lines.find((l) => l.receivedOrigin === 'http://127.0.0.1:1');
    expect(warn).toMatchObject({ level: 40, expectedOrigin: [`http://localhost:${port}`, `http://127.0.0.1:${port}`] });
  });

  it('API tokens carry the scopes the host declared, and only those', async () => {
    const account = await signup(base);
    const refused = await account.client.post('/api/tokens', { name: 't', scopes: ['transfers:write'] }, { headers: { origin: base } });
    expect(refused.status).toBe(400);
    const made = await account.client.post('/api/tokens', { name: 't', scopes: ['notes:read'] }, { headers: { origin: base } });
    expect(made.status).toBe(201);
    const viaToken = await new Client(base).get('/notes', { headers: { authorization: `Bearer ${made.body.token}` } });
    expect(viaToken.body).toEqual({ owner: account.userId });
  });

  it('security events reach subscribers, typed and without secrets', async () => {
    const account = await signup(base);
    await new Promise((r) => setTimeout(r, 50));
    const created = events.find((e) => e.type === 'account.created' && e.userId === account.userId);
    expect(created).toBeDefined();
    expect(created!.at).toBeInstanceOf(Date);
  });
});

describe('startup guarantees in a host app', () => {
  it('a host route without a requirement, or naming an undeclared scope, stops startup', async () => {
    const dataDir = tempDir();
    const gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', ...fast });
    try {
      const bare = Fastify();
      await bare.register(gatehouseFastify, { gatehouse });
      expect(() => bare.get('/open', async () => 'x')).toThrow(/declares no requirement/);
      await bare.close();
      const scoped = Fastify();
      await scoped.register(gatehouseFastify, { gatehouse });
      expect(() => scoped.get('/x', { config: requires({ session: 'full', scope: 'orders:read' }) }, async () => 'x')).toThrow(
        /not declared/,
      );
      await scoped.close();
    } finally {
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('bad options are refused with the option named', async () => {
    await expect(createGatehouse({ stepUpMaxAgeSeconds: 0 })).rejects.toThrow(/stepUpMaxAgeSeconds/);
    await expect(createGatehouse({ publicUrl: 'ftp://x' })).rejects.toThrow(/publicUrl/);
  });
});

describe('plugin options', () => {
  it('prefix and pages: false mount only the API, under the prefix', async () => {
    const dataDir = tempDir();
    const gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', ...fast });
    const app = Fastify();
    await app.register(gatehouseFastify, { gatehouse, prefix: '/auth', pages: false });
    app.get('/', { config: requires({ session: 'full' }) }, async (request) => ({ me: gatehouse.userIdOf(request) }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const client = new Client(base);
      const made = await client.post('/auth/api/auth/signup', {
        email: `p${Date.now()}@example.com`,
        password: 'violet-kettle-29-harbour',
      });
      expect(made.status).toBe(201);
      expect((await client.get('/')).body).toEqual({ me: made.body.user.id });
      // Unknown URLs under the prefix get Gatehouse's JSON 404; pages are not served.
      expect((await client.get('/auth/nothing')).body.error).toBe('not_found');
      expect((await client.get('/sign-in')).status).toBe(404);
      expect((await client.get('/api/auth/signup')).status).toBe(404);
    } finally {
      await app.close();
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('one Gatehouse has one pages base: mounting its pages under a second, different prefix is refused at startup', async () => {
    const dataDir = tempDir();
    const gatehouse = await createGatehouse({ dataDir, logLevel: 'silent', ...fast });
    const app = Fastify();
    const other = Fastify();
    try {
      await app.register(gatehouseFastify, { gatehouse, prefix: '/auth' }).ready();
      // Its mailed links point at /auth: pages elsewhere would get links to pages they do not serve.
      await expect(other.register(gatehouseFastify, { gatehouse, prefix: '/login' }).ready()).rejects.toThrow(
        /already mounted at "\/auth"/,
      );
    } finally {
      await other.close().catch(() => undefined);
      await app.close().catch(() => undefined);
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
