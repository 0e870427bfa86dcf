import type { AuditReport } from '../report.js';

/** The report as-is: evidence is already masked by the runner. */
export function renderJson(report: AuditReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
