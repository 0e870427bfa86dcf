// The audit's result as data; every report format is rendered from this.
import { packageVersion } from './version.js';
import type { CheckResult, Status } from './checks/types.js';
import type { Exchange } from './http-client.js';

export const AUDITOR_NAME = 'gatehouse-audit';
/** The package's version: the auditor ships with Gatehouse and is versioned with it. */
export const AUDITOR_VERSION: string = packageVersion();

export interface AuditReport {
  tool: { name: string; version: string };
  target: string;
  profile: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  requestCount: number;
  /** Why the audit stopped early (or could not start); absent when it ran to the end. */
  aborted?: string;
  /** The requests that established the baseline (full login, who-am-I, lookups). */
  preflight: Exchange[];
  results: CheckResult[];
  counts: Record<Status, number>;
  /** 0: nothing got through; 1: something did; 2: the audit could not run (completely). */
  exitCode: 0 | 1 | 2;
}

export function countStatuses(results: readonly CheckResult[]): Record<Status, number> {
  const counts: Record<Status, number> = { blocked: 0, bypassed: 0, not_applicable: 0, inconclusive: 0, error: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

/** A finding outranks an incomplete run: if something got through, that is the news. */
export function exitCodeFor(counts: Record<Status, number>, aborted: string | undefined): 0 | 1 | 2 {
  if (counts.bypassed > 0) return 1;
  if (aborted !== undefined || counts.error > 0 || counts.inconclusive > 0) return 2;
  return 0;
}
