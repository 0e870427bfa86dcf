// What a person watching the run sees: one line per check as it finishes (a spinner with
// elapsed time while a slow one runs, on a terminal), then a summary table.
import type { Check, CheckResult, Status } from '../checks/types.js';
import type { AuditReport } from '../report.js';
import type { AuditListener } from '../runner.js';

const LABEL: Record<Status, string> = {
  blocked: 'BLOCKED',
  bypassed: 'BYPASSED',
  not_applicable: 'N/A',
  inconclusive: 'LIMITED',
  error: 'ERROR',
};

const COLOR: Record<Status, string> = { blocked: '32', bypassed: '31;1', not_applicable: '2', inconclusive: '33', error: '33' };

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export function statusLabel(status: Status, color: boolean): string {
  return color ? `\x1b[${COLOR[status]}m${LABEL[status]}\x1b[0m` : LABEL[status];
}

export function createProgressPrinter(out: Output): AuditListener & { stop(): void } {
  const tty = out.isTTY === true;
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let timer: NodeJS.Timeout | undefined;
  let current = '';
  let startedAt = 0;
  const clearLine = () => tty && out.write('\r\x1b[2K');
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    clearLine();
  };
  const counter = (i: number, total: number) => `[${String(i + 1).padStart(String(total).length)}/${total}]`;
  return {
    stop,
    onPreflight(message) {
      out.write(`${message}\n`);
    },
    onCheckStart(check: Check, i, total) {
      current = `${counter(i, total)} ${check.id}`;
      startedAt = Date.now();
      if (!tty) return;
      let frame = 0;
      timer = setInterval(() => {
        const secs = ((Date.now() - startedAt) / 1000).toFixed(0);
        out.write(`\r\x1b[2K${frames[frame++ % frames.length]} ${current} … ${secs}s`);
      }, 100);
      timer.unref();
    },
    onWait(reason, ms) {
      // On a terminal the spinner already shows time passing; in CI logs, say why it is quiet.
      if (!tty) out.write(`        ${reason} (${(ms / 1000).toFixed(1)}s)\n`);
    },
    onCheckEnd(result: CheckResult, i, total) {
      stop();
      const dots = '.'.repeat(Math.max(2, 44 - result.id.length));
      out.write(
        `${counter(i, total)} ${result.id} ${dots} ${statusLabel(result.status, tty)} (${(result.durationMs / 1000).toFixed(1)}s)\n`,
      );
    },
  };
}

export function renderSummary(report: AuditReport, color = false): string {
  const rows = report.results.map((r) => [r.id, r.severity, statusLabel(r.status, color), r.summary] as const);
  const idWidth = Math.max(5, ...rows.map((r) => r[0].length));
  const lines = [
    '',
    `Target:  ${report.target}   Profile: ${report.profile}`,
    `Checks:  ${report.counts.bypassed} bypassed, ${report.counts.blocked} blocked, ` +
      `${report.counts.not_applicable} not applicable, ${report.counts.inconclusive} inconclusive (limited), ${report.counts.error} error ` +
      `(${report.requestCount} requests, ${(report.durationMs / 1000).toFixed(1)}s)`,
    '',
    `${'check'.padEnd(idWidth)}  ${'severity'.padEnd(8)}  ${'result'.padEnd(8)}  summary`,
    `${'-'.repeat(idWidth)}  --------  --------  -------`,
    ...rows.map(([id, sev, status, summary]) => {
      const pad = ' '.repeat(Math.max(0, 8 - stripAnsi(status).length));
      return `${id.padEnd(idWidth)}  ${sev.padEnd(8)}  ${status}${pad}  ${summary}`;
    }),
    '',
  ];
  if (report.aborted) lines.push(`The audit could not run completely: ${report.aborted}`, '');
  const verdict =
    report.exitCode === 1
      ? 'Result: something got through (exit 1).'
      : report.exitCode === 2
        ? 'Result: the audit could not run completely (exit 2).'
        : 'Result: nothing got through (exit 0).';
  lines.push(verdict, '');
  return lines.join('\n');
}

function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}
