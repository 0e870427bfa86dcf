/** WebAuthn credentials (public data) and challenges (hashed, single use). */
import type { Kysely, Transaction } from 'kysely';
import type { Database, WebAuthnCredentialRow } from './schema.js';
import { lockSession } from './sessions.js';

export class WebAuthnStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Only credentials whose factor is confirmed (always, today) count. */
  listForUser(userId: string): Promise<(WebAuthnCredentialRow & { label: string | null; created_at: number })[]> {
    return this.db
      .selectFrom('webauthn_credentials')
      .innerJoin('factors', 'factors.id', 'webauthn_credentials.factor_id')
      .selectAll('webauthn_credentials')
      .select(['factors.label', 'factors.created_at'])
      .where('webauthn_credentials.user_id', '=', userId)
      .where('factors.confirmed_at', 'is not', null)
      .orderBy('factors.created_at', 'asc')
      .execute();
  }

  findForUser(userId: string, credentialId: string): Promise<WebAuthnCredentialRow | undefined> {
    return this.db
      .selectFrom('webauthn_credentials')
      .innerJoin('factors', 'factors.id', 'webauthn_credentials.factor_id')
      .selectAll('webauthn_credentials')
      .where('webauthn_credentials.user_id', '=', userId)
      .where('webauthn_credentials.credential_id', '=', credentialId)
      .where('factors.confirmed_at', 'is not', null)
      .executeTakeFirst();
  }

  async credentialIdTaken(credentialId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('webauthn_credentials')
      .select('factor_id')
      .where('credential_id', '=', credentialId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async insert(trx: Transaction<Database> | Kysely<Database>, row: Omit<WebAuthnCredentialRow, 'sign_count_regressions'>): Promise<void> {
    await trx.insertInto('webauthn_credentials').values(row).execute();
  }

  /**
   * Records a successful use. The counter only moves if nobody moved it since we read it,
   * so two parallel assertions with the same counter cannot both win.
   */
  async recordUse(
    factorId: string,
    expectedCounter: number,
    update: { counter: number; backedUp: boolean; now: number },
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('webauthn_credentials')
      .set({ counter: update.counter, backed_up: update.backedUp ? 1 : 0, last_used_at: update.now })
      .where('factor_id', '=', factorId)
      .where('counter', '=', expectedCounter)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async recordRegression(factorId: string): Promise<void> {
    await this.db
      .updateTable('webauthn_credentials')
      .set((eb) => ({ sign_count_regressions: eb('sign_count_regressions', '+', 1) }))
      .where('factor_id', '=', factorId)
      .execute();
  }

  /**
   * One live challenge per session and purpose: a new one replaces the old. False when the
   * session has ended. The session row is locked first, as a session's ending does (its
   * DELETE cascades to the challenges): taking the old challenge first deadlocked against a
   * concurrent logout on PostgreSQL (found by the model search). Expired challenges of other
   * sessions are left to maintenance, for the same reason.
   */
  async putChallenge(row: {
    id: string;
    session_id: string;
    purpose: string;
    challenge_hash: string;
    expires_at: number;
  }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await lockSession(trx, row.session_id))) return false;
      await trx.deleteFrom('webauthn_challenges').where('session_id', '=', row.session_id).where('purpose', '=', row.purpose).execute();
      await trx
        .insertInto('webauthn_challenges')
        .values({ ...row, used_at: null })
        .execute();
      return true;
    });
  }

  /** Uses a challenge once: a conditional update, so a replay or a parallel use fails. */
  async consumeChallenge(sessionId: string, purpose: string, challengeHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('webauthn_challenges')
      .set({ used_at: now })
      .where('session_id', '=', sessionId)
      .where('purpose', '=', purpose)
      .where('challenge_hash', '=', challengeHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Deletes the credential of a passkey factor (before the factor row goes). */
  async deleteForFactor(trx: Transaction<Database> | Kysely<Database>, userId: string, factorId: string): Promise<void> {
    await trx.deleteFrom('webauthn_credentials').where('factor_id', '=', factorId).where('user_id', '=', userId).execute();
  }

  /** Deletes the challenges past their expiry (used or not); the number deleted. */
  async deleteExpiredChallenges(now: number): Promise<number> {
    const result = await this.db.deleteFrom('webauthn_challenges').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
