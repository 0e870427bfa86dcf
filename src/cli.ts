#!/usr/bin/env node
// The `gatehouse` command. Each subcommand is an async function from its arguments to an
// exit code; to add one (e.g. `rotate-key`), add an entry to `commands`.
import { auditCommand } from './audit/command.js';
import { packageVersion } from './audit/version.js';

type Command = { summary: string; run(argv: string[]): Promise<number> };

// Commands that need the server's modules (database, keys) are imported when they run,
// so `gatehouse audit` stays a plain HTTP client that never loads the database driver.
const commands: Record<string, Command> = {
  serve: {
    summary: 'run the server in the foreground (what `npm start` runs); SIGTERM drains and exits 0',
    run: async (argv) => (await import('./commands/serve.js')).serveCommand(argv),
  },
  migrate: {
    summary: 'apply pending database migrations (then instances may run with GATEHOUSE_MIGRATE=off)',
    run: async (argv) => (await import('./commands/migrate.js')).migrateCommand(argv),
  },
  config: {
    summary: 'check the GATEHOUSE_* environment; --docs prints the table of variables',
    run: async (argv) => (await import('./commands/config.js')).configCommand(argv),
  },
  audit: { summary: 'run MFA-bypass attacks against a web app and report what got through', run: auditCommand },
  keygen: {
    summary: 'print a new GATEHOUSE_SECRET_KEY (256 random bits, base64url)',
    run: async () => {
      process.stdout.write(`${(await import('./services/keys.js')).generateSecretKey()}\n`);
      return 0;
    },
  },
  'rotate-key': {
    summary: 're-encrypt factor secrets under GATEHOUSE_SECRET_KEY (old keys in GATEHOUSE_PREVIOUS_SECRET_KEYS)',
    run: async (argv) => (await import('./commands/rotate-key.js')).rotateKeyCommand(argv),
  },
  doctor: {
    summary: 'list stored e-mail addresses (accounts, pending changes, queued mail) that the address rules refuse; changes nothing',
    run: async (argv) => (await import('./commands/doctor.js')).doctorCommand(argv),
  },
  clients: {
    summary: 'register, list and remove relying parties of the OpenID Provider (/oidc)',
    run: async (argv) => (await import('./commands/oidc.js')).clientsCommand(argv),
  },
  admin: {
    summary: 'roles, sessions and lockouts of an account; reset its second factors (signed in as an admin)',
    run: async (argv) => (await import('./commands/admin.js')).adminCommand(argv),
  },
  'oidc-keys': {
    summary: 'rotate the OpenID Provider signing keys',
    run: async (argv) => (await import('./commands/oidc.js')).oidcKeysCommand(argv),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `Usage: gatehouse <command> [options]\n       gatehouse --version\n\nCommands:\n${list}\n\nRun "gatehouse <command> --help" for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`gatehouse ${packageVersion()}\n`);
    return 0;
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`gatehouse: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gatehouse: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
