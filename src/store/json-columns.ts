/**
 * The text columns that hold JSON lists (`users.factor_methods`, `sessions.amr`): parsed
 * here and nowhere else. A malformed value throws rather than reading as an empty list:
 * an empty `factor_methods` would mean "no second factor", so a damaged row must fail
 * closed, never open.
 */
import type { AuthMethod } from '../core/session-state.js';

function stringList(value: string, column: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = null;
  }
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) throw new Error(`malformed ${column} column`);
  return parsed;
}

/** The account's second-factor methods, as cached on its row (kept in step by FactorStore). */
export const factorMethodsOf = (row: { factor_methods: string }): string[] => stringList(row.factor_methods, 'factor_methods');

/** The authentication methods a session's assurance rests on. */
export const amrOf = (row: { amr: string }): AuthMethod[] => stringList(row.amr, 'amr') as AuthMethod[];

/** The account's roles (`users.roles`); a malformed value throws (no roles would mean a laxer policy). */
export const rolesOf = (row: { roles: string }): string[] => stringList(row.roles, 'roles');
