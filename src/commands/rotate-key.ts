/**
 * `gatehouse rotate-key`: re-encrypts every secret sealed with an older key under the
 * current GATEHOUSE_SECRET_KEY (TOTP secrets, queued mail bodies).
 *
 * Rotation, step by step (docs/security.md, "Key rotation"):
 *   1. set GATEHOUSE_SECRET_KEY to the new key and GATEHOUSE_PREVIOUS_SECRET_KEYS to the old
 *      one(s); restart: old ciphertexts still decrypt, new writes use the new key;
 *   2. run `gatehouse rotate-key` (same environment): everything encrypted is re-sealed;
 *   3. recovery codes are keyed hashes (HMAC) and cannot be re-keyed: they keep verifying
 *      under the previous key for as long as it stays in GATEHOUSE_PREVIOUS_SECRET_KEYS.
 *      Drop the old key only once those codes are used up or regenerated (or accept that
 *      they stop working and users regenerate them after signing in with their TOTP).
 *
 * Each row is replaced with a conditional UPDATE (only if its ciphertext is unchanged), so
 * running it against live servers is safe, and running it twice is harmless.
 */
import { loadConfig } from '../config.js';
import { bodyContext } from '../mail/outbox.js';
import { assertKeyMatchesData, resolveSecretKey, SecretBox } from '../services/keys.js';
import { KeyFingerprintStore } from '../store/key-fingerprints.js';
import { totpSecretContext } from '../services/second-factor.js';
import { openDatabase } from '../store/database.js';

export interface RotationReport {
  factors: { checked: number; reencrypted: number; failed: number };
  mail: { checked: number; reencrypted: number; failed: number };
  unusedRecoveryCodes: number;
}

const HELP = `Usage: gatehouse rotate-key [--dry-run]

Re-encrypts all factor secrets (and queued mail) under GATEHOUSE_SECRET_KEY. Keys that
sealed existing rows must be listed in GATEHOUSE_PREVIOUS_SECRET_KEYS (comma-separated).
Uses the same environment as the server (GATEHOUSE_DATABASE_URL, GATEHOUSE_DATA_DIR).

  --dry-run   count what would be re-encrypted, change nothing
`;

export async function rotateKeys(env: NodeJS.ProcessEnv = process.env, options: { dryRun?: boolean } = {}): Promise<RotationReport> {
  const config = loadConfig(env);
  const secret = resolveSecretKey(config.secretKey, config.dataDir);
  const box = new SecretBox(secret.key, config.previousSecretKeys);
  const database = await openDatabase(config.databaseUrl);
  const { db } = database;
  const report: RotationReport = {
    factors: { checked: 0, reencrypted: 0, failed: 0 },
    mail: { checked: 0, reencrypted: 0, failed: 0 },
    unusedRecoveryCodes: 0,
  };
  try {
    // The same check as at start-up (refuses a key that did not write this data); it also
    // records the new key's fingerprint, so instances may later run on it alone.
    if (!options.dryRun) await assertKeyMatchesData(new KeyFingerprintStore(db), box, secret.key, config.previousSecretKeys, Date.now());
    const factors = await db.selectFrom('factors').select(['id', 'secret_enc']).where('secret_enc', 'is not', null).execute();
    for (const row of factors) {
      report.factors.checked++;
      if (!row.secret_enc || !box.isStale(row.secret_enc)) continue;
      try {
        const context = totpSecretContext(row.id);
        const sealed = box.encrypt(box.decrypt(row.secret_enc, context), context);
        if (!options.dryRun) {
          await db
            .updateTable('factors')
            .set({ secret_enc: sealed })
            .where('id', '=', row.id)
            .where('secret_enc', '=', row.secret_enc)
            .execute();
        }
        report.factors.reencrypted++;
      } catch {
        report.factors.failed++;
      }
    }

    // Sent and failed mail keeps no body (markSent/markFailed empty it): only queued mail
    // has something to re-seal.
    const mails = await db
      .selectFrom('mail_outbox')
      .select(['id', 'body_enc'])
      .where('status', '=', 'pending')
      .where('body_enc', '!=', '')
      .execute();
    for (const row of mails) {
      report.mail.checked++;
      if (!box.isStale(row.body_enc)) continue;
      try {
        const sealed = box.encrypt(box.decrypt(row.body_enc, bodyContext(row.id)), bodyContext(row.id));
        if (!options.dryRun) {
          await db
            .updateTable('mail_outbox')
            .set({ body_enc: sealed })
            .where('id', '=', row.id)
            .where('body_enc', '=', row.body_enc)
            .execute();
        }
        report.mail.reencrypted++;
      } catch {
        report.mail.failed++;
      }
    }

    const codes = await db
      .selectFrom('recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    report.unusedRecoveryCodes = Number(codes.n);
  } finally {
    await database.close();
  }
  return report;
}

export async function rotateKeyCommand(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--dry-run');
  if (unknown.length) {
    process.stderr.write(`gatehouse rotate-key: unknown option ${unknown[0]}\n\n${HELP}`);
    return 2;
  }
  const dryRun = argv.includes('--dry-run');
  const r = await rotateKeys(process.env, { dryRun });
  const verb = dryRun ? 'would re-encrypt' : 're-encrypted';
  process.stdout.write(
    `factor secrets: ${r.factors.checked} checked, ${verb} ${r.factors.reencrypted}, ${r.factors.failed} could not be decrypted\n` +
      `queued mail:    ${r.mail.checked} checked, ${verb} ${r.mail.reencrypted}, ${r.mail.failed} could not be decrypted\n` +
      `recovery codes: ${r.unusedRecoveryCodes} unused. They are keyed hashes and cannot be re-keyed: keep the old key in\n` +
      `                GATEHOUSE_PREVIOUS_SECRET_KEYS until they are used or regenerated.\n`,
  );
  if (r.factors.failed || r.mail.failed) {
    process.stderr.write('Some rows could not be decrypted: is every old key listed in GATEHOUSE_PREVIOUS_SECRET_KEYS?\n');
    return 1;
  }
  return 0;
}
