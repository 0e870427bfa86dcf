import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export class KeyFingerprintStore {
  constructor(private readonly db: Kysely<Database>) {}

  async all(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('key_fingerprints').select('fingerprint').execute();
    return new Set(rows.map((r) => r.fingerprint));
  }

  async add(fingerprint: string, now: number): Promise<void> {
    await this.db
      .insertInto('key_fingerprints')
      .values({ fingerprint, created_at: now })
      .onConflict((oc) => oc.column('fingerprint').doNothing())
      .execute();
  }

  /** One stored ciphertext (a TOTP secret), to see which key wrote it; null when none. */
  async sampleCiphertext(): Promise<string | null> {
    const row = await this.db.selectFrom('factors').select('secret_enc').where('secret_enc', 'is not', null).limit(1).executeTakeFirst();
    return row?.secret_enc ?? null;
  }
}
