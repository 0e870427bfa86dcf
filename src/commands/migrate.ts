/**
 * `gatehouse migrate`: applies pending database migrations as a step of its own (before
 * starting instances with GATEHOUSE_MIGRATE=off). On PostgreSQL the migrator holds an
 * advisory lock, so it is safe next to instances that migrate themselves.
 */
import { loadConfig } from '../config.js';
import { migrateDatabase } from '../store/database.js';
import { describeStartupFailure } from './serve.js';

const HELP = `Usage: gatehouse migrate

Applies pending migrations to GATEHOUSE_DATABASE_URL (default: SQLite in GATEHOUSE_DATA_DIR)
and prints their names. Running it again is harmless.
`;

export async function migrateCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`gatehouse migrate: unknown option ${argv[0]}\n\n${HELP}`);
    return 2;
  }
  let config = null;
  try {
    config = loadConfig(process.env);
    const applied = await migrateDatabase(config.databaseUrl, {
      pool: { max: 1, connectTimeoutMs: config.databaseConnectTimeoutSeconds * 1000, statementTimeoutMs: 0 },
    });
    process.stdout.write(
      applied.length === 0 ? 'database schema is up to date\n' : `applied ${applied.length} migration(s): ${applied.join(', ')}\n`,
    );
    return 0;
  } catch (err) {
    const line = describeStartupFailure(err, config);
    if (line === null) throw err;
    process.stderr.write(`gatehouse: ${line}\n`);
    return 2;
  }
}
