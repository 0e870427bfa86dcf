/**
 * Federated identities (upstream issuer + subject → account) and the flows of upstream
 * sign-ins. A flow is taken once: a conditional UPDATE (`used_at IS NULL`, unexpired).
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, FederatedIdentitiesTable, FederationFlowsTable } from './schema.js';

export type FederationFlowRow = Selectable<FederationFlowsTable>;
export type FederatedIdentityRow = Selectable<FederatedIdentitiesTable>;
type Db = Kysely<Database> | Transaction<Database>;

export class FederationStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** One write transaction (an account created with its identity linked). */
  transaction<T>(run: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(run);
  }

  async insertFlow(row: FederationFlowRow): Promise<void> {
    await this.db.insertInto('federation_flows').values(row).execute();
  }

  /** The unused, unexpired flow of this kind, marked used by this call; null for anything else. */
  async takeFlow(
    handleHash: string,
    kind: FederationFlowRow['kind'],
    now: number,
    trx?: Transaction<Database>,
  ): Promise<FederationFlowRow | null> {
    const db: Db = trx ?? this.db;
    const taken = await db
      .updateTable('federation_flows')
      .set({ used_at: now })
      .where('handle_hash', '=', handleHash)
      .where('kind', '=', kind)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) !== 1) return null;
    return (await db.selectFrom('federation_flows').selectAll().where('handle_hash', '=', handleHash).executeTakeFirst()) ?? null;
  }

  /** Reads a flow without using it (the link page shows what it would link). */
  async peekFlow(handleHash: string, kind: FederationFlowRow['kind'], now: number): Promise<FederationFlowRow | null> {
    return (
      (await this.db
        .selectFrom('federation_flows')
        .selectAll()
        .where('handle_hash', '=', handleHash)
        .where('kind', '=', kind)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()) ?? null
    );
  }

  async findIdentity(issuer: string, subject: string): Promise<FederatedIdentityRow | null> {
    return (
      (await this.db
        .selectFrom('federated_identities')
        .selectAll()
        .where('issuer', '=', issuer)
        .where('subject', '=', subject)
        .executeTakeFirst()) ?? null
    );
  }

  /** False when the upstream identity is already linked (to this or another account). */
  async link(trx: Transaction<Database>, row: FederatedIdentityRow): Promise<boolean> {
    const r = await trx
      .insertInto('federated_identities')
      .values(row)
      .onConflict((oc) => oc.columns(['issuer', 'subject']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async unlink(trx: Transaction<Database>, userId: string, id: string): Promise<boolean> {
    const r = await trx.deleteFrom('federated_identities').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  listFor(userId: string): Promise<FederatedIdentityRow[]> {
    return this.db.selectFrom('federated_identities').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  }

  async deleteExpired(now: number): Promise<number> {
    const r = await this.db.deleteFrom('federation_flows').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
