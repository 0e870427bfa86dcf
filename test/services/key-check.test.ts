/**
 * Keys (issue 11): a key shorter than 256 bits is refused; an instance whose key is not
 * the one the data was written with refuses to start with one line naming the variable;
 * a rotation (new key, old key in GATEHOUSE_PREVIOUS_SECRET_KEYS) starts; `keygen` keys pass.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSecretKey, keyStrengthProblem } from '../../src/services/keys.js';
import { signupWithTotp } from '../helpers/accounts.js';
import { FAST_ENV, startTestServer } from '../helpers/server.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('secret keys', () => {
  it('the key format: at least 256 bits as base64url, base64 or hex', () => {
    expect(keyStrengthProblem(generateSecretKey())).toBeNull();
    expect(keyStrengthProblem('a'.repeat(64).replace(/a/g, 'f'))).toBeNull();
    expect(keyStrengthProblem('short')).toMatch(/256 bits/);
    expect(keyStrengthProblem('f'.repeat(62))).toMatch(/256 bits/);
    expect(keyStrengthProblem('a passphrase with spaces that is long enough to pass')).toMatch(/256 bits/);
  });

  it('a short key refuses to start; another key on the same data refuses; a rotation starts', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-keys-'));
    dirs.push(dataDir);
    await expect(startTestServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: 'short' })).rejects.toThrow(
      /^GATEHOUSE_SECRET_KEY must be at least 256 bits/,
    );
    const first = generateSecretKey();
    const s1 = await startTestServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: first });
    const account = await signupWithTotp(s1.url);
    await s1.close();

    const other = generateSecretKey();
    await expect(startTestServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: other })).rejects.toThrow(
      /GATEHOUSE_SECRET_KEY is not the key this database was written with/,
    );
    // Rotation: the new key with the old one listed as previous starts, and TOTP still works.
    const s2 = await startTestServer({
      ...FAST_ENV,
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_SECRET_KEY: other,
      GATEHOUSE_PREVIOUS_SECRET_KEYS: first,
    });
    try {
      const login = await new (await import('../helpers/http-client.js')).Client(s2.url).post('/api/auth/login', {
        email: account.email,
        password: account.password,
      });
      expect(login.status).toBe(202);
    } finally {
      await s2.close();
    }
    // From now on both fingerprints are known: the new key alone starts too.
    const s3 = await startTestServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: other });
    await s3.close();
  });
});
