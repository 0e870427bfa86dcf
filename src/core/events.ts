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
  'upstream.linked',
  'upstream.unlinked',
] as const;

export type SecurityEventName = (typeof SECURITY_EVENT_NAMES)[number];

/**
 * Mail that carries a single-use link (a credential). A use case raises one of these next
 * to the public security event it records (which carries no link); the mail module
 * subscribes. They are never stored, never logged and never delivered to
 * `gatehouse.on(...)` listeners.
 */
export interface LinkMailEvents {
  /** With `password_reset.requested`: the reset link, to the account's address. */
  'password_reset.link': { userId: string; to: string; resetLink: string };
  /**
   * With `account.email_change_requested`: the confirm link to the new address, and the
   * cancel link to the current one.
   */
  'email_change.links': { userId: string; currentEmail: string; newEmail: string; confirmLink: string; cancelLink: string };
  /** With `admin.factors_reset`: the one-time recovery link, to the account's address. */
  'account_recovery.link': { userId: string; to: string; byEmail: string; recoveryLink: string };
}

export type LinkMailEventName = keyof LinkMailEvents;
