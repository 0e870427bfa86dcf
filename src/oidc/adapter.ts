/**
 * oidc-provider's storage in Gatehouse's database (SQLite or PostgreSQL via Kysely):
 * authorization codes, tokens, grants, provider sessions and interactions are rows of
 * `oidc_payloads`; clients come from `oidc_clients` (and the clients file).
 *
 * Single use: `consume` is a conditional UPDATE; of two parallel redemptions of one code
 * only one marks it, the other is refused as invalid_grant.
 */
import type { Kysely, Transaction } from 'kysely';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../store/schema.js';
import type { ClientRegistry } from './clients.js';
import { withOidcTables, type OidcDb } from './schema.js';

/** The account a payload belongs to, for revocation by account. */
function accountOf(payload: AdapterPayload): string | null {
  if (typeof payload.accountId === 'string') return payload.accountId;
  const nested = (payload as { session?: { accountId?: unknown } }).session?.accountId;
  return typeof nested === 'string' ? nested : null;
}

export class KyselyAdapter implements Adapter {
  private readonly db: OidcDb;

  constructor(
    private readonly model: string,
    db: Kysely<Database>,
    private readonly clients: ClientRegistry,
    private readonly now: () => number = Date.now,
  ) {
    this.db = withOidcTables(db);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    if (this.model === 'Client') throw new Error('clients are registered with `gatehouse clients add`, not over the provider');
    const row = {
      payload: JSON.stringify(payload),
      grant_id: typeof payload.grantId === 'string' ? payload.grantId : null,
      uid: typeof payload.uid === 'string' ? payload.uid : null,
      user_code: typeof payload.userCode === 'string' ? payload.userCode : null,
      account_id: accountOf(payload),
      expires_at: expiresIn ? this.now() + expiresIn * 1000 : null,
    };
    await this.db
      .insertInto('oidc_payloads')
      .values({ model: this.model, id, consumed_at: null, ...row })
      .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet(row))
      .execute();
  }

  private async findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    const row = await this.db
      .selectFrom('oidc_payloads')
      .select(['payload', 'expires_at', 'consumed_at'])
      .where('model', '=', this.model)
      .where(column, '=', value)
      .executeTakeFirst();
    if (!row) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= this.now()) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
    return payload;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.model === 'Client') return this.clients.find(id);
    return this.findWhere('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    const result = await this.db
      .updateTable('oidc_payloads')
      .set({ consumed_at: this.now() })
      .where('model', '=', this.model)
      .where('id', '=', id)
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) throw new errors.InvalidGrant('grant request is invalid');
  }

  async destroy(id: string): Promise<void> {
    await this.db.deleteFrom('oidc_payloads').where('model', '=', this.model).where('id', '=', id).execute();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db.deleteFrom('oidc_payloads').where('grant_id', '=', grantId).execute();
  }
}

/**
 * Deletes every grant, code, token and provider session of an account: its refresh tokens
 * stop working at once (factor removed, password changed or reset).
 */
export async function revokeAccountGrants(trx: Transaction<Database> | Kysely<Database>, userId: string): Promise<void> {
  await withOidcTables(trx as Kysely<Database>)
    .deleteFrom('oidc_payloads')
    .where('account_id', '=', userId)
    .execute();
}

/**
 * Deletes rows whose expiry has passed (run with the other maintenance).
 * @public TODO(lead): nothing calls it yet (knip found it): MaintenanceService does not purge
 * expired OIDC rows, so they accumulate (each is refused on read all the same).
 */
export async function purgeExpired(db: Kysely<Database>, now: number): Promise<number> {
  const r = await withOidcTables(db).deleteFrom('oidc_payloads').where('expires_at', '<=', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
