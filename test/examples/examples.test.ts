/**
 * The two example apps (examples/fastify-app, examples/express-app): started as their
 * READMEs say (a child process), and driven through their app factories: sign up, enrol
 * TOTP, the protected route refused before the second factor and allowed after, the ★
 * action asking for a step-up and then succeeding; then the built-in audit against each,
 * every check blocked.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { createApp as createExpressApp } from '../../examples/express-app/app.js';
import { createApp as createFastifyApp } from '../../examples/fastify-app/app.js';
import { login, PASSWORD, signup, sleep, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';
import { digest, idsWith, SECTION_CHECKS } from '../audit/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAX_AGE = 2;
const options = (dataDir: string) => ({
  dataDir,
  logLevel: 'silent' as const,
  stepUpMaxAgeSeconds: MAX_AGE,
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
});

interface Running {
  base: string;
  dataDir: string;
  close(): Promise<void>;
}

const EXAMPLES: Record<string, (dataDir: string) => Promise<Running>> = {
  'fastify-app': async (dataDir) => {
    const example = await createFastifyApp(options(dataDir));
    const base = await example.app.listen({ host: '127.0.0.1', port: 0 });
    return { base, dataDir, close: () => example.close() };
  },
  'express-app': async (dataDir) => {
    const example = await createExpressApp(options(dataDir));
    const server = await new Promise<Server>((resolve) => {
      const s = example.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return {
      base,
      dataDir,
      async close() {
        await new Promise((r) => server.close(r));
        await example.close();
      },
    };
  },
};

/** Signs up and enrols TOTP through the API, confirming with the previous step's code (the current one stays unused). */
async function enrolledAccount(base: string) {
  const account = await signup(base, { email: uniqueEmail('example') });
  const setup = await account.client.post('/api/mfa/totp/setup');
  expect(setup.status).toBe(200);
  const leftInStep = 30_000 - (Date.now() % 30_000);
  if (leftInStep < 1_500) await sleep(leftInStep + 50);
  const confirm = await account.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret, -1) });
  expect(confirm.status).toBe(200);
  return { ...account, secret: setup.body.secret as string, recoveryCodes: [...confirm.body.recoveryCodes] as string[] };
}

describe.each(Object.keys(EXAMPLES))('examples/%s', (name) => {
  let running: Running;
  beforeAll(async () => {
    running = await EXAMPLES[name]!(fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-${name}-`)));
  });
  afterAll(async () => {
    await running?.close();
    if (running) fs.rmSync(running.dataDir, { recursive: true, force: true });
  });

  it('imports nothing but the public package names and its framework', () => {
    for (const file of ['app.ts', 'main.ts']) {
      const source = fs.readFileSync(path.join(ROOT, 'examples', name, file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const specifier of imports)
        expect(specifier, `${name}/${file}`).toMatch(/^(gatehouse(\/express)?|express|fastify|\.\/app\.js)$/);
    }
  });

  it('protects its route with the second factor and its ★ action with a step-up', async () => {
    const { base } = running;
    const account = await enrolledAccount(base);
    const same = { headers: { origin: base } };
    // The password alone: refused until the second factor.
    const { client, res } = await login(base, account);
    expect(res.status).toBe(202);
    const before = await client.get('/api/notes');
    expect(before.status).toBe(401);
    expect(before.body.error).toBe('mfa_required');
    expect((await client.post('/api/notes', { text: 'x' }, same)).body.error).toBe('mfa_required');
    expect((await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpAt(account.secret) })).status).toBe(200);
    expect((await client.post('/api/notes', { text: 'first' }, same)).status).toBe(201);
    expect((await client.get('/api/notes')).body).toEqual({ notes: ['first'] });
    // ★ after the step-up window: step_up_required, then a step-up, then it goes through.
    await sleep(MAX_AGE * 1000 + 200);
    const stale = await client.post('/api/notes/publish', {}, same);
    expect(stale.status).toBe(403);
    expect(stale.body).toMatchObject({ error: 'step_up_required', methods: ['totp', 'recovery_code'], maxAge: MAX_AGE });
    const stepUp = await client.post('/api/auth/step-up', { method: 'recovery_code', code: account.recoveryCodes[0] }, same);
    expect(stepUp.status).toBe(200);
    expect((await client.post('/api/notes/publish', {}, same)).body).toEqual({ published: 1, by: account.email });
    // The public route stays public; the pages are served.
    expect((await new Client(base).get('/api/status')).status).toBe(200);
    expect((await new Client(base).get('/sign-in')).status).toBe(200);
  });

  it('the built-in audit finds every check blocked', { timeout: 240_000 }, async () => {
    const { base, dataDir } = running;
    const accounts = [];
    for (const label of ['alice', 'bob']) {
      const a = await enrolledAccount(base);
      accounts.push({ username: a.email, password: PASSWORD, totpSecret: a.secret, recoveryCodes: a.recoveryCodes, label });
    }
    const profile = parseProfile(
      {
        extends: 'builtin:gatehouse',
        name: `examples/${name}`,
        accounts: accounts.map(({ label: _label, ...a }) => a),
        stepUp: { maxAgeSeconds: MAX_AGE },
        // The example's own routes instead of the demo bank's.
        protectedEndpoints: [
          { method: 'GET', path: '/api/account' },
          { method: 'GET', path: '/api/mfa' },
          { method: 'GET', path: '/api/sessions' },
          { method: 'GET', path: '/api/tokens' },
          { method: 'GET', path: '/api/notes' },
        ],
        sensitiveActions: [
          {
            name: 'create API token',
            kind: 'create_api_token',
            method: 'POST',
            path: '/api/tokens',
            body: { name: 'audit-{nonce}', scopes: ['notes:read'] },
            tokenField: 'token',
          },
          {
            name: 'change e-mail',
            kind: 'change_email',
            method: 'POST',
            path: '/api/account/email',
            body: { email: 'audit-{nonce}@example.invalid' },
          },
          {
            name: 'change password',
            kind: 'change_password',
            method: 'POST',
            path: '/api/account/password',
            body: { currentPassword: '{password}', newPassword: '{password}' },
          },
          { name: 'publish notes', kind: 'other', method: 'POST', path: '/api/notes/publish', body: {} },
          { name: 'regenerate recovery codes', kind: 'other', method: 'POST', path: '/api/mfa/recovery-codes', changesAccount: true },
          {
            name: 'remove TOTP factor',
            kind: 'disable_mfa',
            method: 'DELETE',
            path: '/api/mfa/totp/{factorId}',
            params: { factorId: { method: 'GET', path: '/api/mfa', field: 'factors.0.id' } },
          },
        ],
        apiToken: { probe: { method: 'GET', path: '/api/notes' } },
        passwordReset: { token: { from: 'mailDir', dir: path.join(dataDir, 'mail') } },
        safety: { allowAccountChanges: true, requestsPerSecond: 100 },
      },
      `examples/${name} profile`,
    );
    const report = await runAudit({ target: base, profile });
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual(SECTION_CHECKS);
    expect(idsWith(report, 'blocked')).toHaveLength(15);
    expect(report.exitCode).toBe(0);
  });
});

describe.each(Object.keys(EXAMPLES))('examples/%s started as its README says', (name) => {
  it('npx tsx examples/NAME/main.ts serves the pages, its public route and refuses the protected one', { timeout: 90_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-${name}-main-`));
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [`examples/${name}/main.ts`], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', GATEHOUSE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk) => {
          out += String(chunk);
          const found = /listening on (http:\/\/localhost:\d+)/.exec(out);
          if (found) resolve(found[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
      });
      expect((await new Client(base).get('/api/status')).status).toBe(200);
      expect((await new Client(base).get('/sign-in')).status).toBe(200);
      expect((await new Client(base).get('/api/notes')).body.error).toBe('unauthenticated');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
