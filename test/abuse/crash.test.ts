/**
 * Crash safety: writes (signups, TOTP enrolments, recovery-code uses) run against a server
 * in a child process, which is killed with SIGKILL mid-run, with requests in flight. A new
 * server on the same data dir must show every acknowledged write, and no recovery code —
 * acknowledged as used, or in flight at the kill — may be accepted twice.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loginPending, PASSWORD, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV, spawnServer } from '../helpers/server.js';
import { totpAt } from '../helpers/totp.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-crash-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const env = {
  ...FAST_ENV,
  GATEHOUSE_DATA_DIR: dataDir,
  GATEHOUSE_SECRET_KEY: 'crash-test-key-0000000000000000000000000000',
  GATEHOUSE_LOG_LEVEL: 'silent',
};

interface Enrolled {
  email: string;
  codes: string[];
}

describe('crash safety', () => {
  it('after SIGKILL mid-run, every acknowledged write survives and no recovery code is usable twice', async () => {
    const acked = { signups: [] as string[], enrolled: [] as Enrolled[], used: [] as { email: string; code: string }[] };
    const inFlight: { email: string; code: string }[] = [];
    let sent = 0;
    let stop = false;

    const first = await spawnServer(env);
    const worker = async () => {
      while (!stop) {
        try {
          const email = uniqueEmail('crash');
          const c = new Client(first.url);
          sent++;
          if ((await c.post('/api/auth/signup', { email, password: PASSWORD })).status !== 201) continue;
          acked.signups.push(email);
          if (stop) return;
          const setup = await c.post('/api/mfa/totp/setup');
          if (setup.status !== 200) continue;
          sent++;
          const confirm = await c.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret) });
          if (confirm.status !== 200) continue;
          const enrolled = { email, codes: confirm.body.recoveryCodes as string[] };
          acked.enrolled.push(enrolled);
          for (const code of enrolled.codes.slice(0, 3)) {
            if (stop) return;
            const p = await loginPending(first.url, email);
            const entry = { email, code };
            inFlight.push(entry);
            sent++;
            const r = await p.post('/api/auth/mfa/verify', { method: 'recovery_code', code });
            inFlight.splice(inFlight.indexOf(entry), 1);
            if (r.status === 200) acked.used.push(entry);
          }
        } catch {
          return; // the server is gone
        }
      }
    };
    const signupOnly = async () => {
      while (!stop) {
        const email = uniqueEmail('crash');
        try {
          sent++;
          const r = await new Client(first.url).post('/api/auth/signup', { email, password: PASSWORD });
          if (r.status === 201) acked.signups.push(email);
        } catch {
          return;
        }
      }
    };
    const workers = [...Array.from({ length: 8 }, () => worker()), signupOnly(), signupOnly()];
    // Let writes pile up, then kill the whole process group without warning.
    const deadline = Date.now() + 20_000;
    while (acked.used.length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await first.kill('SIGKILL');
    const inFlightAtKill = [...inFlight];
    stop = true;
    await Promise.all(workers);

    expect(acked.signups.length).toBeGreaterThan(5);
    expect(acked.used.length).toBeGreaterThanOrEqual(20);

    const second = await spawnServer(env);
    try {
      // Every acknowledged signup can log in; every acknowledged enrolment still asks for the factor.
      const enrolledEmails = new Set(acked.enrolled.map((e) => e.email));
      for (const email of acked.signups) {
        const r = await new Client(second.url).post('/api/auth/login', { email, password: PASSWORD });
        expect([200, 202], `${email}: ${r.text}`).toContain(r.status);
        if (enrolledEmails.has(email)) expect(r.status).toBe(202);
      }
      // Every acknowledged use stays used.
      for (const { email, code } of acked.used) {
        const p = await loginPending(second.url, email);
        const r = await p.post('/api/auth/mfa/verify', { method: 'recovery_code', code });
        expect(r.status, `acknowledged code reusable for ${email}`).not.toBe(200);
      }
      // A code in flight at the kill either was used or was not: at most one success now.
      let inFlightAccepted = 0;
      for (const { email, code } of inFlightAtKill) {
        let ok = 0;
        for (let i = 0; i < 2; i++) {
          const p = await loginPending(second.url, email);
          if ((await p.post('/api/auth/mfa/verify', { method: 'recovery_code', code })).status === 200) ok++;
        }
        expect(ok).toBeLessThanOrEqual(1);
        inFlightAccepted += ok;
      }
      // Unused codes of acknowledged enrolments still work, once.
      for (const e of acked.enrolled.slice(0, 3)) {
        const code = e.codes[9]!;
        const a = await (await loginPending(second.url, e.email)).post('/api/auth/mfa/verify', { method: 'recovery_code', code });
        const b = await (await loginPending(second.url, e.email)).post('/api/auth/mfa/verify', { method: 'recovery_code', code });
        expect([a.status, b.status]).toEqual([200, 401]);
      }
      console.log(
        `crash test: ${sent} writes sent, acknowledged ${acked.signups.length} signups, ${acked.enrolled.length} enrolments, ` +
          `${acked.used.length} recovery-code uses; ${inFlightAtKill.length} code uses in flight at SIGKILL (${inFlightAccepted} accepted once afterwards); none lost, none reusable`,
      );
    } finally {
      await second.kill('SIGTERM');
    }
  }, 150_000);
});
