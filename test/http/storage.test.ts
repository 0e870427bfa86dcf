/**
 * What is stored, and cookie flags for an https public URL: session tokens only as
 * SHA-256, TOTP secrets only encrypted, recovery codes only as keyed hashes; rehash on
 * login when the argon2 cost changes; limits kept in the database survive a restart.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client } from '../helpers/http-client.js';
import { login, PASSWORD, signup, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';

const servers: TestServer[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
async function serve(env: Record<string, string> = {}) {
  const s = await startFastServer(env);
  servers.push(s);
  return s;
}
const sha256 = (t: string) => crypto.createHash('sha256').update(t).digest('base64url');

describe('at rest', () => {
  it('session tokens are stored only as SHA-256 hashes; TOTP secrets only encrypted; recovery codes only keyed-hashed', async () => {
    const server = await serve();
    const account = await signupWithTotp(server.url);
    const db = server.server.gatehouse.database.db;
    const token = account.client.sessionCookie!;
    const sessions = await db.selectFrom('sessions').selectAll().where('user_id', '=', account.userId).execute();
    expect(sessions.map((s) => s.token_hash)).toContain(sha256(token));
    expect(JSON.stringify(sessions)).not.toContain(token);

    const factors = await db.selectFrom('factors').selectAll().where('user_id', '=', account.userId).execute();
    expect(factors).toHaveLength(1);
    expect(factors[0]!.secret_enc).toMatch(/^v1\./);
    expect(JSON.stringify(factors)).not.toContain(account.secret);

    const codes = await db.selectFrom('recovery_codes').selectAll().where('user_id', '=', account.userId).execute();
    expect(codes).toHaveLength(10);
    const dump = JSON.stringify(codes);
    for (const code of account.recoveryCodes) {
      expect(dump).not.toContain(code);
      expect(dump).not.toContain(code.replace(/-/g, ''));
      expect(dump).not.toContain(sha256(code.replace(/-/g, '')));
    }
    // Nothing secret in the whole database file either.
    const file = fs.readFileSync(path.join(server.dataDir, 'gatehouse.sqlite'));
    expect(file.includes(Buffer.from(account.secret))).toBe(false);
    expect(file.includes(Buffer.from(account.password))).toBe(false);
  });
});

describe('https public URL', () => {
  it('cookies get the __Host- prefix and Secure; the same-origin check uses the public origin', async () => {
    const server = await serve({ GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example' });
    const c = new Client(server.url);
    const res = await c.post('/api/auth/signup', { email: uniqueEmail(), password: PASSWORD });
    const cookie = res.setCookies.find((s) => s.startsWith('__Host-gatehouse_session='))!;
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/;\s*Secure/i);
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    expect(cookie).not.toMatch(/Domain=/i);
    expect(res.headers['strict-transport-security']).toBeDefined();
    // The un-prefixed name is not accepted.
    const plain = new Client(server.url);
    plain.cookies.set('gatehouse_session', c.cookies.get('__Host-gatehouse_session')!);
    expect((await plain.get('/api/session')).status).toBe(401);
    expect((await c.get('/api/session')).status).toBe(200);
    expect((await c.post('/api/transfers', { to: 'a', amountCents: 1 }, { headers: { origin: 'https://gatehouse.example' } })).status).toBe(
      201,
    );
    const cross = await c.post('/api/transfers', { to: 'a', amountCents: 1 }, { headers: { origin: server.url } });
    expect(cross.status).toBe(403);
    expect(cross.body.error).toBe('csrf');
  });
});

describe('restarts', () => {
  it('rehashes on login when the argon2 cost changed; sessions and factors survive a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-restart-'));
    dirs.push(dir);
    const first = await startFastServer({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_ARGON2_MEMORY_KIB: '1024', GATEHOUSE_ARGON2_ITERATIONS: '1' });
    const account = await signupWithTotp(first.url);
    const before = await first.server.gatehouse.stores.users.findById(account.userId);
    expect(before!.password_hash).toMatch(/\$m=1024,t=1,p=1\$/);
    await first.close();

    const second = await serve({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_ARGON2_MEMORY_KIB: '2048', GATEHOUSE_ARGON2_ITERATIONS: '2' });
    // The old session (new server, same data dir and generated key) still works.
    const carried = new Client(second.url);
    carried.cookies.set('gatehouse_session', account.client.sessionCookie!);
    expect((await carried.get('/api/session')).status).toBe(200);
    const { client, res } = await login(second.url, account);
    expect(res.status).toBe(202);
    const after = await second.server.gatehouse.stores.users.findById(account.userId);
    expect(after!.password_hash).toMatch(/\$m=2048,t=2,p=1\$/);
    // TOTP secrets still decrypt with the key generated into the data dir.
    const { totpCodeAt } = await import('../../src/services/totp.js');
    expect((await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpCodeAt(account.secret, Date.now()) })).status).toBe(200);
    expect((await login(second.url, account)).res.status).toBe(202);
  });

  it('an account lockout survives a restart (limits live in the database)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-restart-'));
    dirs.push(dir);
    const first = await startFastServer({ GATEHOUSE_DATA_DIR: dir });
    const account = await signup(first.url);
    for (let i = 0; i < 10; i++) await login(first.url, { email: account.email, password: `wrong-${i}-password` });
    expect((await login(first.url, account)).res.status).toBe(429);
    await first.close();
    const second = await serve({ GATEHOUSE_DATA_DIR: dir });
    const res = (await login(second.url, account)).res;
    expect(res.status).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });
});
