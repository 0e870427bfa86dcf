/**
 * One-line confirmations shown after a redirect (`?notice=…`). Only these fixed texts can
 * appear: the query names one, it never supplies the words.
 */
import type { FastifyRequest } from 'fastify';
import { queryParam } from './form.js';

const NOTICES: Record<string, string> = {
  signed_out: 'You are signed out.',
  password_changed: 'Your password was changed. Sign in with the new one.',
  password_updated: 'Your password was changed. Your other sessions were signed out.',
  session_expired: 'Your sign-in expired. Start again.',
  totp_added: 'Authenticator app added.',
  passkey_added: 'Passkey added.',
  factor_removed: 'Factor removed.',
  session_revoked: 'Session signed out.',
  device_revoked: 'Device forgotten.',
  token_revoked: 'Token revoked.',
  account_created: 'Your account was created with this sign-in. Add a second factor so a stolen sign-in is not enough.',
  upstream_unlinked: 'Sign-in unlinked: it no longer signs in to this account.',
};

/** Own keys only: `?notice=constructor` must not render Object's constructor. */
export function noticeOf(request: FastifyRequest): string | null {
  const name = queryParam(request, 'notice', 64);
  return Object.hasOwn(NOTICES, name) ? NOTICES[name]! : null;
}
