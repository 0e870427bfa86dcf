// --dry-run: what the audit would do, without sending a single request.
import { describeExtractor, extractorOf } from './extract.js';
import type { FetchFirst, Profile } from './profile.js';
import { selectedChecks } from './runner.js';

export function renderPlan(target: string, profile: Profile, only?: readonly string[]): string {
  const origin = new URL(target).origin;
  const s = profile.safety;
  const checks = selectedChecks(only);
  const recoveryCodes = profile.accounts[0]?.recoveryCodes.length ?? 0;
  const lines = [
    `Audit plan for "${profile.name}" against ${origin} (dry run: nothing is sent)`,
    '',
    `Safety: requests only to ${origin}; at most ${s.maxRequests} requests; at most ${s.requestsPerSecond} per second;`,
    `        account-changing checks ${s.allowAccountChanges ? 'ALLOWED (safety.allowAccountChanges: true)' : 'skipped (set safety.allowAccountChanges: true to run them)'}.`,
    `Accounts: ${profile.accounts.map((a) => a.username).join(', ') || '(none given)'}; recovery codes available: ${recoveryCodes}.`,
    ...provisioningNote(profile),
    ...(!profile.provision && recoveryCodes < 8
      ? ['Note: with fewer than 8 recovery codes some logins wait for a new TOTP step (up to 30 s each).']
      : []),
    '',
    'Preflight:',
    `  - ${profile.whoami.method} ${profile.whoami.path} without a session (must be refused)`,
    `  - ${fetchFirstNote(profile.login)}${profile.login.method} ${profile.login.path} with the password, then a second-factor code`,
    `  - ${profile.whoami.method} ${profile.whoami.path} with the full session (must succeed)`,
    ...profile.sensitiveActions.flatMap((a) =>
      Object.entries(a.params ?? {}).map(
        ([n, l]) => `  - ${l.method} ${l.path} to look up {${n}} (${describeExtractor(extractorOf(l, l.field))})`,
      ),
    ),
    '',
  ];
  const steps = [
    ['login', profile.login],
    ['secondFactor.totp', profile.secondFactor.totp],
    ['secondFactor.recoveryCode', profile.secondFactor.recoveryCode],
    ...profile.sensitiveActions.map((a) => [a.name, a] as const),
    ['passwordReset.request', profile.passwordReset?.request],
    ['passwordReset.reset', profile.passwordReset?.reset],
    ['tokenLogin', profile.tokenLogin],
  ] as const;
  const fetching = steps.filter(([, s]) => s?.fetchFirst);
  if (fetching.length) {
    lines.push('Before each request of these steps, a page is fetched in the same session and values are carried over:');
    for (const [label, s] of fetching) lines.push(`  - ${label}: ${fetchFirstNote(s ?? {}).replace(/, then $/, '')}`);
    lines.push('');
  }
  const width = String(checks.length).length;
  for (const [i, check] of checks.entries()) {
    const head = `[${String(i + 1).padStart(width)}/${checks.length}] ${check.id}: ${check.title} (${check.severity})`;
    const reason = check.notApplicable(profile);
    if (reason) {
      lines.push(`${head}: not applicable, ${reason}`);
      continue;
    }
    lines.push(head, ...check.plan(profile).map((step) => `      - ${step}`));
  }
  return `${lines.join('\n')}\n`;
}

function provisioningNote(profile: Profile): string[] {
  const setup = profile.accountSetup;
  if (!profile.provision || !setup) return [];
  const missing = Math.max(0, setup.count - profile.accounts.length);
  return [
    `Provisioning (provision: true): first creates ${missing} account(s) (${setup.username}), each with:`,
    ...setup.steps.map((st) => `  - ${st.method} ${st.path}${st.capture ? ` (capture ${Object.keys(st.capture).join(', ')})` : ''}`),
  ];
}

/** "GET /login (<input name="csrf"> → field csrf), then " or "". */
function fetchFirstNote(step: { fetchFirst?: FetchFirst | undefined }): string {
  const f = step.fetchFirst;
  if (!f) return '';
  const values = f.values.map(
    (v) => `${describeExtractor(extractorOf(v))} → ${v.field !== undefined ? `field ${v.field}` : `header ${v.header}`}`,
  );
  return `GET ${f.path} (${values.join(', ')}), then `;
}
