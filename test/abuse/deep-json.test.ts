/**
 * Issue 9, defect 3: a WebAuthn `response` nested ~6,000 levels deep made the size check's
 * JSON.stringify overflow the stack: 500 internal_error and an error log line per request,
 * before any attempt counter. Now every JSON body is measured before anything recursive
 * runs: too deep is 400 invalid_request, counted per address, and a flood gets 429.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/core/json-limits.js';
import { BAD_BODIES_PER_ADDRESS } from '../../src/services/limits.js';
import { loginPending, PASSWORD, signupWithTotp, type MfaAccount } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV, spawnServer } from '../helpers/server.js';
import { expect429 } from './helpers.js';

/** The report's body: ~6,000 levels, ~40 KB (under the 64 KB body limit). */
const deep = (levels = 6_000) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const deepBody = (fields: string) => `{${fields}"response":${deep()}}`;

describe('deeply nested JSON bodies (issue 9, defect 3)', () => {
  let server: Awaited<ReturnType<typeof spawnServer>>;
  let dataDir: string;
  let acct: MfaAccount;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-deep-'));
    server = await spawnServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_TRUST_PROXY: '127.0.0.1' });
    acct = await signupWithTotp(server.url, { headers: { 'x-forwarded-for': '198.51.100.7' } });
  }, 60_000);
  afterAll(async () => {
    await server?.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const errorLines = () =>
    server
      .logs()
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .filter((l) => (JSON.parse(l) as { level: number }).level >= 50);

  it('mfa/verify (pending), step-up and webauthn/register answer 400 invalid_request, log no error, and the flows still work', async () => {
    expect(deepBody('"method":"webauthn",').length).toBeGreaterThan(30_000);
    const pending = await loginPending(server.url, acct.email, { 'x-forwarded-for': '198.51.100.7' });
    const cases: [Client, string, string][] = [
      [pending, '/api/auth/mfa/verify', deepBody('"method":"webauthn",')],
      [acct.client, '/api/auth/step-up', deepBody('"method":"webauthn",')],
      [acct.client, '/api/mfa/webauthn/register', deepBody('')],
    ];
    for (const [client, route, raw] of cases) {
      const r = await client.post(route, undefined, { raw });
      expect(r.status, `${route}: ${r.text}`).toBe(400);
      expect(r.body.error).toBe('invalid_request');
      expect(r.body.message).toMatch(/nested too deeply/);
      expect(Array.isArray(r.body.details)).toBe(true);
    }
    // Bodies at the limit are parsed and reach validation (here: the service refuses the
    // nonsense assertion as a wrong code, not as a malformed body).
    const atLimit = `{"method":"webauthn","response":{"a":${'['.repeat(MAX_JSON_DEPTH - 2)}${']'.repeat(MAX_JSON_DEPTH - 2)}}}`;
    const shallow = await acct.client.post('/api/auth/step-up', undefined, { raw: atLimit });
    expect(shallow.status, shallow.text).toBe(401);
    expect(shallow.body.error).toBe('invalid_code');

    expect(errorLines()).toEqual([]);
    // The pending session was not touched: the owner completes it with the right code.
    const ok = await pending.post('/api/auth/mfa/verify', { method: 'totp', code: acct.totp.next() });
    expect(ok.status, ok.text).toBe(200);
  });

  it(`a flood of such bodies from one address is answered 429 after ${BAD_BODIES_PER_ADDRESS}; other addresses and good bodies are unaffected`, async () => {
    const flooder = new Client(server.url, { 'x-forwarded-for': '203.0.113.66' });
    const statuses: number[] = [];
    for (let i = 0; i < BAD_BODIES_PER_ADDRESS + 5; i++) {
      const r = await flooder.post('/api/auth/login', undefined, { raw: deepBody('"email":"a@example.com","password":"x",') });
      statuses.push(r.status);
      if (r.status === 429) {
        expect(r.body.error).toBe('too_many_attempts');
        expect(expect429(r)).toBeGreaterThan(60);
      }
    }
    // Earlier tests here sent 3 from another address: this one's budget is its own.
    expect(statuses.filter((s) => s === 400).length).toBe(BAD_BODIES_PER_ADDRESS);
    expect(statuses.filter((s) => s === 429).length).toBe(5);
    // Malformed JSON stays a plain 400 (contract), also from this address.
    expect((await flooder.post('/api/auth/login', undefined, { raw: '{"email":' })).status).toBe(400);
    // A well-formed login from that address is still answered on its merits.
    const good = await flooder.post('/api/auth/login', { email: acct.email, password: PASSWORD });
    expect(good.status, good.text).toBe(202);
    const other = await new Client(server.url, { 'x-forwarded-for': '203.0.113.67' }).post('/api/auth/login', undefined, {
      raw: deepBody(''),
    });
    expect(other.status).toBe(400);
    expect(errorLines()).toEqual([]);
  });
});
