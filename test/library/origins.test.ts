/**
 * The public origin, on real servers. Development (no public URL): the pages' forms work
 * from `http://localhost:PORT` and `http://127.0.0.1:PORT` alike; links follow the
 * contract's default `http://HOST:PORT` (127.0.0.1) and the passkey relying party is
 * `localhost` (an IP address cannot be one); in library mode the port is the one the host really
 * listens on (whatever `PORT` says). Configured: exactly that origin. Every refusal is
 * logged (warn) with the origins expected and received.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatehouse, gatehouseFastify } from '../../src/index.js';
import { PASSWORD, signup, uniqueEmail } from '../helpers/accounts.js';
import { capturedLogger } from '../helpers/logs.js';
import { Client, FormBrowser } from '../helpers/http-client.js';
import { FAST_ENV, startFastServer, type TestServer } from '../helpers/server.js';

const fast = {
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
};

const csrfWarnings = (lines: Record<string, any>[]) => lines.filter((l) => l.msg === 'refused a cross-origin request (csrf)');

describe('the ready-to-run server in development (no GATEHOUSE_PUBLIC_URL)', () => {
  let server: TestServer;
  let port: string;
  beforeAll(async () => {
    server = await startFastServer();
    port = new URL(server.url).port;
  });
  afterAll(async () => server?.close());

  it('sign-up by page works from localhost and from 127.0.0.1 at the listening port', async () => {
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      const page = new FormBrowser(server.url);
      const res = await page.go('POST', '/sign-up', { email: uniqueEmail('dev'), password: PASSWORD }, { origin });
      expect(res.status, origin).toBe(303);
      expect(res.location, origin).toBe('/settings');
    }
  });

  it("links use the contract's http://HOST:PORT; the passkey relying party is localhost (an IP address cannot be an RP ID)", async () => {
    expect(server.server.facade.publicUrl()).toBe(`http://127.0.0.1:${port}`);
    const account = await signup(server.url);
    const options = await account.client.post('/api/mfa/webauthn/register/options');
    expect(options.body.rp.id).toBe('localhost');
  });

  it('another origin (another port, another host) is refused', async () => {
    for (const origin of [`http://localhost:1`, 'https://evil.example', `http://[::1]:${port}`]) {
      const res = await new FormBrowser(server.url).go('POST', '/sign-up', { email: uniqueEmail('x'), password: PASSWORD }, { origin });
      expect(res.status, origin).toBe(403);
    }
  });
});

describe('library mode', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-origins-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the public origin follows the port the host listens on, not PORT; refusals are logged with both origins', async () => {
    const savedPort = process.env.PORT;
    process.env.PORT = '4999';
    const log = capturedLogger();
    const gatehouse = await createGatehouse({ dataDir: tempDir(), logger: log.logger, ...fast });
    const app = Fastify();
    try {
      await app.register(gatehouseFastify, { gatehouse, pages: false });
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const port = new URL(base).port;
      expect(port).not.toBe('4999');
      expect(gatehouse.publicUrl()).toBe(`http://127.0.0.1:${port}`);

      const body = { email: uniqueEmail('lib'), password: PASSWORD };
      expect((await new Client(base).post('/api/auth/signup', body, { headers: { origin: `http://localhost:${port}` } })).status).toBe(201);
      const wrongPort = await new Client(base).post(
        '/api/auth/signup',
        { ...body, email: uniqueEmail('lib') },
        { headers: { origin: 'http://localhost:4999' } },
      );
      expect(wrongPort.status).toBe(403);
      expect(wrongPort.body.error).toBe('csrf');
      const warned = csrfWarnings(log.lines);
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({
        level: 40,
        receivedOrigin: 'http://localhost:4999',
        expectedOrigin: [`http://localhost:${port}`, `http://127.0.0.1:${port}`],
      });
    } finally {
      if (savedPort === undefined) delete process.env.PORT;
      else process.env.PORT = savedPort;
      await app.close();
      await gatehouse.close();
    }
  });

  it('a configured public URL is the only origin accepted; a refusal by Sec-Fetch-Site alone is logged too', async () => {
    const log = capturedLogger();
    const gatehouse = await createGatehouse({ dataDir: tempDir(), publicUrl: 'https://auth.example.com/', logger: log.logger, ...fast });
    const app = Fastify();
    try {
      await app.register(gatehouseFastify, { gatehouse, pages: false });
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      expect(gatehouse.publicUrl()).toBe('https://auth.example.com');
      const signupFrom = (headers: Record<string, string>) =>
        new Client(base).post('/api/auth/signup', { email: uniqueEmail('cfg'), password: PASSWORD }, { headers });
      expect((await signupFrom({ origin: 'https://auth.example.com' })).status).toBe(201);
      expect((await signupFrom({ origin: base })).status).toBe(403);
      expect((await signupFrom({ 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      const warned = csrfWarnings(log.lines);
      expect(warned.map((w) => [w.receivedOrigin, w.expectedOrigin, w.secFetchSite])).toEqual([
        [base, ['https://auth.example.com'], null],
        [null, ['https://auth.example.com'], 'cross-site'],
      ]);
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });
});
