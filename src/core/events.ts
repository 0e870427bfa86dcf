/**
 * The names of the security events Gatehouse records (the account's event list, the
 * notifications and `gatehouse.on(...)` listeners are fed from them).
 */
export const SECURITY_EVENT_NAMES = [
  'account.created',
  'account.locked',
  'account.email_change_requested',
  'account.email_change_cancelled',
  'account.email_changed',
  'account.password_changed',
  'login.succeeded',
  'login.failed',
  'login.challenged',
  'account.enrolment_reminder',
  'account.roles_changed',
  'admin.sessions_revoked',
  'admin.account_unlocked',
  'admin.factors_reset',
  'account.recovered',
  'mfa.failed',
  'mfa.verified',
  'mfa.step_up',
  'mfa.recovery_code_used',
  'mfa.factor_added',
  'mfa.factor_removed',
  'mfa.recovery_codes_regenerated',
  'mfa.webauthn_backup_state_changed',
  'mfa.webauthn_sign_count_regression',
  'password_change.failed',
  'password_reset.requested',
  'password_reset.completed',
  'session.revoked',
  'remember_me.replayed',
  'device.trusted',
  'device.revoked',
  'token.created',
  'token.revoked',
] as const;

export type SecurityEventName = (typeof SECURITY_EVENT_NAMES)[number];
