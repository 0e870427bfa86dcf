#!/usr/bin/env node
// `gatehouse-audit`: the auditor's own command, the same as `gatehouse audit`. It loads
// nothing of the server (no database driver, no keys).
import { auditCommand } from './command.js';
import { packageVersion } from './version.js';

const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-v') {
  process.stdout.write(`gatehouse-audit ${packageVersion()}\n`);
} else {
  auditCommand(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`gatehouse-audit: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
