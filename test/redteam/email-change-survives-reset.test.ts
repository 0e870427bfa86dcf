/**
 * Red team: an e-mail change requested by a request that passed the gate just before a
 * password reset committed survives the reset. The reset voids open e-mail changes inside
 * its locked transaction, but `EmailChangeService.request` writes its change outside
 * AccountChanges and never re-checks that the acting session is still current. An
 * attacker holding a fresh session keeps asking to move the account to their mailbox; the
 * owner resets the password to evict them; a change written after the reset is still
 * confirmable from the attacker's mailbox. The recovery address is then the attacker's:
 * "forgot password" → the attacker sets a password → signs in (an account without a
 * second factor: a full session). The owner's reset did not evict them.
 *
 * Runs on two instances sharing PostgreSQL (a real connection pool, requests truly
 * interleave). Fixed when the change is written inside AccountChanges.apply with
 * `actingSession` (401 when the session was revoked meanwhile): services/email-change.ts
 * `request`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../helpers/http-client.js';
import { signup, sleep } from '../helpers/accounts.js';
import { mailedLink } from '../helpers/mail-files.js';
import { FAST_ENV, startPostgresPair, type TestServer } from '../helpers/server.js';

/** The confirmation token mailed to `to` by either instance (each writes mail to its own data dir). */
async function confirmationTokenFor(dirs: string[], to: string, timeoutMs = 15_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  const escaped = to.replace(/[.+]/g, '\\$&');
  while (Date.now() < deadline) {
    for (const dir of dirs) {
      const folder = path.join(dir, 'mail');
      if (!fs.existsSync(folder)) continue;
      for (const f of fs.readdirSync(folder).filter((n) => n.endsWith('.eml'))) {
        const raw = fs
          .readFileSync(path.join(folder, f), 'utf8')
          .replace(/=\r?\n/g, '')
          .replace(/=3D/gi, '=');
        if (!new RegExp(`^To: .*${escaped}`, 'mi').test(raw)) continue;
        const m = /\/confirm-email\?token=([A-Za-z0-9_-]{43})/.exec(raw);
        if (m) return m[1]!;
      }
    }
    await sleep(100);
  }
  return null;
}

describe('red team: an e-mail change requested during a password reset survives it', () => {
  let pair: Awaited<ReturnType<typeof startPostgresPair>>;
  let server: TestServer;
  let other: TestServer;
  beforeAll(async () => {
    pair = await startPostgresPair('rt_email_reset', { ...FAST_ENV, GATEHOUSE_SECRET_KEY: 'rt-email-reset-shared-key-0123456789abcdef-' });
    [server, other] = pair.servers;
  });
  afterAll(async () => {
    await pair?.cleanup();
  });

  it('no change asked for by a session the reset revoked can be confirmed; the owner can still change the address', async () => {
    const owner = await signup(server.url);
    const attacker = owner.client.withBase(other.url);
    expect((await new Client(server.url).post('/api/auth/password/forgot', { email: owner.email })).status).toBe(202);
    const dirs = [server.dataDir, other.dataDir];
    const link = await mailedLink(server.dataDir, {
      to: owner.email,
      event: 'password_reset.requested',
      linkPath: '/reset-password',
    }).catch(() => mailedLink(other.dataDir, { to: owner.email, event: 'password_reset.requested', linkPath: '/reset-password' }));

    const requested: string[] = [];
    let stop = false;
    let n = 0;
    const loop = async () => {
      while (!stop) {
        const to = `thief-${n++}-${owner.userId.slice(0, 6)}@evil.test`;
        const r = await attacker.post('/api/account/email', { email: to });
        if (r.status === 202) requested.push(to);
        else break;
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await sleep(50);
    const reset = await new Client(server.url).post('/api/auth/password/reset', {
      token: link.searchParams.get('token'),
      password: 'amber-lantern-77-quarry',
    });
    expect(reset.status).toBe(200);
    stop = true;
    await Promise.all(loops);
    expect(requested.length).toBeGreaterThan(0);

    // The attacker reads their mailbox: only the newest requests can still be pending.
    const confirmed: string[] = [];
    for (const to of requested.slice(-4)) {
      const token = await confirmationTokenFor(dirs, to);
      if (!token) continue;
      const r = await new Client(other.url).post('/api/account/email/confirm', { token });
      if (r.status === 200) confirmed.push(to);
    }
    expect(confirmed).toEqual([]);

    // Legitimate flow: the owner signs in with the new password and changes the address.
    const fresh = new Client(server.url);
    expect((await fresh.post('/api/auth/login', { email: owner.email, password: 'amber-lantern-77-quarry' })).status).toBe(200);
    const mine = `mine-${owner.userId.slice(0, 8)}@example.test`;
    expect((await fresh.post('/api/account/email', { email: mine })).status).toBe(202);
    const token = await confirmationTokenFor(dirs, mine);
    expect((await new Client(server.url).post('/api/account/email/confirm', { token })).status).toBe(200);
  });
});
