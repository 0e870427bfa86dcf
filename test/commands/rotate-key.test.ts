/**
 * `gatehouse rotate-key` on a healthy data dir: sent mail (whose bodies were dropped on
 * sending) is not counted as undecryptable; factor secrets are re-sealed under the new key,
 * and afterwards the server runs on the new key alone (TOTP logins still work).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { rotateKeys } from '../../src/commands/rotate-key.js';
import { login, signupWithTotp } from '../helpers/accounts.js';
import { FAST_ENV, startTestServer } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-rotate-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const oldKey = crypto.randomBytes(32).toString('base64url');
const newKey = crypto.randomBytes(32).toString('base64url');

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('gatehouse rotate-key', () => {
  it('re-seals factor secrets, skips sent mail (no body left), and the new key alone then serves TOTP logins', async () => {
    const server = await startTestServer({ ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: oldKey });
    const sqlite = () => new Database(path.join(dataDir, 'gatehouse.sqlite'), { readonly: true });
    let account;
    try {
      account = await signupWithTotp(server.url);
      // The factor-added and similar notifications go out and lose their bodies.
      await until(() => {
        const db = sqlite();
        try {
          const row = db.prepare("SELECT COUNT(*) AS n FROM mail_outbox WHERE status = 'sent'").get() as { n: number };
          const pending = db.prepare("SELECT COUNT(*) AS n FROM mail_outbox WHERE status = 'pending'").get() as { n: number };
          return row.n > 0 && pending.n === 0;
        } finally {
          db.close();
        }
      });
    } finally {
      await server.close();
    }

    const env = { ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: newKey, GATEHOUSE_PREVIOUS_SECRET_KEYS: oldKey };
    const first = await rotateKeys(env);
    expect(first.factors.failed).toBe(0);
    expect(first.mail.failed).toBe(0);
    expect(first.factors.reencrypted).toBeGreaterThanOrEqual(1);
    // Running it twice is harmless: nothing stale is left.
    const second = await rotateKeys(env);
    expect(second).toMatchObject({ factors: { reencrypted: 0, failed: 0 }, mail: { reencrypted: 0, failed: 0 } });

    // TOTP secrets now open under the new key alone (recovery codes would still need the old key).
    const rotated = await startTestServer({ ...env, GATEHOUSE_PREVIOUS_SECRET_KEYS: '' });
    try {
      const { client, res } = await login(rotated.url, account);
      expect(res.status).toBe(202);
      const verify = await client.post('/api/auth/mfa/verify', { method: 'totp', code: totpAt(account.secret, 1) });
      expect(verify.status).toBe(200);
    } finally {
      await rotated.close();
    }
  }, 60_000);
});
