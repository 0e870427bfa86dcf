// Shared by the auditor's tests: the fixture profile (optionally extended) and result lookups.
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { deepMerge, parseProfile, type Profile } from '../../src/audit/profile.js';
import type { AuditReport } from '../../src/audit/report.js';
import type { Status } from '../../src/audit/checks/types.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

export const FIXTURE_PROFILE_PATH = fileURLToPath(new URL('../fixtures/mfa-app.profile.yaml', import.meta.url));

/** The fixture bank's profile, with `extra` merged over it (objects merge, arrays replace). */
export function fixtureProfile(extra: Record<string, unknown> = {}): Profile {
  const raw = parse(readFileSync(FIXTURE_PROFILE_PATH, 'utf8')) as unknown;
  return parseProfile(deepMerge(raw, extra), 'fixture profile');
}

/** The auditor's OpenID Provider checks: not applicable to a profile without an `oidc` section. */
export const OIDC_CHECKS = [
  'oidc-acr-values-ignored',
  'oidc-code-for-pending-session',
  'oidc-prompt-none-pending',
  'oidc-refresh-after-factor-removal',
];

/** Checks that need a profile section an ordinary sign-in profile lacks: `oidc`, and `upstreamLogin` (sorted). */
export const SECTION_CHECKS = [...OIDC_CHECKS, 'upstream-login-links-without-factor'].sort();

export function idsWith(report: AuditReport, status: Status): string[] {
  return report.results
    .filter((r) => r.status === status)
    .map((r) => r.id)
    .sort();
}

/** The verdict of one check in a report. */
export function statusOf(report: AuditReport, id: string): Status | undefined {
  return report.results.find((r) => r.id === id)?.status;
}

/** For assertion messages: which check said what. */
export function digest(report: AuditReport): string {
  return [report.aborted ?? '', ...report.results.map((r) => `${r.id}: ${r.status}: ${r.summary}`)].join('\n');
}

/** A loopback port nothing listens on yet (the auditor's upstream will). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The client secret Gatehouse uses at the auditor's upstream (`auditedGatehouse`). */
export const UPSTREAM_SECRET = 'audit-upstream-client-secret-0123456789';

/**
 * A Gatehouse to audit, started before the suite's tests and closed after them: a 2 s
 * step-up window (the freshness checks wait it out), no trusted devices, cheap hashing
 * (an audit signs in a few dozen times). It trusts an upstream "audit" at a free loopback
 * port, where the federated-login check runs its own provider (`upstreamLogin`, for the
 * profile).
 */
export function auditedGatehouse(): { readonly server: TestServer; readonly upstreamLogin: Record<string, string> } {
  let server: TestServer | undefined;
  let issuer = '';
  beforeAll(async () => {
    issuer = `http://127.0.0.1:${await freePort()}`;
    server = await startTestServer({
      GATEHOUSE_STEP_UP_MAX_AGE: '2',
      GATEHOUSE_TRUSTED_DEVICE_DAYS: '0',
      GATEHOUSE_ARGON2_MEMORY_KIB: '1024',
      GATEHOUSE_ARGON2_ITERATIONS: '1',
      GATEHOUSE_OIDC_UPSTREAMS: JSON.stringify([{ name: 'audit', issuer, clientId: 'gatehouse', clientSecret: UPSTREAM_SECRET }]),
    });
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    get server() {
      if (!server) throw new Error('the server starts in beforeAll');
      return server;
    },
    get upstreamLogin() {
      return { issuer, clientId: 'gatehouse', clientSecret: UPSTREAM_SECRET, startPath: '/sign-in/upstream/audit' };
    },
  };
}
