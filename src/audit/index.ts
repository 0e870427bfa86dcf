// Library entry for the auditor. It depends on nothing in Gatehouse: only Node built-ins
// and npm packages, and it reaches its target over HTTP.
export { runAudit, selectedChecks, type AuditListener, type AuditOptions } from './runner.js';
export { loadProfile, parseProfile, ProfileError, type Profile, type ProfileInput } from './profile.js';
export { allChecks } from './checks/index.js';
export type { Check, CheckResult, Severity, Status } from './checks/types.js';
export { AUDITOR_VERSION, type AuditReport } from './report.js';
export { renderJson } from './reports/json.js';
export { renderSarif } from './reports/sarif.js';
export { renderHtml } from './reports/html.js';
export { renderSummary } from './reports/terminal.js';
export { renderPlan } from './plan.js';
export { auditCommand } from './command.js';
