// Shared by the auditor's tests: the fixture profile (optionally extended) and result lookups.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { deepMerge, parseProfile, type Profile } from '../../src/audit/profile.js';
import type { AuditReport } from '../../src/audit/report.js';
import type { Status } from '../../src/audit/checks/types.js';

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
