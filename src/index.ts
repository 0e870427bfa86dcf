/**
 * Gatehouse's public API (`gatehouse`). Host applications build on these names only; the
 * ready-to-run server is `gatehouse/server`, the auditor `gatehouse/audit`.
 */
import * as errors from './core/errors.js';

export {
  createGatehouse,
  type Gatehouse,
  type GatehouseOptions,
  type GatehouseAdmin,
  type GatehouseEvents,
  type SecurityEvent,
  type SessionInfo,
  type EventListener,
  sessionInfoOf as sessionOf,
} from './facade.js';
export { gatehouseFastify, type GatehousePluginOptions } from './http/plugin.js';
export { requires, userIdOf, type RouteRequirement } from './http/gate.js';
export type { SessionRequirement } from './core/requirements.js';
export { parse } from './http/validation.js';
export { ConfigError } from './config.js';
export { SECURITY_EVENT_NAMES, type SecurityEventName } from './core/events.js';
export type { Scope } from './core/scopes.js';
export type { RolePolicy, FactorKind } from './core/role-policy.js';
export type { RiskSignal } from './core/risk.js';
export type { SessionState, AuthMethod } from './core/session-state.js';
/** The one address grammar: hosts that take addresses themselves use it too (contract v1.1). */
export {
  parseEmail,
  requireEmail,
  normaliseEmail,
  displayEmail,
  type EmailAddress,
  type EmailParse,
  type EmailProblem,
} from './core/email.js';
/** OpenID Provider: acr values and the RFC 9470 step-up guard for APIs. */
export { ACR } from './oidc/assurance.js';
export { createStepUpGuard, type AssuranceRequirement, type VerifiedAccessToken, type StepUpGuardOptions } from './oidc/resource-server.js';
/** Every refusal Gatehouse answers with, one class each, with a static `code` (e.g. `errors.StepUpRequiredError.code`). */
export { errors };
