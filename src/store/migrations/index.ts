/**
 * All migrations, in order. Add a new file and a line here; never edit a migration that
 * has shipped.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002credentials from './0002_credentials.js';
import * as m0003tokensMail from './0003_tokens_mail.js';
import * as m0004webauthn from './0004_webauthn.js';
import * as m0005factorLifecycle from './0005_factor_lifecycle.js';
import * as m0006rememberTheft from './0006_remember_theft.js';
import * as m0007emailChangeCancel from './0007_email_change_cancel.js';
import * as m0008attemptCounters from './0008_attempt_counters.js';
import * as m0009limiterTables from './0009_limiter_tables.js';
import * as m0010keyFingerprints from './0010_key_fingerprints.js';
import * as m0011oidc from './0011_oidc.js';
import * as m0012federation from './0012_federation.js';
import * as m0013policy from './0013_policy.js';
import * as m0014replacedSessionToken from './0014_replaced_session_token.js';

export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_credentials': m0002credentials,
  '0003_tokens_mail': m0003tokensMail,
  '0004_webauthn': m0004webauthn,
  '0005_factor_lifecycle': m0005factorLifecycle,
  '0006_remember_theft': m0006rememberTheft,
  '0007_email_change_cancel': m0007emailChangeCancel,
  '0008_attempt_counters': m0008attemptCounters,
  '0009_limiter_tables': m0009limiterTables,
  '0010_key_fingerprints': m0010keyFingerprints,
  '0011_oidc': m0011oidc,
  '0012_federation': m0012federation,
  '0013_policy': m0013policy,
  '0014_replaced_session_token': m0014replacedSessionToken,
};
