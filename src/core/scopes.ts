/** Scopes a personal API token can carry (the contract's list). */
export const API_TOKEN_SCOPES = ['account:read', 'transactions:read', 'transfers:write'] as const;
export type Scope = (typeof API_TOKEN_SCOPES)[number];

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (API_TOKEN_SCOPES as readonly string[]).includes(value);
}
