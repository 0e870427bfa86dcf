/**
 * Gatehouse's public API. Host applications build on these names only.
 */
export { loadConfig, ConfigError, type GatehouseConfig } from './config.js';
export { createGatehouse, type Gatehouse, type GatehouseOptions } from './gatehouse.js';
export { gatehouseFastify, type GatehousePluginOptions } from './http/plugin.js';
export { requires, sessionOf, userIdOf, type RouteRequirement, type RequestPrincipal } from './http/gate.js';
export { parse } from './http/validation.js';
export { buildServer, startServer, type RunningServer } from './server.js';
export * from './core/errors.js';
export type { Scope } from './core/scopes.js';
export type { SessionState, AuthMethod } from './core/session-state.js';
/** The one address grammar: hosts that take addresses themselves use it too (contract v1.1). */
export { parseEmail, requireEmail, normaliseEmail, displayEmail, type EmailAddress, type EmailParse, type EmailProblem } from './core/email.js';
/** OpenID Provider (issue 14): acr values and the RFC 9470 step-up guard for APIs. */
export { ACR } from './oidc/assurance.js';
export { createStepUpGuard, type AssuranceRequirement, type VerifiedAccessToken, type StepUpGuardOptions } from './oidc/resource-server.js';
