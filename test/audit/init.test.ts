// `gatehouse audit init`: a profile drafted from Gatehouse's own /openapi.json works as
// it is (with --provision and the deployment's step-up window): every check blocked, no
// error. And a draft from a HAR recording of a fixture app finds its planted flaw.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../src/audit/command.js';
import { deepMerge, parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { startTokenland, TOKENLAND_USERS, type TokenlandFlaws } from '../fixtures/tokenland/app.js';
import { auditedGatehouse, digest, idsWith, SECTION_CHECKS } from './helpers.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (s: string) => ((out.stdout += s), true) },
    stderr: { write: (s: string) => ((out.stderr += s), true) },
  };
  return { out, io };
}

describe('audit init --openapi against Gatehouse', () => {
  const target = auditedGatehouse();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-init-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('drafts a working profile from /openapi.json: the audit with it blocks everything, 0 errors', async () => {
    const file = join(dir, 'gatehouse.yaml');
    const { out, io } = capture();
    const code = await auditCommand(
      ['init', '--openapi', `${target.server.url}/openapi.json`, '--out', file, '--mail-dir', join(target.server.dataDir, 'mail')],
      io,
    );
    expect(code, out.stderr).toBe(0);
    expect(out.stderr).toMatch(/could not place:[\s\S]*stepUp\.maxAgeSeconds/);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^# Placed:\n# {3}login → POST \/api\/auth\/login/m);
    // The deployment's facts the API cannot state: its step-up window; and the opt-ins.
    const raw = deepMerge(parse(text), { stepUp: { maxAgeSeconds: 2 }, safety: { allowAccountChanges: true, requestsPerSecond: 100 } });
    const profile = parseProfile(raw, 'drafted', { provision: true });
    const kinds = profile.sensitiveActions.map((a) => a.kind).sort();
    expect(kinds).toEqual(['change_email', 'change_password', 'create_api_token', 'disable_mfa', 'other']);
    const report = await runAudit({ target: target.server.url, profile });
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual(SECTION_CHECKS);
    expect(idsWith(report, 'blocked')).toHaveLength(15);
  });

  it('says what it cannot read', async () => {
    const { out, io } = capture();
    expect(await auditCommand(['init', '--openapi', `${target.server.url}/healthz`], io)).toBe(2);
    expect(out.stderr).toContain('not an OpenAPI document');
    expect(await auditCommand(['init'], io)).toBe(2);
    expect(out.stderr).toContain('give exactly one of --openapi FILE|URL, --har FILE');
  });
});

// The HAR was recorded with Chromium from Tokenland (test/fixtures/har/record-tokenland.ts):
// a bearer API with the pending token in the code request's body and a body remember-me token.
describe('audit init --har (a recording of Tokenland)', () => {
  const HAR = fileURLToPath(new URL('../fixtures/har/tokenland.har', import.meta.url));

  async function auditDraft(flaws: Partial<TokenlandFlaws>) {
    const mailDir = await mkdtemp(join(tmpdir(), 'tokenland-mail-'));
    const app = await startTokenland({ style: 'pending-body', flaws, mailDir });
    try {
      const { out, io } = capture();
      expect(await auditCommand(['init', '--har', HAR, '--mail-dir', mailDir], io), out.stderr).toBe(0);
      // The recording cannot show how accounts are made: the draft says so and the test adds them.
      expect(out.stderr).toContain('accountSetup: no sign-up');
      const accounts = TOKENLAND_USERS.map((u) => ({
        username: u.login,
        password: u.password,
        totpSecret: u.totpSecret,
        recoveryCodes: [...u.recoveryCodes],
      }));
      const profile = parseProfile(
        deepMerge(parse(out.stdout), { accounts, safety: { allowAccountChanges: true, requestsPerSecond: 200 } }),
        'har draft',
      );
      return await runAudit({ target: app.url, profile });
    } finally {
      await app.close();
      await rm(mailDir, { recursive: true, force: true });
    }
  }

  it('places the flow: pending token captured into the code body, bearer token, remember-me exchange, reset token in the path', async () => {
    const { out, io } = capture();
    expect(await auditCommand(['init', '--har', HAR, '--mail-dir', '/tmp/mail'], io)).toBe(0);
    const draft = parse(out.stdout) as Record<string, any>;
    expect(draft.login).toMatchObject({
      path: '/api/v2/login',
      usernameField: 'login',
      capture: { pending: { json: 'challenge.pendingToken' } },
    });
    expect(draft.login.mfaRequired).toEqual({ status: 200, body: { path: 'state', equals: 'second_factor' } });
    expect(draft.secondFactor.totp).toMatchObject({ path: '/api/v2/login/code', codeField: 'code', body: { pending_token: '{pending}' } });
    expect(draft.secondFactor.recoveryCode).toMatchObject({ path: '/api/v2/login/recovery', codeField: 'recovery_code' });
    expect(draft.session).toEqual({ transport: 'bearer', tokenField: 'sessionToken' });
    expect(draft.rememberMe.restore).toEqual({ method: 'POST', path: '/api/v2/remember', body: { remember_token: '{rememberToken}' } });
    expect(draft.passwordReset.reset.path).toBe('/api/v2/password/reset/{token}');
  });

  it('the draft finds the planted flaws and nothing on the secure variant, with no error', async () => {
    const secure = await auditDraft({});
    expect(secure.aborted, digest(secure)).toBeUndefined();
    expect(idsWith(secure, 'bypassed'), digest(secure)).toEqual([]);
    expect(idsWith(secure, 'error'), digest(secure)).toEqual([]);
    expect(idsWith(secure, 'inconclusive'), digest(secure)).toEqual([]);
    const flawed = await auditDraft({ totpReplay: true, rememberSkipsMfa: true, resetLogsIn: true, disableWithPasswordOnly: true });
    expect(idsWith(flawed, 'bypassed'), digest(flawed)).toEqual([
      'mfa-disable-without-reauth',
      'password-reset-session',
      'remember-me-skips-mfa',
      'totp-replay',
    ]);
    expect(idsWith(flawed, 'error'), digest(flawed)).toEqual([]);
  });
});
