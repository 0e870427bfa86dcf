/** Kysely table types of the OIDC provider (migration 0011_oidc). */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';

export interface OidcPayloadsTable {
  model: string;
  id: string;
  /** The model's JSON payload (oidc-provider's shape). */
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  account_id: string | null;
  expires_at: number | null;
  consumed_at: number | null;
}

export interface OidcSigningKeysTable {
  kid: string;
  generation: number;
  alg: string;
  /** Private JWK, SecretBox-sealed under `oidcKeyContext(kid)`. */
  jwk_enc: string;
  created_at: number;
  retired_at: number | null;
}

export interface OidcClientsTable {
  client_id: string;
  /** SecretBox-sealed client secret; null for public clients. */
  secret_enc: string | null;
  /** JSON client metadata (RFC 7591 names), without the secret. */
  metadata: string;
  created_at: number;
}

// A type alias (not an interface) so Kysely's withTables sees an indexable record.
export type OidcTables = {
  oidc_payloads: OidcPayloadsTable;
  oidc_signing_keys: OidcSigningKeysTable;
  oidc_clients: OidcClientsTable;
};

export type OidcDb = Kysely<Database & OidcTables>;

export const withOidcTables = (db: Kysely<Database>): OidcDb => db.withTables<OidcTables>();
