// What every check is and what it produces. A check is plain data plus one async function,
// so adding a check is adding one object to checks/index.ts.
import type { AuditContext } from '../context.js';
import type { Exchange } from '../http-client.js';
import type { Profile } from '../profile.js';

/**
 * `inconclusive`: the target answered, but with a limit (429, Retry-After, a "too many"
 * reply): the door was closed by a limiter, which says nothing about the flaw behind it.
 */
export type Status = 'blocked' | 'bypassed' | 'not_applicable' | 'inconclusive' | 'error';
export type Severity = 'critical' | 'high' | 'medium' | 'low';

export interface CheckInfo {
  id: string;
  title: string;
  severity: Severity;
  /** OWASP WSTG test ids and ASVS 5.0 requirement numbers (as docs/security.md cites them). */
  references: string[];
  /** What the attack is, in one or two sentences. */
  description: string;
  fixHint: string;
}

export interface Verdict {
  status: Exclude<Status, 'error'>;
  summary: string;
  /**
   * Why the deciding reply counts as it does: for `blocked`, what made it a refusal (and
   * that it was not a limit reply); for `inconclusive`, the limit seen (`limited: …`).
   */
  why?: string;
}

export interface Check extends CheckInfo {
  /** Checks whose results this one reads; `--only` pulls them in. */
  dependsOn?: string[];
  /** Why this profile cannot support the check, or undefined when it can. */
  notApplicable(profile: Profile): string | undefined;
  /** The steps it will take, for --dry-run. */
  plan(profile: Profile): string[];
  run(ctx: AuditContext): Promise<Verdict>;
}

export interface CheckResult extends CheckInfo {
  status: Status;
  summary: string;
  why?: string;
  durationMs: number;
  evidence: Exchange[];
}

// Its own module, so that the context can throw it without importing the checks' types.
export { Inconclusive, Limited } from '../inconclusive.js';

export const blocked = (summary: string, why?: string): Verdict => ({ status: 'blocked', summary, ...(why ? { why } : {}) });
export const bypassed = (summary: string): Verdict => ({ status: 'bypassed', summary });
export const notApplicable = (summary: string): Verdict => ({ status: 'not_applicable', summary });
