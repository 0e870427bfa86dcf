/**
 * The per-session form token: every form of a session carries an HMAC of the session id.
 * The gate's same-origin rule and SameSite=Lax cookies already stop cross-site posts; the
 * token is the second lock, for browsers or proxies that drop Origin and Sec-Fetch-Site.
 */
import crypto from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { KeyedHasher } from '../services/keys.js';
import type { ActiveSession } from '../services/sessions.js';
import { formOf, str } from './form.js';

export interface FormTokens {
  /** The token to put in the forms of `session`. */
  of(session: ActiveSession): string;
  /** Whether the posted form carries the token of `session`. */
  carries(request: FastifyRequest, session: ActiveSession): boolean;
}

export function formTokens(hasher: KeyedHasher): FormTokens {
  const of = (session: ActiveSession) => hasher.hash(`form-token:${session.id}`);
  return {
    of,
    carries(request, session) {
      const posted = Buffer.from(str(formOf(request), '_csrf', 200));
      const expected = Buffer.from(of(session));
      // Byte lengths, not string lengths: timingSafeEqual throws on a multi-byte look-alike.
      return posted.length === expected.length && crypto.timingSafeEqual(posted, expected);
    },
  };
}
