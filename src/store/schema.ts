/**
 * Table types for Kysely. Times are epoch milliseconds (bigint columns), booleans are
 * 0/1 integers and JSON is stored as text, so the same queries run on SQLite and
 * PostgreSQL.
 */
import type { ColumnType, Generated, Selectable } from 'kysely';

export interface UsersTable {
  id: string;
  email: string;
  email_normalized: string;
  password_hash: string;
  /** JSON array of second-factor methods the account has, kept in step with `factors`. */
  factor_methods: string;
  /**
   * Counts the account's security changes (factors, password, e-mail). A factor set-up
   * begun in an earlier epoch is void.
   */
  security_epoch: ColumnType<number, number | undefined, number>;
  /** JSON array of role names (core/role-policy.ts). */
  roles: ColumnType<string, string | undefined, string>;
  /** When a role's `required` stops being optional for this account (grace end); null: not subject yet. */
  mfa_due_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** An admin reset the factors; until the mailed recovery link is used, the password signs nobody in. */
  factors_reset_at: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: number;
  updated_at: number;
}

/** A session token replaced moments ago: logout alone accepts it until `until` (migration 0014). */
export interface ReplacedSessionTokensTable {
  token_hash: string;
  session_id: string;
  until: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: string;
  state: string;
  /** JSON array of AuthMethod. */
  amr: string;
  transport: string;
  auth_time: number;
  password_at: number | null;
  mfa_at: number | null;
  /** Last user-verified WebAuthn check in this session (phishing-resistant freshness). */
  webauthn_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** Second-factor attempts reserved in this pending session. */
  mfa_attempts: Generated<number>;
  /** JSON `SessionRisk` (services/policy.ts): the signals at sign-in and what they raised; null: none recorded. */
  risk: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1 when the user asked to be remembered: a remember-me token is issued once full. */
  remember: Generated<number>;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string;
  user_agent: string;
}

export interface FactorsTable {
  id: string;
  user_id: string;
  type: string;
  /** Encrypted secret (SecretBox format). */
  secret_enc: string | null;
  /** Highest TOTP time step accepted; codes of this step and earlier are refused. */
  last_used_step: number | null;
  confirmed_at: number | null;
  created_at: number;
  label: string | null;
}

/**
 * An unconfirmed factor set-up: a TOTP secret or a passkey registration challenge. It
 * belongs to the session that began it and the account epoch it began in, and expires.
 */
export interface FactorSetupsTable {
  /** Becomes the factor's id when confirmed (the TOTP secret is encrypted under it). */
  id: string;
  user_id: string;
  session_id: string;
  type: string;
  /** TOTP: the encrypted secret (SecretBox format). */
  secret_enc: string | null;
  /** WebAuthn: SHA-256 of the registration challenge. */
  challenge_hash: string | null;
  account_epoch: number;
  created_at: number;
  expires_at: number;
}

export interface RecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  used_at: number | null;
  created_at: number;
}

export interface EventsTable {
  id: string;
  user_id: string | null;
  type: string;
  at: number;
  ip: string;
  user_agent: string;
  /** JSON object, never secrets. */
  details: string;
}

export interface RememberTokensTable {
  id: string;
  user_id: string;
  /** Chain id: every rotation of one remember-me keeps it; a replay revokes the family. */
  family_id: string;
  token_hash: string;
  session_id: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
  /** Why the chain ended (`RevokeReason`); null on rows revoked before 0006. */
  revoked_reason: string | null;
  /** When a replay of this chain was last notified (one mail per burst). */
  alarmed_at: number | null;
  ip: string;
  user_agent: string;
}

export interface TrustedDevicesTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number;
  ip: string;
  user_agent: string;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  /** JSON array of Scope. */
  scopes: string;
  created_at: number;
  last_used_at: number | null;
}

/** A pending e-mail change: confirmed by the token mailed to the new address. */
export interface EmailChangesTable {
  id: string;
  user_id: string;
  new_email: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/**
 * The cancel link of one e-mail change, mailed to the old address: voids that change and
 * signs out the session that asked for it (`session_id`).
 */
export interface EmailChangeCancelsTable {
  id: string;
  user_id: string;
  change_id: string;
  session_id: string | null;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface PasswordResetsTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** Mail waiting to go out (or sent); the body is encrypted (it may carry a link token). */
export interface MailOutboxTable {
  id: string;
  user_id: string | null;
  event_type: string;
  to_address: string;
  subject: string;
  body_enc: string;
  status: string;
  attempts: Generated<number>;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  sent_at: number | null;
}

/** A one-time recovery link after an admin reset an account's factors (hashed, single use, expiring). */
export interface AccountRecoveriesTable {
  id: string;
  user_id: string;
  token_hash: string;
  /** The admin who reset the factors. */
  admin_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface KeyFingerprintsTable {
  fingerprint: string;
  created_at: number;
}

/** An upstream OpenID Provider identity linked to an account (federated login). */
export interface FederatedIdentitiesTable {
  id: string;
  user_id: string;
  /** The configured upstream's name. */
  upstream: string;
  issuer: string;
  subject: string;
  email: string | null;
  created_at: number;
}

/** An upstream sign-in in progress or a link waiting for the account's own factors. */
export interface FederationFlowsTable {
  handle_hash: string;
  kind: 'authorizing' | 'link_pending';
  upstream: string;
  /** Sealed JSON { state, nonce, verifier } (authorizing only). */
  checks_enc: string | null;
  issuer: string | null;
  subject: string | null;
  email: string | null;
  target_user_id: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  replaced_session_tokens: ReplacedSessionTokensTable;
  factors: FactorsTable;
  factor_setups: FactorSetupsTable;
  recovery_codes: RecoveryCodesTable;
  events: EventsTable;
  remember_tokens: RememberTokensTable;
  trusted_devices: TrustedDevicesTable;
  api_tokens: ApiTokensTable;
  email_changes: EmailChangesTable;
  email_change_cancels: EmailChangeCancelsTable;
  password_resets: PasswordResetsTable;
  mail_outbox: MailOutboxTable;
  key_fingerprints: KeyFingerprintsTable;
  account_recoveries: AccountRecoveriesTable;
  webauthn_credentials: WebAuthnCredentialsTable;
  webauthn_challenges: WebAuthnChallengesTable;
  federated_identities: FederatedIdentitiesTable;
  federation_flows: FederationFlowsTable;
}

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type FactorRow = Selectable<FactorsTable>;
export type FactorSetupRow = Selectable<FactorSetupsTable>;

/** Public data of a WebAuthn credential; its factor row is `factors.id = factor_id`. */
export interface WebAuthnCredentialsTable {
  factor_id: string;
  user_id: string;
  /** base64url credential id. */
  credential_id: string;
  /** base64url COSE public key. */
  public_key: string;
  counter: number;
  /** JSON array of transports. */
  transports: string;
  /** 'singleDevice' or 'multiDevice' (backup eligible). */
  device_type: string;
  backed_up: number;
  user_verified: number;
  aaguid: string;
  sign_count_regressions: Generated<number>;
  last_used_at: number | null;
}

/** A WebAuthn challenge: SHA-256 only, one session, one purpose, single use. */
export interface WebAuthnChallengesTable {
  id: string;
  session_id: string;
  purpose: string;
  challenge_hash: string;
  expires_at: number;
  used_at: number | null;
}

export type WebAuthnCredentialRow = Selectable<WebAuthnCredentialsTable>;
