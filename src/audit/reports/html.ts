// A single self-contained HTML file (inline CSS, no scripts, no external assets) that a
// security lead can forward. Every value from the target or the profile goes through
// escapeHtml: a hostile target must not be able to script the report.
import type { CheckResult, Status } from '../checks/types.js';
import type { Exchange } from '../http-client.js';
import type { AuditReport } from '../report.js';

export function escapeHtml(value: unknown): string {
  return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const STATUS_TEXT: Record<Status, string> = {
  blocked: 'Blocked',
  bypassed: 'Bypassed',
  not_applicable: 'Not applicable',
  inconclusive: 'Inconclusive: limited',
  error: 'Could not conclude',
};

const CSS = `
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.s{font-weight:600;padding:.1rem .5rem;border-radius:3px;white-space:nowrap}.blocked{background:#dff5e1;color:#1b5e20}
.bypassed{background:#fde0e0;color:#b71c1c}.not_applicable{background:#eee;color:#555}.error,.inconclusive{background:#fff3cd;color:#7a5b00}
section{border:1px solid #ddd;border-radius:6px;padding:0 1rem 1rem;margin:1.5rem 0}section.bypassed{border-color:#e57373;background:#fff}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;white-space:pre-wrap;word-break:break-all;font-size:12.5px}
details{margin:.4rem 0}summary{cursor:pointer}.meta{color:#666}`;

export function renderHtml(report: AuditReport): string {
  const c = report.counts;
  const verdict =
    report.exitCode === 1
      ? 'Something got through.'
      : report.exitCode === 2
        ? 'The audit could not run completely.'
        : 'Nothing got through.';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>MFA audit: ${escapeHtml(report.profile)}</title><style>${CSS}</style></head><body>
<h1>MFA bypass audit</h1>
<p class="meta">Target <b>${escapeHtml(report.target)}</b> · profile ${escapeHtml(report.profile)} · ${escapeHtml(report.startedAt)} ·
${escapeHtml(report.requestCount)} requests in ${escapeHtml((report.durationMs / 1000).toFixed(1))}s · ${escapeHtml(report.tool.name)} ${escapeHtml(report.tool.version)}</p>
<h2>Summary</h2>
<p><b>${escapeHtml(verdict)}</b> ${c.bypassed} bypassed, ${c.blocked} blocked, ${c.not_applicable} not applicable, ${c.inconclusive} inconclusive (limited), ${c.error} could not conclude.</p>
${report.aborted ? `<p class="s error">${escapeHtml(report.aborted)}</p>` : ''}
<table><thead><tr><th>Check</th><th>Severity</th><th>Result</th><th>Summary</th></tr></thead><tbody>
${report.results.map(summaryRow).join('\n')}
</tbody></table>
${report.results.map(section).join('\n')}
${report.preflight.length ? `<h2>Preflight</h2><p>Requests that proved the profile works before any check ran.</p>${report.preflight.map(exchange).join('\n')}` : ''}
<p class="meta">Secrets (passwords, codes, cookies, tokens) are masked in this report.</p>
</body></html>
`;
}

function summaryRow(r: CheckResult): string {
  return (
    `<tr><td><a href="#${escapeHtml(r.id)}">${escapeHtml(r.id)}</a></td><td>${escapeHtml(r.severity)}</td>` +
    `<td><span class="s ${r.status}">${STATUS_TEXT[r.status]}</span></td><td>${escapeHtml(r.summary)}</td></tr>`
  );
}

function section(r: CheckResult): string {
  return `<section id="${escapeHtml(r.id)}" class="${r.status}">
<h2>${escapeHtml(r.title)} <span class="s ${r.status}">${STATUS_TEXT[r.status]}</span></h2>
<p class="meta">${escapeHtml(r.id)} · severity ${escapeHtml(r.severity)} · ${r.references.map(escapeHtml).join(', ')}</p>
<p>${escapeHtml(r.description)}</p>
<p><b>Result:</b> ${escapeHtml(r.summary)}</p>
${r.why ? `<p><b>Why:</b> ${escapeHtml(r.why)}</p>` : ''}
<p><b>Fix:</b> ${escapeHtml(r.fixHint)}</p>
${r.evidence.length ? `<h3>Evidence (${r.evidence.length} requests)</h3>${r.evidence.map(exchange).join('\n')}` : ''}
</section>`;
}

function exchange(e: Exchange): string {
  const req = [`${e.request.method} ${e.request.url}`, ...headerLines(e.request.headers), '', e.request.body ?? ''].join('\n');
  const res = e.response
    ? [`HTTP ${e.response.status}`, ...headerLines(e.response.headers), '', e.response.body].join('\n')
    : `no response: ${e.error ?? 'unknown error'}`;
  const status = e.response ? String(e.response.status) : 'failed';
  return `<details><summary>${escapeHtml(e.note)}: ${escapeHtml(e.request.method)} ${escapeHtml(new URL(e.request.url).pathname)} → ${escapeHtml(status)}</summary>
<pre>${escapeHtml(req.trimEnd())}</pre><pre>${escapeHtml(res.trimEnd())}</pre></details>`;
}

function headerLines(headers: Record<string, string | string[]>): string[] {
  return Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`));
}
