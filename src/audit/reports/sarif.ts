// SARIF 2.1.0, so CI systems (GitHub code scanning, GitLab, Azure DevOps) show findings.
// Every check is a rule; every check run is a result whose `kind` says pass / fail /
// notApplicable, and only bypasses carry a warning or error level.
import type { CheckResult, Severity } from '../checks/types.js';
import type { AuditReport } from '../report.js';

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
};

// GitHub reads this property to rank security findings (0.0–10.0).
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0' };

export function renderSarif(report: AuditReport): string {
  const rules = report.results.map((r) => ({
    id: r.id,
    name: r.title,
    shortDescription: { text: r.title },
    fullDescription: { text: r.description },
    help: { text: r.fixHint, markdown: `**Fix:** ${r.fixHint}\n\nReferences: ${r.references.join(', ')}` },
    defaultConfiguration: { level: LEVEL[r.severity] },
    properties: { tags: ['security', 'authentication', 'mfa', ...r.references], 'security-severity': SECURITY_SEVERITY[r.severity] },
  }));
  const results = report.results.map((r, ruleIndex) => ({
    ruleId: r.id,
    ruleIndex,
    ...resultKind(r),
    message: { text: r.summary },
    locations: [
      {
        physicalLocation: { artifactLocation: { uri: report.target } },
        logicalLocations: [{ name: report.profile, kind: 'module' }],
      },
    ],
    properties: {
      status: r.status,
      severity: r.severity,
      evidence: r.evidence.map((e) => `${e.request.method} ${e.request.url} → ${e.response?.status ?? e.error ?? '?'}`),
    },
  }));
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: report.tool.name, version: report.tool.version, rules } },
        invocations: [
          {
            executionSuccessful: report.exitCode !== 2,
            startTimeUtc: report.startedAt,
            endTimeUtc: report.finishedAt,
            ...(report.aborted ? { toolExecutionNotifications: [{ level: 'error', message: { text: report.aborted } }] } : {}),
          },
        ],
        results,
      },
    ],
  };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}

function resultKind(r: CheckResult): { kind: string; level: string } {
  switch (r.status) {
    case 'bypassed':
      return { kind: 'fail', level: LEVEL[r.severity] };
    case 'blocked':
      return { kind: 'pass', level: 'none' };
    case 'not_applicable':
      return { kind: 'notApplicable', level: 'none' };
    case 'inconclusive':
    case 'error':
      return { kind: 'review', level: 'none' };
  }
}
