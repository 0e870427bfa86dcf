// `gatehouse audit`: argument parsing, profile loading, running, writing the reports.
// Returns the exit code instead of exiting, so tests can call it in-process too.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadProfile, ProfileError, type Profile } from './profile.js';
import { renderPlan } from './plan.js';
import { renderHtml } from './reports/html.js';
import { renderJson } from './reports/json.js';
import { renderSarif } from './reports/sarif.js';
import { createProgressPrinter, renderSummary, type Output } from './reports/terminal.js';
import { runAudit } from './runner.js';
import { initCommand } from './draft/command.js';

export const AUDIT_USAGE = `Usage: gatehouse-audit --target URL --profile FILE|builtin:NAME [options]
       (the same as: gatehouse audit ...)
       gatehouse-audit init (--openapi FILE|URL | --har FILE) [--out FILE]   (drafts a profile)

Runs known MFA-bypass attacks against TARGET with the test accounts in the profile.

Options:
  --target URL        origin of the app under test (the only host contacted)
  --profile FILE      target profile, JSON or YAML (see docs/audit.md), or builtin:gatehouse
  --report FILE       write the JSON report
  --sarif FILE        write a SARIF 2.1.0 report
  --html FILE         write a single-file HTML report
  --only ID,ID        run only these checks (and the checks they build on)
  --provision         create the test accounts first (the profile's accountSetup:
                      sign-up and enrolment); for test deployments only
  --dry-run           print the plan and exit without sending requests
  -h, --help          this text

Exit codes: 0 nothing got through, 1 something did, 2 the audit could not run.
`;

export interface CommandIO {
  stdout: Output;
  stderr: Output;
}

const defaultIO: CommandIO = { stdout: process.stdout, stderr: process.stderr };

export async function auditCommand(argv: string[], io: CommandIO = defaultIO): Promise<number> {
  if (argv[0] === 'init') return initCommand(argv.slice(1), io);
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        target: { type: 'string' },
        profile: { type: 'string' },
        report: { type: 'string' },
        sarif: { type: 'string' },
        html: { type: 'string' },
        only: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        provision: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr.write(`gatehouse audit: ${(err as Error).message}\n\n${AUDIT_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(AUDIT_USAGE);
    return 0;
  }
  const fail = (reason: string) => {
    io.stderr.write(`gatehouse audit: cannot run: ${reason}\n`);
    return 2;
  };
  if (!args.target) return fail('--target URL is required');
  if (!args.profile) return fail('--profile FILE is required');
  let target: URL;
  try {
    target = new URL(args.target);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    return fail(`--target must be an http(s) URL, got ${JSON.stringify(args.target)}`);
  }
  let profile: Profile;
  try {
    profile = await loadProfile(args.profile, args.provision ? { provision: true } : undefined);
  } catch (err) {
    if (err instanceof ProfileError) return fail(err.message);
    throw err;
  }
  const only = args.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

  try {
    if (args['dry-run']) {
      io.stdout.write(renderPlan(target.href, profile, only));
      return 0;
    }
    const printer = createProgressPrinter(io.stdout);
    const report = await runAudit({ target: target.href, profile, listener: printer, ...(only ? { only } : {}) }).finally(() =>
      printer.stop(),
    );
    io.stdout.write(renderSummary(report, io.stdout.isTTY === true));
    const outputs: [string | undefined, string][] = [
      [args.report, renderJson(report)],
      [args.sarif, renderSarif(report)],
      [args.html, renderHtml(report)],
    ];
    for (const [file, content] of outputs) {
      if (file) {
        await writeFile(file, content);
        io.stdout.write(`wrote ${file}\n`);
      }
    }
    if (report.aborted) io.stderr.write(`gatehouse audit: ${report.aborted}\n`);
    return report.exitCode;
  } catch (err) {
    return fail((err as Error).message);
  }
}
