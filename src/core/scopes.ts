/**
 * Scopes a personal API token can carry. The host application declares its own
 * (`createGatehouse({ scopes })`); the ready-to-run server declares the contract's three.
 */
export type Scope = string;

/** The contract's scopes (the demo bank's): the server's default. */
export const CONTRACT_SCOPES = ['account:read', 'transactions:read', 'transfers:write'] as const;

/** Gatehouse's own (GET /api/account and its events): always declared. */
export const GATEHOUSE_SCOPES = ['account:read'] as const;

/** What a scope name looks like: `orders:read`, `reports.export:write`. */
export const SCOPE_SHAPE = /^[a-z][a-z0-9_.-]{0,31}(:[a-z0-9_.-]{1,32})?$/;
